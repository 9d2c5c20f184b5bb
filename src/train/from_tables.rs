//! Training snapshots as tables, for an engine that builds them shard by shard in other
//! processes and fits on one (`churnseg.spark.train`): each shard's snapshots become
//! one Arrow batch ([`shard_table`]), and the driver turns the shards' batches back into
//! the snapshots `train --shards K` joins ([`join_tables`]), so the fit is the CLI's.
//!
//! A shard's batch has, per planned snapshot, one row per active subscriber — the
//! columns [`SNAPSHOT`] (the date, as days since 1970-01-01), [`LABEL`], [`USES`] (its
//! touchpoint use, three little-endian `u32`s per taxonomy touchpoint: events, good and
//! low ratings) and then the feature table's columns — and one row holding the
//! snapshot's counts as JSON in [`META`] (features null). Nothing depends on the rows'
//! order: the driver puts the subscribers in `subscriber_id` order (the canonical order
//! of the tables it joins), which is the CLI's order when the subscriber input is
//! sorted by id.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BooleanArray, Int32Array, RecordBatch, StringArray,
    new_null_array,
};
use arrow::compute::{cast, concat_batches, filter_record_batch};
use arrow::datatypes::{DataType, Field, Int32Type, Int64Type, Schema, SchemaRef};

use super::params::{TrainError, TrainParams};
use super::snapshots::{SampleSummary, Snapshot, SnapshotParts, TrainingSnapshots};
use crate::asof::AsOf;
use crate::features::accumulate::{EventCounts, FixedSum, TouchpointUse};
use crate::features::{FeatureTable, TouchpointUsage};
use crate::load::Inputs;
use crate::model::ModelError;
use crate::progress::Progress;
use crate::shard::Shard;
use crate::taxonomy::Taxonomy;

/// The snapshot's date, as days since 1970-01-01.
pub const SNAPSHOT: &str = "__snapshot";
/// The snapshot's counts (JSON), on its one row without features.
pub const META: &str = "__meta";
/// Churn within the horizon after the snapshot.
pub const LABEL: &str = "__label";
/// The row's touchpoint use, packed.
pub const USES: &str = "__uses";
/// Columns in front of the feature columns.
const FRONT: usize = 4;

/// What a snapshot's row in [`META`] holds: the counts of the shard's feature table and,
/// on every snapshot alike, the shard's own (the guards' measure of the `as_of`
/// snapshot, the newest day).
#[derive(serde::Serialize, serde::Deserialize)]
struct Meta {
    events: EventCounts,
    subscribers: usize,
    /// The touchpoints' cost sums (`None`: no touchpoint use).
    cost: Option<Vec<(FixedSum, u64)>>,
    /// Whether each feature column is nullable in the shard's table.
    nullable: Vec<bool>,
    newest_day: Option<i32>,
    has_interactions: bool,
    guard: crate::guard::Snapshot,
}

fn data(message: impl std::fmt::Display) -> TrainError {
    ModelError::Data(format!("training tables: {message}")).into()
}

/// Builds every snapshot training at `params` needs from one shard's `inputs` (as
/// `train --shards K` builds a shard's) and returns them as one batch (see the module).
pub fn shard_table(
    inputs: &Inputs,
    params: &TrainParams,
    progress: &dyn Progress,
) -> Result<RecordBatch, TrainError> {
    params.check()?;
    let parts = TrainingSnapshots::build(inputs, params, Shard::ALL, progress)?.into_parts();
    let mut meta = Meta {
        events: EventCounts::default(),
        subscribers: 0,
        cost: None,
        nullable: Vec::new(),
        newest_day: parts.newest_day,
        has_interactions: parts.has_interactions,
        guard: parts.guard.clone(),
    };
    let first = parts
        .snapshots
        .first()
        .ok_or_else(|| data("no snapshot was built"))?;
    let features = first.table.batch.schema();
    let schema = table_schema(&features);
    let mut batches = Vec::new();
    for snapshot in &parts.snapshots {
        let table = &snapshot.table;
        if table.batch.schema().fields().len() != features.fields().len() {
            return Err(data("the snapshots' feature columns differ"));
        }
        let n = table.batch.num_rows();
        let uses: BinaryArray = (0..n)
            .map(|r| table.touchpoint_use.as_ref().map(|u| pack(u.row(r))))
            .collect();
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(Int32Array::from(vec![table.as_of.days(); n])),
            new_null_array(&DataType::Utf8, n),
            Arc::new(BooleanArray::from(snapshot.labels.clone())),
            Arc::new(uses),
        ];
        columns.extend(table.batch.columns().iter().cloned());
        batches.push(RecordBatch::try_new(Arc::clone(&schema), columns).map_err(data)?);
        meta.events = table.events.clone();
        meta.subscribers = table.subscribers;
        meta.cost = table.touchpoint_use.as_ref().map(|u| u.cost.clone());
        meta.nullable = table
            .batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.is_nullable())
            .collect();
        let json = serde_json::to_string(&meta).map_err(data)?;
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(Int32Array::from(vec![table.as_of.days()])),
            Arc::new(StringArray::from(vec![json])),
        ];
        columns.extend(
            schema
                .fields()
                .iter()
                .skip(2)
                .map(|f| new_null_array(f.data_type(), 1)),
        );
        batches.push(RecordBatch::try_new(Arc::clone(&schema), columns).map_err(data)?);
    }
    concat_batches(&schema, &batches).map_err(data)
}

/// The columns of a shard's batch, every one nullable.
fn table_schema(features: &Schema) -> SchemaRef {
    let mut fields = vec![
        Field::new(SNAPSHOT, DataType::Int32, true),
        Field::new(META, DataType::Utf8, true),
        Field::new(LABEL, DataType::Boolean, true),
        Field::new(USES, DataType::Binary, true),
    ];
    fields.extend(
        features
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true)),
    );
    Arc::new(Schema::new(fields))
}

fn pack(uses: &[TouchpointUse]) -> Vec<u8> {
    uses.iter()
        .flat_map(|u| [u.events, u.good, u.low])
        .flat_map(u32::to_le_bytes)
        .collect()
}

fn unpack(
    bytes: &[u8],
    touchpoints: usize,
    out: &mut Vec<TouchpointUse>,
) -> Result<(), TrainError> {
    if bytes.len() != 12 * touchpoints {
        return Err(data(format!(
            "a row's touchpoint use has {} bytes, not {} ({touchpoints} touchpoints)",
            bytes.len(),
            12 * touchpoints
        )));
    }
    let word = |c: &[u8]| u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    out.extend(bytes.chunks_exact(12).map(|c| TouchpointUse {
        events: word(&c[0..4]),
        good: word(&c[4..8]),
        low: word(&c[8..12]),
    }));
    Ok(())
}

/// A subscriber's key in the canonical order: its id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Int(i64),
    Text(String),
}

fn keys(ids: &dyn Array) -> Result<Vec<Option<Key>>, TrainError> {
    if ids.data_type().is_integer() {
        let ids = cast(ids, &DataType::Int64).map_err(data)?;
        Ok(ids
            .as_primitive::<Int64Type>()
            .iter()
            .map(|v| v.map(Key::Int))
            .collect())
    } else {
        let ids = cast(ids, &DataType::Utf8).map_err(data)?;
        Ok(ids
            .as_string::<i32>()
            .iter()
            .map(|v| v.map(|s| Key::Text(s.to_string())))
            .collect())
    }
}

/// `batch` with the columns and types of `schema` (an engine may hand back another
/// string or timestamp encoding), by name.
fn conform(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, TrainError> {
    let columns = schema
        .fields()
        .iter()
        .map(|f| {
            let c = batch
                .column_by_name(f.name())
                .ok_or_else(|| data(format!("a shard's rows lack the column `{}`", f.name())))?;
            if c.data_type() == f.data_type() {
                Ok(Arc::clone(c))
            } else {
                cast(c, f.data_type()).map_err(data)
            }
        })
        .collect::<Result<Vec<_>, TrainError>>()?;
    RecordBatch::try_new(Arc::clone(schema), columns).map_err(data)
}

/// The shards' snapshots from their batches (`shards[k]`: shard k's rows, in any
/// batches and any order, as [`shard_table`] made them; `reference` is the schema of
/// [`shard_table`]'s batch, e.g. on no rows of the same inputs' schemas), joined as `train --shards K` joins
/// them, with the hash sample they were built from (`sampled` is counted here).
pub fn join_tables(
    shards: &[Vec<RecordBatch>],
    reference: &Schema,
    taxonomy: &Taxonomy,
    params: &TrainParams,
    sample: Option<SampleSummary>,
) -> Result<TrainingSnapshots, TrainError> {
    if reference.fields().len() < FRONT {
        return Err(data("the reference schema has too few columns"));
    }
    let schema = table_schema(&Schema::new(reference.fields()[FRONT..].to_vec()));
    let features = Arc::new(Schema::new(
        reference.fields()[FRONT..]
            .iter()
            .map(|f| f.as_ref().clone())
            .collect::<Vec<_>>(),
    ));
    let tables = shards
        .iter()
        .map(|batches| {
            let batches = batches
                .iter()
                .map(|b| conform(b, &schema))
                .collect::<Result<Vec<_>, _>>()?;
            concat_batches(&schema, &batches).map_err(data)
        })
        .collect::<Result<Vec<_>, _>>()?;
    // the canonical order: every subscriber of any snapshot, by id
    let mut all = BTreeSet::new();
    for table in &tables {
        let ids = keys(table.column(FRONT).as_ref())?;
        let meta = table.column(1).as_string::<i32>();
        for (i, id) in ids.into_iter().enumerate() {
            if meta.is_null(i) {
                all.insert(id);
            }
        }
    }
    let position: BTreeMap<Option<Key>, u64> = all
        .into_iter()
        .enumerate()
        .map(|(i, k)| (k, i as u64))
        .collect();
    let touchpoints: Vec<_> = taxonomy.iter().map(|(n, c)| (n.to_string(), c)).collect();
    let mut parts = Vec::new();
    for table in &tables {
        parts.push(shard_snapshots(
            table,
            &features,
            &position,
            &touchpoints,
            params,
        )?);
    }
    if parts.is_empty() {
        return Err(data("no shard's rows"));
    }
    let joined = TrainingSnapshots::join_shards(parts)?;
    let sample = sample.map(|s| SampleSummary {
        sampled: joined.guard.subscriber_rows,
        ..s
    });
    Ok(joined.with_sample(sample))
}

/// One shard's snapshots from its batch.
fn shard_snapshots(
    table: &RecordBatch,
    features: &SchemaRef,
    position: &BTreeMap<Option<Key>, u64>,
    touchpoints: &[(String, crate::taxonomy::TouchpointClass)],
    params: &TrainParams,
) -> Result<TrainingSnapshots, TrainError> {
    let days = table.column(0).as_primitive::<Int32Type>();
    let meta = table.column(1).as_string::<i32>();
    let mut snapshots = Vec::new();
    let mut shard: Option<Meta> = None;
    let dates: BTreeSet<i32> = days.iter().flatten().collect();
    for day in dates {
        let mut metas = (0..table.num_rows()).filter(|&i| days.value(i) == day && meta.is_valid(i));
        let (Some(m), None) = (metas.next(), metas.next()) else {
            return Err(data(format!(
                "the snapshot at {} has not one row of counts",
                AsOf::from_days(day)
            )));
        };
        let m: Meta = serde_json::from_str(meta.value(m)).map_err(data)?;
        let rows: BooleanArray = (0..table.num_rows())
            .map(|i| Some(days.value(i) == day && meta.is_null(i)))
            .collect();
        let rows = filter_record_batch(table, &rows).map_err(data)?;
        let n = rows.num_rows();
        let labels = rows.column(2).as_boolean();
        if labels.null_count() > 0 {
            return Err(data("a row has no label"));
        }
        let labels: Vec<bool> = labels.iter().map(|l| l == Some(true)).collect();
        let ids = keys(rows.column(FRONT).as_ref())?;
        let positions = ids
            .iter()
            .map(|k| {
                position
                    .get(k)
                    .copied()
                    .ok_or_else(|| data("an unknown id"))
            })
            .collect::<Result<Vec<u64>, _>>()?;
        let touchpoint_use = match &m.cost {
            None => None,
            Some(cost) => {
                let packed = rows.column(3).as_binary::<i32>();
                let mut uses = Vec::with_capacity(n * touchpoints.len());
                for i in 0..n {
                    unpack(packed.value(i), touchpoints.len(), &mut uses)?;
                }
                Some(TouchpointUsage {
                    touchpoints: touchpoints.to_vec(),
                    uses,
                    mean_cost: cost
                        .iter()
                        .map(|(sum, n)| (*n > 0).then(|| sum.value() / *n as f64))
                        .collect(),
                    cost: cost.clone(),
                })
            }
        };
        if m.nullable.len() != features.fields().len() {
            return Err(data("the shards' feature columns differ"));
        }
        let own = Schema::new(
            features
                .fields()
                .iter()
                .zip(&m.nullable)
                .map(|(f, &nullable)| f.as_ref().clone().with_nullable(nullable))
                .collect::<Vec<_>>(),
        );
        let batch =
            RecordBatch::try_new(Arc::new(own), rows.columns()[FRONT..].to_vec()).map_err(data)?;
        snapshots.push(Snapshot {
            table: FeatureTable {
                as_of: AsOf::from_days(day),
                batch,
                rows: positions.iter().map(|&p| p as u32).collect(),
                positions,
                events: m.events.clone(),
                subscribers: m.subscribers,
                touchpoint_use,
            },
            labels,
        });
        shard.get_or_insert(m);
    }
    let m = shard.ok_or_else(|| data("a shard without snapshots"))?;
    Ok(TrainingSnapshots::from_parts(SnapshotParts {
        snapshots,
        as_of: params.as_of,
        newest_day: m.newest_day,
        guard: m.guard,
        has_interactions: m.has_interactions,
    }))
}
