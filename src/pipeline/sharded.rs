//! Sharded runs (`--shards K`, `--max-memory SIZE`): `features`, `score` and `train`
//! shard by shard, with the same answer as in one piece.
//!
//! A shard holds the subscribers whose id hashes to it ([`crate::shard`]). Each shard
//! reads only its rows of the subscriber table (filtered while reading) and only its
//! subscribers' events (filtered as each batch is read), so memory grows with the
//! shard, not with the population. The steps:
//! 1. **map** — per shard: load, features, the scoring kernel; the shard's rows go to a
//!    partial in the scratch directory, a few columns of each subscriber
//!    ([`PopulationPart`]) and the guards' counts stay in memory;
//! 2. **population** — the guards judge the summed counts, then the population steps
//!    ([`Population::gather`]) turn the gathered columns into explicit cut-offs;
//! 3. **map** — per shard: the finishing pass applies the cut-offs to the partial;
//! 4. **write** — `--out F.parquet`: the shards' rows merged into canonical order (their
//!    position in the subscriber input) and written in row groups of the size the
//!    unsharded writer uses, so the file's bytes do not depend on K; `--out DIR/`: one
//!    part file per shard (`part-00000.parquet`, …, rows in canonical order within each),
//!    then `_SUCCESS`, all committed together.
//!
//! `train` ([`train`]) needs no partials: each shard builds every snapshot training
//! needs in one scan of its events, the shards' snapshots are joined in canonical order
//! in memory (the fits need every row anyway), and the models are fit as in one piece;
//! `train --sample N` does the same on a hash sample of the subscribers
//! ([`SmallestHashes`]), filtered as the subscribers and events are read.
//!
//! Errors are [`ShardError`]s: this module's own (scratch, partials, the memory budget)
//! and, unchanged, those of the stages it runs, so a bad input reads the same whether
//! or not the run is sharded (a duplicate id names its file and value).
//!
//! The scratch directory (`.NAME.shards-PID` beside the output, or under `--scratch`) is
//! removed at the end, after a failure too; outputs go through an [`OutputSet`], so a
//! failure in any shard leaves the previous outputs untouched.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, RecordBatch, RecordBatchReader, UInt64Array};
use arrow::compute::{concat_batches, interleave_record_batch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, UInt64Type};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::features::accumulate::EventCounts;
use crate::features::{FeatureParams, FeatureTable};
use crate::guard::Snapshot;
use crate::load::subscribers::SubscriberDomain;
use crate::load::{InputSpec, Inputs};
use crate::score::finish::finish;
use crate::score::kernel::{Kernel, Partial};
use crate::score::population::{Population, PopulationPart, Tally};
use crate::score::{ScoreParams, ScoreSummary};
use crate::segment::movement::MovementTally;
use crate::shard::{Shard, SmallestHashes};
use crate::train::{SampleSummary, TrainingSnapshots};
use crate::write::{OutputSet, PIECE_ROWS, ParquetSink};

/// Rows per row group of every output (the unsharded writer's, [`crate::write::parquet_properties`]).
pub const ROW_GROUP_ROWS: usize = 1 << 20;

/// The column holding each row's position in a partial.
const POSITION: &str = "__position";

/// Rows of each partial's batch while partials are merged.
const MERGE_BATCH_ROWS: usize = 4 * 1024;

/// Why a sharded run failed: its own problems (scratch, partials, the memory budget)
/// and those of the stages it runs, each as that stage says it.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    #[error("scratch directory {path}: {source}")]
    Scratch {
        path: String,
        source: std::io::Error,
    },
    #[error("scratch partial {path}: {message}")]
    Partial { path: String, message: String },
    #[error(
        "--max-memory {budget} is too small for {rows} subscribers: about {needed} is needed whatever the number of shards ({what}); give at least that"
    )]
    Budget {
        budget: String,
        rows: u64,
        needed: String,
        what: &'static str,
    },
    #[error("no shard was run")]
    NoShard,
    #[error("the subscriber table {path} is empty: there is nothing to sample")]
    EmptySample { path: String },
    #[error(transparent)]
    Pipeline(#[from] super::PipelineError),
    #[error(transparent)]
    Load(#[from] crate::load::LoadError),
    #[error(transparent)]
    Taxonomy(#[from] crate::taxonomy::TaxonomyError),
    #[error(transparent)]
    Features(#[from] crate::features::FeatureError),
    #[error(transparent)]
    Guard(#[from] crate::guard::GuardFailure),
    #[error(transparent)]
    NotScored(#[from] crate::guard::NotScored),
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
    #[error(transparent)]
    Train(#[from] crate::train::TrainError),
    #[error(transparent)]
    Write(#[from] crate::write::WriteError),
    #[error("failed to assemble a shard's table: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// What was being done when `source` happened.
    #[error("{context}")]
    Context {
        context: String,
        #[source]
        source: Box<ShardError>,
    },
}

impl ShardError {
    /// Whether a health guard stopped the run (exit status 3).
    pub fn stopped_by_guard(&self) -> bool {
        match self {
            ShardError::Guard(_) | ShardError::Train(crate::train::TrainError::Guard(_)) => true,
            ShardError::Context { source, .. } => source.stopped_by_guard(),
            _ => false,
        }
    }

    /// `e`, said to have happened while doing `context`.
    fn context(context: String, e: impl Into<ShardError>) -> ShardError {
        ShardError::Context {
            context,
            source: Box::new(e.into()),
        }
    }

    fn partial(path: &Path, e: impl std::fmt::Display) -> ShardError {
        ShardError::Partial {
            path: path.display().to_string(),
            message: e.to_string(),
        }
    }
}

fn no_shard() -> ShardError {
    ShardError::NoShard
}

/// How a run is split: shard count and where partials go.
#[derive(Debug, Clone)]
pub struct ShardPlan {
    pub shards: u32,
    /// A directory to put the scratch directory in (default: beside the output).
    pub scratch: Option<PathBuf>,
}

/// The scratch directory of one run, removed when dropped (after success or failure).
pub struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    /// Creates `.NAME.shards-PID` beside `out` (or in `parent`).
    pub fn create(out: &Path, parent: Option<&Path>) -> Result<Scratch, ShardError> {
        let name = out
            .file_name()
            .map_or("out".into(), |n| n.to_string_lossy().into_owned());
        let parent = match parent {
            Some(p) => p.to_path_buf(),
            None => out
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map_or(PathBuf::from("."), Path::to_path_buf),
        };
        let dir = parent.join(format!(".{name}.shards-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|source| ShardError::Scratch {
            path: dir.display().to_string(),
            source,
        })?;
        Ok(Scratch { dir })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    fn file(&self, what: &str, shard: Shard) -> PathBuf {
        self.dir.join(format!("{what}-{:05}.parquet", shard.index))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Writes `batch` with its positions in front as a scratch partial.
fn write_partial(path: &Path, positions: &[u64], batch: &RecordBatch) -> Result<(), ShardError> {
    let mut fields = vec![Field::new(POSITION, DataType::UInt64, false)];
    fields.extend(batch.schema().fields().iter().map(|f| f.as_ref().clone()));
    let mut columns: Vec<ArrayRef> = vec![Arc::new(UInt64Array::from(positions.to_vec()))];
    columns.extend(batch.columns().iter().cloned());
    let full = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(|e| ShardError::partial(path, e))?;
    let file = File::create(path).map_err(|e| ShardError::partial(path, e))?;
    // row groups of one piece: the writer holds one encoded group, not the partial
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(PIECE_ROWS))
        .build();
    let mut writer = ArrowWriter::try_new(file, full.schema(), Some(props))
        .map_err(|e| ShardError::partial(path, e))?;
    writer
        .write(&full)
        .map_err(|e| ShardError::partial(path, e))?;
    writer.close().map_err(|e| ShardError::partial(path, e))?;
    Ok(())
}

/// Reads a whole scratch partial: its positions and the rest of its columns (in one
/// batch, so that it is not held twice while batches are concatenated).
fn read_partial(path: &Path) -> Result<(UInt64Array, RecordBatch), ShardError> {
    let file = File::open(path).map_err(|e| ShardError::partial(path, e))?;
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| ShardError::partial(path, e))?;
    let rows = builder.metadata().file_metadata().num_rows().max(1) as usize;
    let reader = builder
        .with_batch_size(rows)
        .build()
        .map_err(|e| ShardError::partial(path, e))?;
    let schema = reader.schema();
    let batches: Vec<RecordBatch> = reader
        .collect::<Result<_, _>>()
        .map_err(|e| ShardError::partial(path, e))?;
    let all = concat_batches(&schema, &batches).map_err(|e| ShardError::partial(path, e))?;
    split_positions(path, all)
}

fn open_partial(path: &Path, batch_rows: usize) -> Result<ParquetRecordBatchReader, ShardError> {
    let file = File::open(path).map_err(|e| ShardError::partial(path, e))?;
    ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.with_batch_size(batch_rows).build())
        .map_err(|e| ShardError::partial(path, e))
}

fn split_positions(
    path: &Path,
    batch: RecordBatch,
) -> Result<(UInt64Array, RecordBatch), ShardError> {
    let positions = batch
        .column(0)
        .as_primitive_opt::<UInt64Type>()
        .cloned()
        .ok_or_else(|| ShardError::partial(path, "first column is not the positions"))?;
    let rest = batch
        .project(&(1..batch.num_columns()).collect::<Vec<_>>())
        .map_err(|e| ShardError::partial(path, e))?;
    Ok((positions, rest))
}

/// Reads partials (each in position order) as one table in canonical (position) order.
struct CanonicalMerge {
    paths: Vec<PathBuf>,
    readers: Vec<ParquetRecordBatchReader>,
    /// Each partial's current batch (without positions), its positions and the cursor.
    current: Vec<Option<(RecordBatch, Vec<u64>, usize)>>,
    schema: SchemaRef,
}

impl CanonicalMerge {
    fn open(paths: Vec<PathBuf>) -> Result<CanonicalMerge, ShardError> {
        let mut readers = Vec::new();
        let mut fields: Vec<Field> = Vec::new();
        for path in &paths {
            let reader = open_partial(path, MERGE_BATCH_ROWS)?;
            let schema = reader.schema();
            let own: Vec<Field> = schema
                .fields()
                .iter()
                .skip(1)
                .map(|f| f.as_ref().clone())
                .collect();
            if fields.is_empty() {
                fields = own;
            } else if fields.len() != own.len()
                || fields
                    .iter()
                    .zip(&own)
                    .any(|(a, b)| a.name() != b.name() || a.data_type() != b.data_type())
            {
                return Err(ShardError::partial(
                    path,
                    "its columns differ from the first shard's",
                ));
            } else {
                // a column nullable in any shard is nullable in the whole
                for (a, b) in fields.iter_mut().zip(&own) {
                    if b.is_nullable() && !a.is_nullable() {
                        *a = a.clone().with_nullable(true);
                    }
                }
            }
            readers.push(reader);
        }
        let mut merge = CanonicalMerge {
            current: (0..paths.len()).map(|_| None).collect(),
            paths,
            readers,
            schema: Arc::new(Schema::new(fields)),
        };
        for k in 0..merge.readers.len() {
            merge.advance(k)?;
        }
        Ok(merge)
    }

    /// Loads partial `k`'s next non-empty batch (or marks it done).
    fn advance(&mut self, k: usize) -> Result<(), ShardError> {
        self.current[k] = None;
        for batch in self.readers[k].by_ref() {
            let batch = batch.map_err(|e| ShardError::partial(&self.paths[k], e))?;
            if batch.num_rows() == 0 {
                continue;
            }
            let (positions, rest) = split_positions(&self.paths[k], batch)?;
            self.current[k] = Some((rest, positions.values().to_vec(), 0));
            break;
        }
        Ok(())
    }

    /// The next `rows` rows in canonical order (fewer at the end; `None` when done).
    fn next_chunk(&mut self, rows: usize) -> Result<Option<RecordBatch>, ShardError> {
        const PIECE: usize = 64 * 1024;
        let mut pieces: Vec<RecordBatch> = Vec::new();
        let mut taken = 0;
        while taken < rows {
            // the sources of one piece: each partial's batches as they are reached
            let mut sources: Vec<RecordBatch> = Vec::new();
            let mut source_of: Vec<Option<usize>> = vec![None; self.current.len()];
            let mut indices: Vec<(usize, usize)> = Vec::new();
            while indices.len() < PIECE && taken + indices.len() < rows {
                let next = self
                    .current
                    .iter()
                    .enumerate()
                    .filter_map(|(k, c)| c.as_ref().map(|(_, p, i)| (p[*i], k)))
                    .min();
                let Some((_, k)) = next else { break };
                let src = match source_of[k] {
                    Some(s) => s,
                    None => {
                        let batch = self.current[k].as_ref().map(|c| c.0.clone());
                        sources.extend(batch);
                        source_of[k] = Some(sources.len() - 1);
                        sources.len() - 1
                    }
                };
                let done = match &mut self.current[k] {
                    Some((_, positions, cursor)) => {
                        indices.push((src, *cursor));
                        *cursor += 1;
                        *cursor >= positions.len()
                    }
                    None => false,
                };
                if done {
                    self.advance(k)?;
                    source_of[k] = None;
                }
            }
            if indices.is_empty() {
                break;
            }
            let refs: Vec<&RecordBatch> = sources.iter().collect();
            let piece = interleave_record_batch(&refs, &indices)
                .map_err(|e| ShardError::partial(&self.paths[0], e))?;
            taken += indices.len();
            pieces.push(piece);
        }
        if pieces.is_empty() {
            return Ok(None);
        }
        let chunk = concat_batches(&pieces[0].schema(), &pieces)
            .map_err(|e| ShardError::partial(&self.paths[0], e))?;
        let chunk = RecordBatch::try_new(Arc::clone(&self.schema), chunk.columns().to_vec())
            .map_err(|e| ShardError::partial(&self.paths[0], e))?;
        Ok(Some(chunk))
    }
}

/// Where a sharded command's table goes.
#[derive(Debug, Clone)]
pub enum TableOut {
    /// One Parquet file, rows in canonical order, bytes independent of K.
    File(PathBuf),
    /// A directory of part files, one per shard, then `_SUCCESS`.
    Dir(PathBuf),
}

impl TableOut {
    /// `--out`: a directory when it ends in a path separator or is one already.
    pub fn of(out: &Path) -> TableOut {
        let text = out.to_string_lossy();
        if text.ends_with('/') || text.ends_with(std::path::MAIN_SEPARATOR) || out.is_dir() {
            TableOut::Dir(out.to_path_buf())
        } else {
            TableOut::File(out.to_path_buf())
        }
    }

    /// Part file `k`.
    pub fn part(dir: &Path, k: u32) -> PathBuf {
        dir.join(format!("part-{k:05}.parquet"))
    }

    /// Every file the table may write with `shards` shards: for a directory, its parts,
    /// stale parts of an earlier run with more shards (replaced by empty ones, so that a
    /// reader of the directory finds this run's rows only) and `_SUCCESS`.
    pub fn files(&self, shards: u32) -> Vec<PathBuf> {
        match self {
            TableOut::File(f) => vec![f.clone()],
            TableOut::Dir(d) => {
                let mut parts: Vec<PathBuf> = (0..shards).map(|k| TableOut::part(d, k)).collect();
                let mut stale: Vec<PathBuf> = std::fs::read_dir(d)
                    .map(|entries| {
                        entries
                            .flatten()
                            .map(|e| e.path())
                            .filter(|p| {
                                p.file_name().is_some_and(|n| {
                                    let n = n.to_string_lossy();
                                    n.starts_with("part-") && n.ends_with(".parquet")
                                })
                            })
                            .filter(|p| !parts.contains(p))
                            .collect()
                    })
                    .unwrap_or_default();
                stale.sort();
                parts.extend(stale);
                parts.push(d.join("_SUCCESS"));
                parts
            }
        }
    }

    /// The manifest beside the table.
    pub fn manifest(&self) -> PathBuf {
        match self {
            TableOut::File(f) => crate::manifest::manifest_path_for(f),
            TableOut::Dir(d) => d.join("manifest.json"),
        }
    }

    /// Stages the partials' rows (`partials[k]` is shard k's) as this table; for one
    /// file, returns where it is staged (readable until the commit).
    fn stage(
        &self,
        partials: Vec<PathBuf>,
        shards: u32,
        outputs: &mut OutputSet,
    ) -> Result<Option<PathBuf>, ShardError> {
        match self {
            TableOut::File(path) => {
                let mut merge = CanonicalMerge::open(partials)?;
                let mut sink = ParquetSink::create(path, Arc::clone(&merge.schema))?;
                while let Some(chunk) = merge.next_chunk(PIECE_ROWS)? {
                    sink.write(&chunk)?;
                }
                let staged = sink.finish()?;
                let temp = staged.temp().to_path_buf();
                outputs.add(staged)?;
                return Ok(Some(temp));
            }
            TableOut::Dir(dir) => {
                let files = self.files(shards);
                let mut schema = None;
                for (k, partial) in partials.into_iter().enumerate() {
                    let mut merge = CanonicalMerge::open(vec![partial])?;
                    let mut sink = ParquetSink::create(&files[k], Arc::clone(&merge.schema))?;
                    schema = Some(Arc::clone(&merge.schema));
                    while let Some(chunk) = merge.next_chunk(PIECE_ROWS)? {
                        sink.write(&chunk)?;
                    }
                    outputs.add(sink.finish()?)?;
                }
                // stale parts of an earlier run become empty
                let schema = schema.unwrap_or_else(|| Arc::new(Schema::empty()));
                for stale in &files[shards as usize..files.len() - 1] {
                    outputs.add(ParquetSink::create(stale, Arc::clone(&schema))?.finish()?)?;
                }
                outputs.stage_bytes(&dir.join("_SUCCESS"), b"")?;
            }
        }
        Ok(None)
    }
}

/// What the map over shards gathered for the manifest and the guards.
pub struct Gathered {
    pub snapshot: Snapshot,
    /// The first shard's description of the inputs (names, columns, taxonomy).
    describe: serde_json::Value,
    domain: SubscriberDomain,
    unknown_revenue: usize,
    pub events: EventCounts,
    /// Active subscribers featurised, and subscribers read, over all shards.
    pub rows: usize,
    pub subscribers: usize,
}

impl Gathered {
    /// The inputs as the manifest describes them, with the subscriber counts of all shards.
    pub fn describe(&self) -> serde_json::Value {
        let mut v = self.describe.clone();
        let s = &mut v["subscribers"];
        s["rows"] = serde_json::json!(self.subscribers);
        s["unknown_monthly_revenue"] = serde_json::json!(self.unknown_revenue);
        s["out_of_domain"] = serde_json::to_value(&self.domain).unwrap_or_default();
        v
    }
}

/// Adds a shard's inputs and table to what was gathered.
fn gather(gathered: &mut Option<Gathered>, inputs: &Inputs, table: &FeatureTable) {
    let snapshot = Snapshot::measure(inputs, table);
    let s = &inputs.subscribers;
    match gathered {
        None => {
            *gathered = Some(Gathered {
                snapshot,
                describe: inputs.describe(),
                domain: s.out_of_domain.clone(),
                unknown_revenue: s.unknown_revenue(),
                events: table.events.clone(),
                rows: table.batch.num_rows(),
                subscribers: s.len(),
            })
        }
        Some(g) => {
            g.snapshot.absorb(snapshot);
            g.events.absorb(table.events.clone());
            g.rows += table.batch.num_rows();
            g.subscribers += s.len();
            g.unknown_revenue += s.unknown_revenue();
            g.domain.absorb(&s.out_of_domain);
        }
    }
}

/// What a training run by shard, or on a sample, produced.
pub struct ShardedTraining {
    pub artifact: crate::train::artifact::ModelArtifact,
    pub guards: crate::guard::GuardReport,
    /// The inputs as the manifest describes them, over every shard.
    pub inputs: serde_json::Value,
}

/// Draws the hash sample of `n` subscribers ([`SmallestHashes`]: the `n` smallest of
/// Spark's `xxhash64(subscriber_id)`), reading the subscriber table's id column alone.
pub fn draw_sample(spec: &InputSpec, n: u64) -> Result<SampleSummary, ShardError> {
    let mut smallest = SmallestHashes::new(n);
    crate::load::subscribers::for_each_id_hash(&spec.subscribers, &spec.subscriber_columns, |h| {
        smallest.add(h)
    })?;
    let max_hash = smallest.max_hash().ok_or_else(|| ShardError::EmptySample {
        path: spec.subscribers.display().to_string(),
    })?;
    Ok(SampleSummary {
        asked: n,
        sampled: smallest.len() as u64,
        of: smallest.seen,
        max_hash,
    })
}

/// `train --shards K` / `--sample N`: every snapshot training needs, built shard by
/// shard (each shard's in one scan of its subscribers' events, only the sampled
/// subscribers with a sample), joined in canonical order, then fit as in one piece:
/// the same model, byte for byte, for any K.
pub fn train(
    spec: &InputSpec,
    strict: bool,
    params: &crate::train::TrainParams,
    shards: u32,
    sample: Option<u64>,
    console: &crate::console::Console,
) -> Result<ShardedTraining, ShardError> {
    let mut sample = sample.map(|n| draw_sample(spec, n)).transpose()?;
    let max_hash = sample.map(|s| s.max_hash);
    let mut parts = Vec::new();
    let mut gathered = None;
    let mut taxonomy = None;
    for shard in Shard::each(shards) {
        let shard = shard.sampled(max_hash);
        say_shard(console, shard);
        let inputs = super::load_inputs_shard(spec, strict && shard.index == 0, shard, console)?;
        if !inputs.subscribers.has_churn_column {
            return Err(crate::train::TrainError::NoChurnColumn.into());
        }
        let built = TrainingSnapshots::build(&inputs, params, shard, console)?;
        gather(&mut gathered, &inputs, built.anchor()?);
        taxonomy.get_or_insert(inputs.taxonomy);
        parts.push(built);
    }
    let (Some(gathered), Some(taxonomy)) = (gathered, taxonomy) else {
        return Err(ShardError::NoShard);
    };
    if let Some(s) = &mut sample {
        s.sampled = gathered.subscribers as u64;
    }
    let snapshots = TrainingSnapshots::join_shards(parts)?.with_sample(sample);
    let (mut artifact, guards) = crate::train::train_on(&snapshots, &taxonomy, params, console)?;
    artifact.custom_features = spec.custom.defs.clone();
    Ok(ShardedTraining {
        artifact,
        guards,
        inputs: gathered.describe(),
    })
}

/// Says which shard starts.
fn say_shard(console: &crate::console::Console, shard: Shard) {
    console.say(format!(
        "{:>12}  shard {} of {}",
        "shard",
        shard.index + 1,
        shard.count
    ));
}

/// Loads one shard's inputs, builds its feature table and adds both to `gathered`.
fn shard_features(
    spec: &InputSpec,
    strict: bool,
    shard: Shard,
    params: FeatureParams,
    gathered: &mut Option<Gathered>,
    console: &crate::console::Console,
) -> Result<FeatureTable, ShardError> {
    say_shard(console, shard);
    // the --strict check reads every event's touchpoint: once, with the first shard
    let inputs = super::load_inputs_shard(spec, strict && shard.index == 0, shard, console)?;
    let table = crate::features::build_logged_shard(&inputs, params, shard, console)?;
    gather(gathered, &inputs, &table);
    Ok(table)
}

#[allow(clippy::too_many_arguments)]
/// `features --shards K`: the feature table shard by shard; returns what was gathered
/// after staging the table in `outputs` (the guards judged before anything is staged).
pub fn features(
    spec: &InputSpec,
    strict: bool,
    params: FeatureParams,
    plan: &ShardPlan,
    out: &TableOut,
    guards: &crate::guard::GuardSettings,
    outputs: &mut OutputSet,
    console: &crate::console::Console,
) -> Result<(Gathered, crate::guard::GuardReport, usize), ShardError> {
    let scratch = Scratch::create(table_path(out), plan.scratch.as_deref())?;
    let mut gathered = None;
    let mut partials = Vec::new();
    let mut columns = 0;
    for shard in Shard::each(plan.shards) {
        let table = shard_features(spec, strict, shard, params, &mut gathered, console)?;
        let path = scratch.file("features", shard);
        write_partial(&path, &table.positions, &table.batch)?;
        columns = table.batch.num_columns();
        partials.push(path);
    }
    let gathered = gathered.ok_or_else(no_shard)?;
    let report = crate::guard::judge(&gathered.snapshot, guards, None).enforce()?;
    out.stage(partials, plan.shards, outputs)?;
    drop(scratch);
    Ok((gathered, report, columns))
}

fn table_path(out: &TableOut) -> &Path {
    match out {
        TableOut::File(p) | TableOut::Dir(p) => p,
    }
}

/// What a sharded scoring run produced.
pub struct ShardedScore {
    /// Where the scored table is staged when it is one file (until the commit).
    pub staged: Option<PathBuf>,
    pub gathered: Gathered,
    pub guards: crate::guard::GuardReport,
    pub summary: ScoreSummary,
    pub movement: Option<crate::segment::Movement>,
}

/// `score --shards K`: scores shard by shard and stages the scored table in `outputs`.
#[allow(clippy::too_many_arguments)]
pub fn score(
    spec: &InputSpec,
    strict: bool,
    artifact: &crate::train::artifact::ModelArtifact,
    as_of: crate::asof::AsOf,
    params: &ScoreParams,
    previous: Option<(&RecordBatch, &crate::guard::PreviousRun)>,
    guards: &crate::guard::GuardSettings,
    plan: &ShardPlan,
    out: &TableOut,
    outputs: &mut OutputSet,
    console: &crate::console::Console,
) -> Result<ShardedScore, ShardError> {
    let scratch = Scratch::create(table_path(out), plan.scratch.as_deref())?;
    let features = FeatureParams {
        as_of,
        extended: artifact.extended_features,
        touchpoint_use: true,
    };
    let mut gathered = None;
    let mut parts = Vec::new();
    let mut partials = Vec::new();
    for shard in Shard::each(plan.shards) {
        let table = shard_features(spec, strict, shard, features, &mut gathered, console)?;
        let kernel =
            Kernel::run(&table.batch, table.positions.clone(), artifact, params).map_err(|e| {
                ShardError::context(
                    format!("scoring with model `{}`", artifact.model_version),
                    e,
                )
            })?;
        parts.push(PopulationPart::of(
            &kernel,
            &table.batch,
            table.touchpoint_use.as_ref(),
        ));
        let batch = crate::score::kernel::partial(&table, &kernel)?;
        let path = scratch.file("kernel", shard);
        write_partial(&path, &kernel.positions, &batch)?;
        partials.push(path);
    }
    let gathered = gathered.ok_or_else(no_shard)?;
    let report =
        crate::guard::judge(&gathered.snapshot, guards, previous.map(|p| p.1)).enforce()?;
    report.warnings().iter().for_each(|w| console.say(w));
    let step = console.progress(0, "score", "");
    let population = Population::gather(parts, params);
    let mut tally = Tally::default();
    let mut finished = Vec::new();
    for (k, partial) in partials.iter().enumerate() {
        let (positions, all) = read_partial(partial)?;
        let Partial {
            features,
            kernel,
            uses,
        } = Partial::read(&all, &positions)?;
        let done = finish(
            &features,
            &kernel,
            uses.as_deref(),
            &population.cutoffs,
            population.percentiles(&kernel.profit),
            artifact,
            params,
            as_of,
        )?;
        tally.absorb(&done.tally);
        let path = scratch.file(
            "scored",
            Shard {
                index: k as u32,
                count: plan.shards,
                max_hash: None,
            },
        );
        write_partial(&path, &kernel.positions, &done.batch)?;
        finished.push(path);
    }
    let summary = population.summary(&tally);
    step.finish(format!("{} subscribers", summary.rows));
    let movement = match previous {
        None => None,
        Some((batch, _)) => {
            let mut movement = MovementTally::new(batch);
            let mut merge = CanonicalMerge::open(finished.clone())?;
            while let Some(chunk) = merge.next_chunk(PIECE_ROWS)? {
                movement.add(&chunk);
            }
            Some(movement.finish())
        }
    };
    let staged = out.stage(finished, plan.shards, outputs)?;
    drop(scratch);
    Ok(ShardedScore {
        staged,
        gathered,
        guards: report,
        summary,
        movement,
    })
}

/// The columns of a scored table that the report and the contact list read for every
/// subscriber; the contact list's reasons and touchpoints ([`CONTACT_COLUMNS`]) are
/// read for the listed subscribers only.
pub const REPORT_COLUMNS: [&str; 11] = [
    "subscriber_id",
    "churn_probability",
    "risk_decile",
    "profit_90d",
    "value_segment",
    "value_at_risk",
    "churn_driver",
    "lifecycle_stage",
    "loyalty_action",
    "targeted",
    "expected_return",
];

/// The list columns of the contact list.
pub const CONTACT_COLUMNS: [&str; 2] = ["reasons", "recommended_touchpoints"];

/// The scored table at `path` as the report and `contacts.csv` read it, without holding
/// the table: [`REPORT_COLUMNS`] of every row, and [`CONTACT_COLUMNS`] of the rows on
/// the contact list (null elsewhere, where nothing reads them). The report rendered
/// from it is the report of the whole table, byte for byte.
pub fn report_table(path: &Path) -> Result<RecordBatch, ShardError> {
    let narrow = crate::load::scored::read_scored_columns(path, &REPORT_COLUMNS)?;
    let (_, listed) = crate::report::contacts::listed(&narrow);
    let source = crate::load::ParquetSource::resolve(path)?;
    let mut fields: Vec<Field> = narrow
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    let mut columns: Vec<ArrayRef> = narrow.columns().to_vec();
    let mut pieces: Vec<Vec<ArrayRef>> = Vec::new();
    let mut list_fields: Vec<Field> = Vec::new();
    let mut offset = 0;
    for (_, batch) in source.read_all(Some(&CONTACT_COLUMNS))? {
        if list_fields.is_empty() {
            list_fields = batch
                .schema()
                .fields()
                .iter()
                .map(|f| f.as_ref().clone().with_nullable(true))
                .collect();
            pieces = vec![Vec::new(); batch.num_columns()];
        }
        let end = (offset + batch.num_rows()).min(listed.len());
        let mask = arrow::array::BooleanArray::from(listed[offset..end].to_vec());
        offset = end;
        for (c, column) in batch.columns().iter().enumerate() {
            let none =
                arrow::array::Scalar::new(arrow::array::new_null_array(column.data_type(), 1));
            pieces[c].push(arrow::compute::kernels::zip::zip(&mask, column, &none)?);
        }
    }
    for (field, piece) in list_fields.into_iter().zip(pieces) {
        let refs: Vec<&dyn arrow::array::Array> = piece.iter().map(AsRef::as_ref).collect();
        columns.push(arrow::compute::concat(&refs)?);
        fields.push(field);
    }
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}

/// Parses a memory size: `2GiB`, `512MiB`, `1.5GB`, `800M`, or bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mib" => 1024.0 * 1024.0,
        "g" | "gb" => 1e9,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" => 1e12,
        "tib" => 1024f64.powi(4),
        _ => return Err(format!("`{text}` is not a size (e.g. 2GiB, 512MiB, 1GB)")),
    };
    match number.parse::<f64>() {
        Ok(n) if n > 0.0 && n.is_finite() => Ok((n * scale) as u64),
        _ => Err(format!("`{text}` is not a size (e.g. 2GiB, 512MiB, 1GB)")),
    }
}

/// The memory a sharded run needs, estimated from the input sizes (Parquet metadata
/// only). Four parts, not all alive at once:
/// - **base**, always: the program, its thread pools and the readers' batches;
/// - **held**, from the first shard to the end: what each subscriber leaves for the
///   population steps ([`PopulationPart`]: position, id, probability, profit, value at
///   risk, footprint), for `run` also the previous night's columns, for `train` the
///   feature table of every planned snapshot (the fits need every row);
/// - **once**, the peak of a step that runs once over everyone, beside what is held:
///   the population steps (the gathered columns joined, then ranked); the output's
///   writer (one row group encoded, a piece of [`PIECE_ROWS`] rows, and one batch per
///   shard being merged); for `run`, the report's columns of every subscriber;
/// - **per subscriber of a shard**, while the shard is built and scored: its row of the
///   subscriber table, its accumulators (one table per snapshot, whatever the thread
///   count: [`Accumulator`], and per taxonomy touchpoint its counts and, when scoring,
///   its use), its feature row, the kernel's columns and their copy in the partial.
///
/// K is the fewest shards whose working set fits beside the base and what is held,
/// in [`MemoryEstimate::USABLE`] of the budget (the rest is the margin: allocator
/// slack, what the estimate does not see).
///
/// [`Accumulator`]: crate::features::accumulate::Accumulator
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MemoryEstimate {
    pub subscribers: u64,
    pub base: u64,
    pub held: u64,
    pub once: u64,
    pub per_subscriber: u64,
    /// Bytes of one output row while it is merged and written (decoded), and of a row
    /// group's rows once encoded.
    pub output_row: u64,
    pub encoded_row: u64,
    pub written: TableKind,
}

/// Which table a run writes, for the size of its output row group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableKind {
    Features,
    Scores,
    /// A model (`train`): no table is written, but the feature table of every one of
    /// `snapshots` planned dates ([`crate::train::planned_dates`]) is held whole for the
    /// fits, and a shard's pass keeps one table of accumulators per date.
    Model {
        snapshots: u64,
    },
    /// The nightly job's scoring (`run`): a scored table, the previous night's columns
    /// held throughout, and the report's columns read back at the end.
    Night,
}

/// What the inputs' metadata says about their sizes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InputSizes {
    pub subscribers: u64,
    /// Bytes of one subscriber row, decoded (the table's uncompressed size per row).
    pub row_bytes: u64,
    /// Bytes of one `subscriber_id`.
    pub id_bytes: u64,
    /// Columns besides the five the SPEC names (passed through as features).
    pub pass_through: u64,
    pub touchpoints: u64,
}

impl MemoryEstimate {
    /// The share of the budget the estimate plans to use.
    pub const USABLE: f64 = 0.85;

    /// Estimates a run over inputs of these sizes.
    pub fn new(sizes: InputSizes, written: TableKind) -> Self {
        let InputSizes {
            subscribers: n,
            row_bytes,
            id_bytes,
            pass_through,
            touchpoints: t,
        } = sizes;
        let feature_columns = 90 + 3 * t + pass_through;
        // a feature row: 8 bytes a value, its validity, and strings passed through
        let feature_row = 9 * feature_columns + 16 * pass_through;
        let accumulator =
            std::mem::size_of::<crate::features::accumulate::Accumulator>() as u64 + 4;
        // scoring: per touchpoint its counts, its use (ratings, cost) and the use's copy
        // in the partial; the kernel's reasons (three strings), lifecycle, profit
        let scoring = 12 * t + 32 * t + 2 * 12 * t + 400;
        let population_row = 80 + id_bytes;
        let (tables, held, per_subscriber, output_row, encoded_row) = match written {
            TableKind::Features => (1, 0, 12 * t + feature_row, feature_row, 3 * feature_columns),
            TableKind::Scores => (1, population_row, scoring + feature_row, 700, 120),
            TableKind::Night => (
                1,
                population_row + 48 + id_bytes,
                scoring + feature_row,
                700,
                120,
            ),
            // training holds every snapshot's features whole, and a stack of up to three
            // being fit beside its binned copy
            TableKind::Model { snapshots } => (
                snapshots.max(1),
                8 * feature_columns * (snapshots + 4),
                12 * t + feature_row,
                0,
                0,
            ),
        };
        let per_subscriber = row_bytes + 32 + tables * accumulator + per_subscriber;
        // the population steps join the gathered columns (a copy while they grow) and
        // rank them; the report (once the gathered columns are gone) reads a dozen
        // columns and turns its text into strings
        let once_per_subscriber = match written {
            TableKind::Scores => population_row + 96,
            TableKind::Night => (population_row + 96).max((260 + 2 * id_bytes) - population_row),
            _ => 0,
        };
        MemoryEstimate {
            subscribers: n,
            base: 160 << 20,
            held: n * held,
            once: n * once_per_subscriber,
            per_subscriber,
            output_row,
            encoded_row,
            written,
        }
    }

    /// Reads the sizes of `spec`'s inputs (Parquet metadata only).
    pub fn of_inputs(spec: &InputSpec, written: TableKind) -> Result<MemoryEstimate, ShardError> {
        MemoryEstimate::of_sample(spec, written, None)
    }

    /// [`MemoryEstimate::of_inputs`] of a run on a sample of at most `sample`
    /// subscribers (`train --sample N`).
    pub fn of_sample(
        spec: &InputSpec,
        written: TableKind,
        sample: Option<u64>,
    ) -> Result<MemoryEstimate, ShardError> {
        let source = crate::load::ParquetSource::resolve(&spec.subscribers)?;
        let id = &spec.subscriber_columns.subscriber_id;
        let (mut rows, mut bytes, mut id_bytes, mut columns) = (0u64, 0u64, 0u64, 0u64);
        for i in 0..source.files.len() {
            let builder = source.open(i)?;
            let meta = builder.metadata();
            rows += meta.file_metadata().num_rows().max(0) as u64;
            for group in meta.row_groups() {
                for column in group.columns() {
                    let size = column.uncompressed_size().max(0) as u64;
                    bytes += size;
                    if column.column_path().string() == *id {
                        id_bytes += size;
                    }
                }
            }
            columns = builder.schema().fields().len() as u64;
        }
        let taxonomy = crate::taxonomy::Taxonomy::load(spec.taxonomy.as_deref())?;
        let per_row = |b: u64| b.checked_div(rows).unwrap_or(0);
        let sizes = InputSizes {
            subscribers: sample.map_or(rows, |n| n.min(rows)),
            row_bytes: per_row(bytes),
            id_bytes: per_row(id_bytes).max(8),
            pass_through: columns.saturating_sub(5),
            touchpoints: taxonomy.len() as u64,
        };
        Ok(MemoryEstimate::new(sizes, written))
    }

    /// The output writer's memory with `shards` shards being merged: one row group
    /// encoded, the piece being handed on, and a batch of each partial.
    pub fn output(&self, shards: u32) -> u64 {
        let group = self.subscribers.min(ROW_GROUP_ROWS as u64);
        group * self.encoded_row
            + (PIECE_ROWS as u64 + shards as u64 * MERGE_BATCH_ROWS as u64) * self.output_row
    }

    /// The estimated peak with `shards` shards.
    pub fn peak(&self, shards: u32) -> u64 {
        let shard = self.subscribers.div_ceil(shards.max(1) as u64) * self.per_subscriber;
        self.base + self.held + shard.max(self.once).max(self.output(shards))
    }

    /// The fewest shards that keep the estimate under `budget` bytes (with the margin).
    pub fn shards_for(&self, budget: u64) -> Result<u32, ShardError> {
        let usable = (budget as f64 * Self::USABLE) as u64;
        let too_small = |needed: u64| ShardError::Budget {
            budget: crate::console::human_bytes(budget),
            rows: self.subscribers,
            needed: crate::console::human_bytes((needed as f64 / Self::USABLE) as u64),
            what: match self.written {
                TableKind::Model { .. } => {
                    "the feature tables of every snapshot, which training holds whole: train on a sample with --sample N"
                }
                _ => "the population's columns, its ranking and one output row group",
            },
        };
        let fixed = self.base + self.held + self.once.max(self.output(1));
        if usable <= fixed {
            return Err(too_small(fixed));
        }
        let room = usable - self.base - self.held;
        let total = self.subscribers * self.per_subscriber;
        let k = total.div_ceil(room).clamp(1, 4096) as u32;
        if self.peak(k) > usable {
            return Err(too_small(self.peak(k)));
        }
        Ok(k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table of `rows` rows with a list column of uneven lengths (whose pages the
    /// writer cuts by values, not rows) and a string column.
    fn uneven(rows: usize) -> RecordBatch {
        use arrow::array::{ListBuilder, StringArray, StringBuilder};
        let mut lists = ListBuilder::new(StringBuilder::new());
        for i in 0..rows {
            for k in 0..(i * 7919 % 5) {
                lists
                    .values()
                    .append_value(format!("reason {} {k}", i % 97));
            }
            lists.append(i % 11 != 0);
        }
        let ids =
            StringArray::from_iter_values((0..rows).map(|i| format!("S{:07}", i * 31 % rows)));
        RecordBatch::try_from_iter([
            ("subscriber_id", Arc::new(ids) as ArrayRef),
            ("reasons", Arc::new(lists.finish()) as ArrayRef),
        ])
        .unwrap()
    }

    fn written(path: &Path, batches: &[RecordBatch]) -> Vec<u8> {
        let mut sink = ParquetSink::create(path, batches[0].schema()).unwrap();
        for b in batches {
            sink.write(b).unwrap();
        }
        let staged = sink.finish().unwrap();
        std::fs::read(staged.temp()).unwrap()
    }

    #[test]
    fn a_file_has_the_same_bytes_however_its_rows_are_handed_to_the_sink() {
        // more than two pieces, so that a boundary falls inside a handed batch
        let rows = 2 * PIECE_ROWS + 12_345;
        let table = uneven(rows);
        let dir = tempfile::tempdir().unwrap();
        let whole = written(&dir.path().join("whole.parquet"), &[table.clone()]);
        let cuts = [0, 1000, 71_000, 104_333, 140_000, rows];
        let pieces: Vec<RecordBatch> = cuts
            .windows(2)
            .map(|w| table.slice(w[0], w[1] - w[0]))
            .collect();
        let fed = written(&dir.path().join("fed.parquet"), &pieces);
        assert!(
            whole == fed,
            "the bytes depend on how the rows were handed on"
        );
        // and the pieces are what the writer sees: a table cut elsewhere, written
        // straight to the writer, differs (else this test could not fail)
        let mut direct = Vec::new();
        let mut w = ArrowWriter::try_new(
            &mut direct,
            table.schema(),
            Some(crate::write::parquet_properties()),
        )
        .unwrap();
        for b in &pieces {
            w.write(b).unwrap();
        }
        w.close().unwrap();
        let mut straight = Vec::new();
        let mut w = ArrowWriter::try_new(
            &mut straight,
            table.schema(),
            Some(crate::write::parquet_properties()),
        )
        .unwrap();
        w.write(&table).unwrap();
        w.close().unwrap();
        assert!(
            direct != straight,
            "the writer's pages did not depend on the batches"
        );
    }

    #[test]
    fn sizes_parse_with_binary_and_decimal_units() {
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("1GB"), Ok(1_000_000_000));
        assert_eq!(parse_size("1.5 GiB"), Ok(3 << 29));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("0GiB").is_err());
    }

    fn sizes(subscribers: u64) -> InputSizes {
        InputSizes {
            subscribers,
            row_bytes: 80,
            id_bytes: 12,
            pass_through: 5,
            touchpoints: 19,
        }
    }

    #[test]
    fn more_memory_means_fewer_shards() {
        let e = MemoryEstimate::new(sizes(2_000_000), TableKind::Scores);
        let small = e.shards_for(1 << 30).unwrap();
        let large = e.shards_for(8 << 30).unwrap();
        assert!(small > large && large >= 1, "{small} {large}");
        assert!(matches!(
            e.shards_for(1 << 20),
            Err(ShardError::Budget { .. })
        ));
        // the chosen K keeps the estimated peak inside the usable share, and one fewer
        // shard would not
        let budget = 1u64 << 30;
        let usable = (budget as f64 * MemoryEstimate::USABLE) as u64;
        assert!(e.peak(small) <= usable);
        assert!(e.peak(small - 1) > usable);
        // the nightly job holds more (the previous night) than scoring alone
        let night = MemoryEstimate::new(sizes(2_000_000), TableKind::Night);
        assert!(night.shards_for(budget).unwrap() >= small);
    }
}
