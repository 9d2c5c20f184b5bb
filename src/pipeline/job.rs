//! The nightly job (`churnseg run pipelines/FILE.toml`) and the scoring step it shares
//! with `churnseg score`: generate inputs when the config asks and they are missing,
//! (re)train when asked, score, and write the scored table, the manifest and the report.
//!
//! `run` is one atomic unit. Before any work it declares and locks everything it may
//! write ([`RunOutputs`]: the model's `model.json`, `metrics.json` and `manifest.json`
//! when it may train, then `scored.parquet`, `report.html` and `manifest.json` in
//! `output.dir`; one `manifest.json`, the run's, when the two are one directory), so an unwritable, busy or misnamed output fails the run before anything
//! is replaced. Each output is staged as it is made, and all are committed together once
//! everything has succeeded; the guarantee, kill -9 inside the commit included, is
//! [`crate::write::commit`]'s. Scoring reads the freshly trained model from its staged
//! bytes, so the model on disk is never new while the scores are old, or the reverse. A
//! check that must stop the run goes right before the commit, where nothing has been
//! replaced yet. `score` commits its table and `NAME.manifest.json` the same way.

use std::path::{Path, PathBuf};
use std::time::Instant;

use arrow::array::RecordBatch;

use super::config::{ConfigError, Layout, PipelineConfig, Retrain};
use super::dates::{DateError, ModelState, RetrainDecision, RunDates};
use super::history::{self, History, HistoryError, RunRecord};
use super::sharded::{MemoryEstimate, ShardError, ShardPlan, ShardedScore, TableKind, TableOut};
use super::{CommandName, PipelineError};
use crate::asof::AsOf;
use crate::console::{Console, human_bytes};
use crate::features::FeatureParams;
use crate::features::accumulate::EventCounts;
use crate::guard::{GuardFailure, GuardReport, GuardSettings, NotScored, PreviousRun};
use crate::load::{InputSpec, Inputs, LoadError};
use crate::manifest::{RunManifest, StageTimings, manifest_path_for, peak_memory_bytes};
use crate::model::ModelError;
use crate::realised::Realised;
use crate::report::ReportError;
use crate::score::{ScoreParams, ScoreSummary, score};
use crate::segment::Movement;
use crate::train::artifact::{ArtifactError, ModelArtifact};
use crate::train::{TrainError, train};
use crate::write::{OutputSet, WriteError};

/// Why a scoring run or a nightly job failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Dates(#[from] DateError),
    #[error(transparent)]
    History(#[from] HistoryError),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error(transparent)]
    Features(#[from] crate::features::FeatureError),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    NotScored(#[from] NotScored),
    #[error(transparent)]
    Guard(#[from] GuardFailure),
    #[error(transparent)]
    Train(#[from] TrainError),
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Report(#[from] ReportError),
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error(transparent)]
    Generate(#[from] crate::generate::GenerateError),
    #[error(transparent)]
    Shard(#[from] ShardError),
    #[error(
        "`train.retrain = \"never\"` but {dir} holds no model: train one first (`churnseg train … --out {dir}`) or set `train.retrain`"
    )]
    NoModel { dir: String },
    /// What was being done when `source` happened.
    #[error("{context}")]
    Context {
        context: String,
        #[source]
        source: Box<JobError>,
    },
}

impl JobError {
    /// Whether a health guard stopped the run (exit status 3).
    pub fn stopped_by_guard(&self) -> bool {
        match self {
            JobError::Guard(_) | JobError::Train(TrainError::Guard(_)) => true,
            JobError::Shard(e) => e.stopped_by_guard(),
            JobError::Context { source, .. } => source.stopped_by_guard(),
            _ => false,
        }
    }
}

/// Adds what was being done to an error, as anyhow's `context` would.
trait Context<T> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T, JobError>;
}

impl<T, E: Into<JobError>> Context<T> for Result<T, E> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T, JobError> {
        self.map_err(|e| JobError::Context {
            context: context(),
            source: Box::new(e.into()),
        })
    }
}

/// What a scoring run did, for its summary.
pub struct ScoreOutcome {
    pub subscribers: usize,
    pub events: EventCounts,
    pub summary: ScoreSummary,
    pub timings: StageTimings,
    pub model_version: String,
    pub outputs: Vec<PathBuf>,
    /// Movement since the previous scored table, when one was given.
    pub movement: Option<Movement>,
    /// The scored table as written.
    pub scored: RecordBatch,
    /// The health guards on the scored snapshot.
    pub guards: GuardReport,
}

impl ScoreOutcome {
    /// The closing summary's lines.
    pub fn summary_lines(&self) -> Vec<(&'static str, String)> {
        let s = &self.summary;
        vec![
            (
                "rows in",
                format!(
                    "{} subscribers, {} events",
                    self.subscribers, self.events.read
                ),
            ),
            (
                "rows out",
                format!("{} scored (model {})", s.rows, self.model_version),
            ),
            ("skipped", super::skipped_line(&self.events)),
            ("guards", self.guards.summary_line()),
            (
                "segments",
                format!(
                    "top20 {} / middle50 {} / bottom30 {}; {}",
                    s.segments[0],
                    s.segments[1],
                    s.segments[2],
                    s.whale.summary()
                ),
            ),
            (
                "risk",
                format!(
                    "mean churn probability {:.3}, value at risk {:.0}",
                    s.mean_churn_probability, s.value_at_risk
                ),
            ),
            (
                "actions",
                s.actions
                    .iter()
                    .map(|(a, n)| format!("{a} {n}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            ("drivers", s.drivers_line()),
            ("targeting", targeting_line(&s.targeting)),
            (
                "movement",
                self.movement
                    .as_ref()
                    .map(Movement::summary)
                    .unwrap_or_else(|| "no previous run given".into()),
            ),
            ("timings", super::timings_line(&self.timings)),
            (
                "peak memory",
                peak_memory_bytes()
                    .map(human_bytes)
                    .unwrap_or_else(|| "unknown".into()),
            ),
            (
                "outputs",
                self.outputs
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
        ]
    }
}

impl ScoreOutcome {
    /// The outcome of a sharded scoring run, with the inputs as the manifest describes
    /// them and where the scored table is staged (when it is one file). The scored rows
    /// are on disk only: a sharded run never holds them all.
    fn of_shards(
        scored: ShardedScore,
        artifact: &ModelArtifact,
        timings: StageTimings,
    ) -> (ScoreOutcome, serde_json::Value, Option<PathBuf>) {
        let described = scored.gathered.describe();
        let outcome = ScoreOutcome {
            subscribers: scored.gathered.subscribers,
            events: scored.gathered.events.clone(),
            summary: scored.summary,
            timings,
            model_version: artifact.model_version.clone(),
            outputs: Vec::new(),
            movement: scored.movement,
            scored: RecordBatch::new_empty(std::sync::Arc::new(arrow::datatypes::Schema::empty())),
            guards: scored.guards,
        };
        (outcome, described, scored.staged)
    }
}

fn targeting_line(t: &crate::score::Targeting) -> String {
    match t.budget {
        None => "no budget given (nobody targeted)".to_string(),
        Some(b) => format!(
            "{} targeted for {:.0} of {:.0}; expected saved profit {:.0}, net return {:.0}",
            t.targeted, t.spend, b, t.expected_saved_profit, t.expected_return
        ),
    }
}

/// Scores already-loaded inputs; compares with `previous` (an earlier scored table, and
/// what is known of its run) when given. The health guards are judged before anything
/// is scored. Writes nothing: the caller stages the table.
#[allow(clippy::too_many_arguments)]
pub fn score_inputs(
    inputs: &Inputs,
    artifact: &ModelArtifact,
    as_of: AsOf,
    params: &ScoreParams,
    previous: Option<(&RecordBatch, &PreviousRun)>,
    guards: &GuardSettings,
    timings: &mut StageTimings,
    console: &Console,
) -> Result<ScoreOutcome, JobError> {
    let features = FeatureParams {
        as_of,
        extended: artifact.extended_features,
        touchpoint_use: true,
    };
    let table = timings.time("features", || {
        crate::features::build_logged(inputs, features, console)
    })?;
    let guards = crate::guard::check(inputs, &table, guards, previous.map(|p| p.1)).enforce()?;
    guards.warnings().iter().for_each(|w| console.say(w));
    let previous = previous.map(|p| p.0);
    let step = console.progress(0, "score", "");
    let scored = timings
        .time("score", || score(&table, artifact, params))
        .context(|| format!("scoring with model `{}`", artifact.model_version))?;
    step.finish(format!("{} subscribers", scored.summary.rows));
    let movement = previous.map(|p| Movement::between(p, &scored.batch));
    Ok(ScoreOutcome {
        subscribers: inputs.subscribers.len(),
        events: table.events,
        summary: scored.summary,
        timings: std::mem::take(timings),
        model_version: artifact.model_version.clone(),
        outputs: Vec::new(),
        movement,
        scored: scored.batch,
        guards,
    })
}

/// The columns of a previous scored table that movement and the guards read (the
/// baseline is held whole, so only these are read).
pub const PREVIOUS_COLUMNS: [&str; 4] = [
    "subscriber_id",
    "value_segment",
    "risk_decile",
    "churn_probability",
];

/// The previous scored table at `path` ([`PREVIOUS_COLUMNS`]) and what is known of its
/// run (`manifest`, or the manifest beside it).
fn read_previous_scored(
    path: &Path,
    manifest: Option<&Path>,
) -> Result<(RecordBatch, PreviousRun), JobError> {
    let batch = crate::load::scored::read_scored_columns(path, &PREVIOUS_COLUMNS)
        .context(|| format!("reading the previous scored file {}", path.display()))?;
    let run = PreviousRun::from_scored(path, &batch, manifest)?;
    Ok((batch, run))
}

/// The manifest of a scoring run (`score`), in one piece or by shard (`shards`).
fn score_manifest(
    inputs: serde_json::Value,
    as_of: AsOf,
    shards: Option<u32>,
    artifact: &ModelArtifact,
    params: &ScoreParams,
    outcome: &ScoreOutcome,
    outputs: &OutputSet,
) -> RunManifest {
    let mut manifest = RunManifest::new("score");
    manifest.set("inputs", inputs);
    manifest.set("as_of", as_of);
    if let Some(k) = shards {
        manifest.set("shards", k);
    }
    manifest.set("events", &outcome.events);
    manifest.set("model_version", &artifact.model_version);
    manifest.set("model_sha256", &artifact.sha256);
    manifest.set("model_metrics", &artifact.metrics);
    manifest.set("score_params", params);
    manifest.set("scored", &outcome.summary);
    manifest.set("movement", &outcome.movement);
    manifest.set("guards", &outcome.guards);
    super::set_recovered(&mut manifest, outputs);
    manifest.finish(&outcome.timings);
    manifest.set(
        "outputs",
        outcome
            .outputs
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>(),
    );
    manifest
}

/// `churnseg score`: load, score, write the table and its manifest, together. `previous`
/// (an earlier scored file, which may be `out` itself) is read before anything is
/// written. With a `plan`, shard by shard ([`super::sharded::score`]): the scored table
/// (one file, or part files and `_SUCCESS`) is staged from the shards' partials and never
/// held whole.
#[allow(clippy::too_many_arguments)]
pub fn score_to_file(
    spec: &InputSpec,
    strict: bool,
    artifact: &ModelArtifact,
    as_of: AsOf,
    params: &ScoreParams,
    previous: Option<&Path>,
    guards: &GuardSettings,
    plan: Option<&ShardPlan>,
    out: &Path,
    console: &Console,
) -> Result<ScoreOutcome, JobError> {
    let table = TableOut::of(out);
    let manifest_path = match plan {
        Some(_) => table.manifest(),
        None => manifest_path_for(out),
    };
    let mut declared = match plan {
        Some(plan) => table.files(plan.shards),
        None => vec![out.to_path_buf()],
    };
    declared.push(manifest_path.clone());
    let declared: Vec<&Path> = declared.iter().map(PathBuf::as_path).collect();
    let mut outputs = OutputSet::begin("score", &declared)?;
    super::say_notes(console, &outputs);
    let mut timings = StageTimings::default();
    let previous = previous
        .map(|p| read_previous_scored(p, None))
        .transpose()?;
    let previous = previous.as_ref().map(|(b, r)| (b, r));
    let (mut outcome, described) = match plan {
        None => {
            let inputs = timings.time("load", || super::load_inputs(spec, strict, console))?;
            let mut outcome = score_inputs(
                &inputs,
                artifact,
                as_of,
                params,
                previous,
                guards,
                &mut timings,
                console,
            )?;
            outcome
                .timings
                .time("write", || outputs.stage_parquet(out, &outcome.scored))?;
            (outcome, inputs.describe())
        }
        Some(plan) => {
            let scored = timings.time("score", || {
                super::sharded::score(
                    spec,
                    strict,
                    artifact,
                    as_of,
                    params,
                    previous,
                    guards,
                    plan,
                    &table,
                    &mut outputs,
                    console,
                )
            })?;
            let (outcome, described, _) = ScoreOutcome::of_shards(scored, artifact, timings);
            (outcome, described)
        }
    };
    outcome.outputs = vec![out.to_path_buf(), manifest_path.clone()];
    let manifest = score_manifest(
        described,
        as_of,
        plan.map(|p| p.shards),
        artifact,
        params,
        &outcome,
        &outputs,
    );
    // A check that must stop scoring goes here: nothing has been replaced yet.
    outputs.stage_bytes(&manifest_path, &manifest.to_bytes()?)?;
    outputs.commit()?;
    Ok(outcome)
}

/// Every file `run` may write.
pub struct RunOutputs {
    /// `model.json` and `metrics.json` of the model directory.
    pub model: [PathBuf; 2],
    /// The model directory's `manifest.json`; `None` when the model directory is the
    /// night's directory, whose `manifest.json` is the run's (and names the model).
    pub model_manifest: Option<PathBuf>,
    /// The night's directory: `output.dir/as_of=DATE` (`by_date`) or `output.dir` (`flat`).
    pub night: PathBuf,
    pub scored: PathBuf,
    pub report: PathBuf,
    pub contacts: PathBuf,
    pub manifest: PathBuf,
    /// `runs.jsonl` and `latest` at the top of `output.dir` (`by_date` only).
    pub history: Option<[PathBuf; 2]>,
}

/// The contact list's file name, beside the report.
pub const CONTACTS_FILE: &str = "contacts.csv";

impl RunOutputs {
    pub fn of(config: &PipelineConfig, as_of: crate::asof::AsOf) -> RunOutputs {
        let (model_dir, dir) = (&config.train.model, &config.output.dir);
        let (night, history) = match config.output.layout {
            Layout::ByDate => (
                dir.join(history::partition_name(as_of)),
                Some([
                    dir.join(history::INDEX_FILE),
                    dir.join(history::LATEST_FILE),
                ]),
            ),
            Layout::Flat => (dir.clone(), None),
        };
        RunOutputs {
            model: ModelArtifact::files(model_dir),
            model_manifest: (!same_dir(model_dir, &night)).then(|| model_dir.join("manifest.json")),
            scored: night.join("scored.parquet"),
            report: night.join("report.html"),
            contacts: night.join(CONTACTS_FILE),
            manifest: night.join("manifest.json"),
            night,
            history,
        }
    }

    /// The model's files: written only when the run trains.
    fn model_files(&self) -> impl Iterator<Item = &PathBuf> {
        self.model.iter().chain(&self.model_manifest)
    }

    /// The night's files, in the order they are listed in the manifest.
    fn night_files(&self) -> [&PathBuf; 4] {
        [&self.scored, &self.report, &self.contacts, &self.manifest]
    }

    /// The files to declare: the model's only when the run may train.
    pub fn declared(&self, may_train: bool) -> Vec<&Path> {
        let model = self.model_files().filter(|_| may_train);
        model
            .chain(self.night_files())
            .chain(self.history.iter().flatten())
            .map(PathBuf::as_path)
            .collect()
    }
}

/// Whether two directory paths name the same directory (existing or not yet).
fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => std::path::absolute(a).ok() == std::path::absolute(b).ok(),
    }
}

/// How one `run` was asked to execute: besides the config, the flags.
#[derive(Debug, Clone, Default)]
pub struct RunRequest {
    /// Guards to allow, besides the config's `guards.allow`.
    pub allow: Vec<String>,
    /// `--as-of`: the night to score, instead of `score.as_of`.
    pub as_of: Option<crate::asof::AsOf>,
    /// `--shards K` or `--max-memory SIZE` (bytes), instead of the config's `[sharding]`.
    pub shards: Option<u32>,
    pub max_memory: Option<u64>,
    /// `--scratch DIR`, instead of `sharding.scratch`.
    pub scratch: Option<PathBuf>,
}

/// How a run is split: from its flags, or else its config's `[sharding]`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum RunSharding {
    Whole,
    Shards(u32),
    /// A memory budget in bytes: scoring and training each pick their shard count.
    Budget(u64),
}

impl RunSharding {
    fn of(config: &PipelineConfig, request: &RunRequest) -> RunSharding {
        let flags = (request.shards, request.max_memory);
        let config = (config.sharding.shards, config.sharding.max_memory_bytes());
        match (flags, config) {
            ((Some(k), _), _) | ((None, None), (Some(k), _)) => RunSharding::Shards(k),
            ((None, Some(b)), _) | ((None, None), (None, Some(b))) => RunSharding::Budget(b),
            _ => RunSharding::Whole,
        }
    }

    /// The shard count of a step whose memory `estimate` gives; `None` in one piece.
    fn count(
        self,
        estimate: impl FnOnce() -> Result<MemoryEstimate, ShardError>,
    ) -> Result<Option<u32>, ShardError> {
        match self {
            RunSharding::Whole => Ok(None),
            RunSharding::Shards(k) => Ok(Some(k)),
            RunSharding::Budget(b) => Ok(Some(estimate()?.shards_for(b)?)),
        }
    }
}

/// Last night's scores, if this job ran before: the baseline for movement and guards.
/// A previous table that cannot be read is said and skipped.
fn read_previous(
    paths: &RunOutputs,
    config: &PipelineConfig,
    as_of: crate::asof::AsOf,
    console: &Console,
) -> Option<(RecordBatch, PreviousRun, Option<crate::asof::AsOf>)> {
    let (scored, manifest, night) = match config.output.layout {
        Layout::Flat => (paths.scored.clone(), paths.manifest.clone(), None),
        Layout::ByDate => {
            let (night, dir) = history::previous_partition(&config.output.dir, as_of)?;
            (
                dir.join("scored.parquet"),
                dir.join("manifest.json"),
                Some(night),
            )
        }
    };
    if !scored.exists() {
        return None;
    }
    let read = crate::load::scored::read_scored_columns(&scored, &PREVIOUS_COLUMNS)
        .map_err(JobError::from)
        .and_then(|batch| {
            let run = PreviousRun::from_scored(&scored, &batch, Some(&manifest))?;
            Ok((batch, run, night))
        });
    match read {
        Ok(previous) => Some(previous),
        Err(e) => {
            console.say(format!(
                "warning: the previous {} cannot be read, so no movement is shown and the guards do not compare with it: {}",
                scored.display(),
                crate::console::error_chain(&e)
            ));
            None
        }
    }
}

/// Judges the past nights whose horizon is over by tonight (see [`crate::realised`]);
/// a night whose scored table is gone is said and skipped. Only the judged columns of
/// each night are read; their subscribers are labelled from `inputs`, or with a plan
/// shard by shard, each shard's rows of the subscriber table in turn (never the whole
/// table).
fn judge_past_nights(
    config: &PipelineConfig,
    past: &History,
    as_of: crate::asof::AsOf,
    inputs: Option<&Inputs>,
    plan: Option<&ShardPlan>,
    console: &Console,
) -> Result<Vec<Realised>, JobError> {
    let mut nights = Vec::new();
    for record in past.to_judge(as_of) {
        let path = config
            .output
            .dir
            .join(&record.partition)
            .join("scored.parquet");
        match crate::load::scored::read_scored_columns(&path, &crate::realised::JUDGED_COLUMNS) {
            Ok(batch) => {
                let labels = vec![None; batch.num_rows()];
                nights.push((record, batch, labels));
            }
            Err(e) => console.say(format!(
                "warning: night {} cannot be judged: {} cannot be read: {e}",
                record.as_of,
                path.display()
            )),
        }
    }
    let mut label = |subscribers: &crate::load::Subscribers| {
        for (record, batch, labels) in nights.iter_mut() {
            crate::realised::label(
                batch,
                record.as_of,
                record.horizon_days,
                subscribers,
                labels,
            );
        }
    };
    match (inputs, plan) {
        (Some(inputs), _) => label(&inputs.subscribers),
        (None, Some(plan)) if !past.to_judge(as_of).is_empty() => {
            let spec = config.input_spec();
            for shard in crate::shard::Shard::each(plan.shards) {
                let subscribers = crate::load::Subscribers::load_shard(
                    &spec.subscribers,
                    &spec.subscriber_columns,
                    shard,
                )?;
                label(&subscribers);
            }
        }
        (None, _) => {}
    }
    let mut out = Vec::new();
    for (record, batch, labels) in &nights {
        let r = crate::realised::judge_labelled(
            batch,
            labels,
            record.as_of,
            record.horizon_days,
            &record.model_version,
        );
        console.say(format!("{:>12}  {}", "realised", r.summary()));
        out.push(r);
    }
    Ok(out)
}

/// `churnseg run`: the whole nightly job from a config file, committed as one unit.
pub fn run_config(
    config_path: &Path,
    request: &RunRequest,
    console: &Console,
) -> Result<(), JobError> {
    let start = Instant::now();
    let config = PipelineConfig::load(config_path)?;
    let mut guards = config.guards.clone();
    guards.allow.extend_from_slice(&request.allow);
    let name = config.name.clone().unwrap_or_else(|| "pipeline".into());
    let model_dir = &config.train.model;
    let has_model = || model_dir.join("model.json").exists();
    let rule = config.train.retrain;
    let floor = config.train.retrain_below_auc;
    let may_train = match rule {
        Retrain::Never => false,
        Retrain::IfMissing if floor.is_none() => !has_model(),
        _ => true,
    };
    let dates = super::dates::resolve(
        config.score.as_of,
        config.train.as_of,
        config.train.horizon_days,
        request.as_of,
        super::dates::today_utc(),
        may_train,
    )
    .context(|| format!("resolving the dates of {}", config_path.display()))?;
    console.say(format!(
        "{:>12}  scoring {} ({}), training date {} (`train.as_of = \"{}\"`)",
        "dates", dates.as_of, dates.as_of_from, dates.train_as_of, dates.train_as_of_rule
    ));
    let paths = RunOutputs::of(&config, dates.as_of);
    let mut outputs = OutputSet::begin("run", &paths.declared(may_train)).context(|| {
        format!(
            "opening the outputs of {} (`train.model` {}, `output.dir` {})",
            config_path.display(),
            model_dir.display(),
            config.output.dir.display()
        )
    })?;
    super::say_notes(console, &outputs);
    let past = match config.output.layout {
        Layout::ByDate => History::read(&config.output.dir)?,
        Layout::Flat => History::default(),
    };
    let mut timings = StageTimings::default();
    if let Some(g) = &config.generate
        && !config.inputs.subscribers.exists()
    {
        let step = console.progress(g.subscribers as u64, "generate", "subscribers");
        let mut params = crate::generate::GenerateParams::new(g.subscribers, g.days, config.seed);
        params.end = g.end.date();
        let summary = timings
            .time("generate", || {
                crate::generate::generate(&params, &g.out, &|done| step.set(done))
            })
            .context(|| format!("generating the demo data into {}", g.out.display()))?;
        step.finish(format!(
            "{} subscribers, {} events into {}",
            summary.subscribers,
            summary.events,
            g.out.display()
        ));
    }
    let spec = config.input_spec();
    let strict = config.inputs.strict;
    // Sharded, nothing is read whole: the past nights are labelled, the model trained
    // and the night scored shard by shard, and the report reads back a few columns.
    let sharding = RunSharding::of(&config, request);
    let scratch = request
        .scratch
        .clone()
        .or_else(|| config.sharding.scratch.clone());
    let plan = sharding
        .count(|| MemoryEstimate::of_inputs(&spec, TableKind::Night))?
        .map(|shards| ShardPlan {
            shards,
            scratch: scratch.clone(),
        });
    let inputs = match plan {
        None => Some(timings.time("load", || super::load_inputs(&spec, strict, console))?),
        Some(_) => None,
    };
    let realised = timings.time("realised", || {
        judge_past_nights(
            &config,
            &past,
            dates.as_of,
            inputs.as_ref(),
            plan.as_ref(),
            console,
        )
    })?;
    // (opening the outputs may just have finished an interrupted commit of the model;
    // `always` never reads the old model, so a damaged one does not stop it)
    let existing = if has_model() && rule != Retrain::Always {
        Some(ModelArtifact::load(model_dir)?)
    } else {
        None
    };
    let newest_judged = realised
        .iter()
        .chain(past.realised().iter().rev().take(1))
        .filter_map(|r| Some((r.judged_as_of, r.roc_auc?)))
        .max_by_key(|(night, _)| *night);
    let state = ModelState {
        model_trained_as_of: existing.as_ref().map(|a| a.window.as_of),
        realised_auc: newest_judged,
    };
    let decision = super::dates::decide(rule, floor, &state, dates.train_as_of);
    let must_train = decision.trained && may_train;
    console.say(format!(
        "{:>12}  {}: {}",
        "retrain",
        if must_train {
            "training"
        } else {
            "not training"
        },
        decision.reason
    ));
    let mut trained_guards = None;
    let mut train_shards = None;
    let artifact = match existing {
        Some(artifact) if !must_train => {
            // the model computes the features it was trained on, or nothing
            config
                .custom
                .check_model(&artifact.custom_features, &artifact.model_version)
                .map_err(crate::features::FeatureError::from)?;
            artifact
        }
        None if !must_train => {
            return Err(JobError::NoModel {
                dir: model_dir.display().to_string(),
            });
        }
        _ => {
            let mut params = config.train_params(&name, dates.train_as_of);
            params.guards = guards.clone();
            let sample = config.train.sample;
            let (trained, train_guards, described) = match (&inputs, sample) {
                (Some(inputs), None) => {
                    let (trained, guards) =
                        timings.time("train", || train(inputs, &params, console))?;
                    (trained, guards, inputs.describe())
                }
                _ => {
                    let snapshots =
                        crate::train::planned_dates(&params, spec.interactions.is_some()).len();
                    let k = sharding
                        .count(|| {
                            MemoryEstimate::of_sample(
                                &spec,
                                TableKind::Model {
                                    snapshots: snapshots as u64,
                                },
                                sample,
                            )
                        })?
                        .unwrap_or(1);
                    train_shards = Some(k);
                    let t = timings.time("train", || {
                        super::sharded::train(&spec, strict, &params, k, sample, console)
                    })?;
                    (t.artifact, t.guards, t.inputs)
                }
            };
            trained_guards = Some(train_guards);
            let artifact = timings.time("save model", || trained.stage(&mut outputs, model_dir))?;
            if let Some(path) = &paths.model_manifest {
                let manifest = super::model_manifest("run", described, &artifact, &timings);
                outputs.stage_bytes(path, &manifest.to_bytes()?)?;
            }
            console.say(format!(
                "{:>12}  model {} ({} shipped, {}: ROC AUC {:.3})",
                "model",
                artifact.model_version,
                artifact.metrics.validation.chosen,
                artifact.metrics.validation.method,
                artifact.metrics.validation.churn.roc_auc
            ));
            artifact
        }
    };
    let params = config.score_params();
    let previous = read_previous(&paths, &config, dates.as_of, console);
    let (mut outcome, described, staged) = match (&inputs, &plan) {
        (Some(inputs), _) => {
            let mut outcome = score_inputs(
                inputs,
                &artifact,
                dates.as_of,
                &params,
                previous.as_ref().map(|(b, r, _)| (b, r)),
                &guards,
                &mut timings,
                console,
            )?;
            outcome.timings.time("write", || {
                outputs.stage_parquet(&paths.scored, &outcome.scored)
            })?;
            (outcome, inputs.describe(), None)
        }
        (None, Some(plan)) => {
            let scored = timings.time("score", || {
                super::sharded::score(
                    &spec,
                    strict,
                    &artifact,
                    dates.as_of,
                    &params,
                    previous.as_ref().map(|(b, r, _)| (b, r)),
                    &guards,
                    plan,
                    &TableOut::File(paths.scored.clone()),
                    &mut outputs,
                    console,
                )
            })?;
            ScoreOutcome::of_shards(scored, &artifact, std::mem::take(&mut timings))
        }
        (None, None) => return Err(ShardError::NoShard.into()),
    };
    // the report of a sharded run reads back the columns it needs from the staged table
    let read_back = match &staged {
        Some(path) => Some(
            outcome
                .timings
                .time("report columns", || super::sharded::report_table(path))?,
        ),
        None => None,
    };
    let scored = read_back.as_ref().unwrap_or(&outcome.scored);
    let previous_as_of = previous.as_ref().and_then(|p| p.2);
    let record = RunRecord {
        as_of: dates.as_of,
        partition: history::partition_name(dates.as_of),
        as_of_from: dates.as_of_from.clone(),
        train_as_of: dates.train_as_of,
        horizon_days: artifact.window.horizon_days,
        model_version: artifact.model_version.clone(),
        trained: must_train,
        retrain_reason: decision.reason.clone(),
        scored: outcome.summary.rows,
        mean_churn_probability: outcome.summary.mean_churn_probability,
        value_at_risk: outcome.summary.value_at_risk,
        targeted: outcome.summary.targeting.targeted,
        expected_return: outcome.summary.targeting.expected_return,
        previous_as_of,
        movement: outcome.movement.clone(),
        realised: realised.clone(),
    };
    let index = past.with(record);
    let realised_history = index.realised();
    outcome.timings.time("report", || {
        let (_, list) = crate::report::contacts::contacts(scored);
        outputs.stage_bytes(&paths.contacts, &crate::report::contacts::to_csv(&list)?)?;
        let options = crate::report::ReportOptions {
            currency: &config.report.currency,
            previous: previous.as_ref().map(|p| &p.0),
            as_of: Some(dates.as_of),
            previous_as_of,
            realised: &realised_history,
            contacts_csv: Some(CONTACTS_FILE),
        };
        let html = crate::report::render(scored, &artifact, &options)?;
        outputs.stage_bytes(&paths.report, html.as_bytes())?;
        Ok::<_, JobError>(())
    })?;
    outcome.outputs = paths.night_files().into_iter().cloned().collect();
    outcome
        .outputs
        .extend(paths.history.iter().flatten().cloned());
    if must_train {
        outcome.outputs.extend(paths.model_files().cloned());
    }
    let mut manifest = RunManifest::new("run");
    manifest.set("config_path", config_path.display().to_string());
    manifest.set("config", &config);
    manifest.set("dates", &dates);
    manifest.set("inputs", described);
    if let Some(plan) = &plan {
        manifest.set("shards", plan.shards);
    }
    if let Some(k) = train_shards {
        manifest.set("train_shards", k);
    }
    manifest.set("trained", must_train);
    manifest.set("retrain", &decision);
    manifest.set("model_version", &artifact.model_version);
    manifest.set("model_sha256", &artifact.sha256);
    manifest.set("model_metrics", &artifact.metrics);
    manifest.set("events", &outcome.events);
    manifest.set("scored", &outcome.summary);
    manifest.set("previous_as_of", previous_as_of);
    manifest.set("movement", &outcome.movement);
    manifest.set("realised", &realised);
    manifest.set("guards", &outcome.guards);
    if let Some(g) = &trained_guards {
        manifest.set("train_guards", g);
    }
    super::set_recovered(&mut manifest, &outputs);
    manifest.set(
        "outputs",
        outcome
            .outputs
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>(),
    );
    manifest.finish(&outcome.timings);
    // A check that must stop the run goes here (adding its figures to `manifest` first):
    // everything is staged, nothing has been replaced yet.
    outputs.stage_bytes(&paths.manifest, &manifest.to_bytes()?)?;
    if let Some([index_path, latest_path]) = &paths.history {
        outputs.stage_bytes(index_path, &index.to_bytes()?)?;
        let latest = index.latest().unwrap_or_default();
        outputs.stage_bytes(latest_path, latest.as_bytes())?;
    }
    outputs
        .commit()
        .context(|| "committing the outputs of the run".to_string())?;
    let mut lines = outcome.summary_lines();
    if let (Some(night), Some(line)) =
        (previous_as_of, lines.iter_mut().find(|l| l.0 == "movement"))
    {
        line.1 = format!("since night {night}: {}", line.1);
    }
    lines.splice(0..0, run_lines(&dates, &decision, &realised));
    super::summary(console, CommandName::Run, &lines, start);
    Ok(())
}

/// The lines a nightly run adds at the head of the scoring summary.
fn run_lines(
    dates: &RunDates,
    decision: &RetrainDecision,
    realised: &[Realised],
) -> Vec<(&'static str, String)> {
    vec![
        (
            "dates",
            format!(
                "scored {} ({}), trained as of {} ({}), horizon {} days",
                dates.as_of,
                dates.as_of_from,
                dates.train_as_of,
                dates.train_as_of_rule,
                dates.horizon_days
            ),
        ),
        (
            "retrain",
            format!(
                "{}: {}",
                if decision.trained {
                    "trained"
                } else {
                    "not trained"
                },
                decision.reason
            ),
        ),
        (
            "realised",
            if realised.is_empty() {
                "no night's horizon ended since the last judged one".to_string()
            } else {
                realised
                    .iter()
                    .map(Realised::summary)
                    .collect::<Vec<_>>()
                    .join("; ")
            },
        ),
    ]
}
