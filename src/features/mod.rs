//! Feature engineering (SPEC §4): one row per subscriber active at `as_of`, built from
//! the subscriber table and the events strictly before `as_of`.
//!
//! The fused pass over the events lives in [`accumulate`]; this module runs it over the
//! row groups in parallel and turns the accumulators into the feature table. One pass
//! can serve several snapshot dates ([`build_snapshots`]).
//!
//! Column order: `subscriber_id`, the SPEC §4 core features ([`core_feature_names`]),
//! with `extended` the extended features ([`extended_feature_names`]: reason counts,
//! handling time, then the per-touchpoint counts), then the pass-through subscriber
//! columns. The per-touchpoint counts `tp_{touchpoint}_{W}d` (Int64, never null) count
//! each taxonomy touchpoint's events in `[as_of − W days, as_of)` like the other counts,
//! so that a model sees what the taxonomy groups into one category, stage or kind. They
//! are grouped by window, like the core counts: every touchpoint's 7-day count in
//! [`Taxonomy::iter`] order (by name), then the 30-day ones, then the 90-day ones.
//! Touchpoints missing from the taxonomy (`other`) get no column. The custom features
//! the inputs define ([`custom`], evaluated with polars) come last, in definition order.

pub mod accumulate;
pub mod codes;
pub mod custom;
pub mod names;

pub use names::{
    core_feature_names, extended_feature_names, touchpoint_feature_name, touchpoint_feature_names,
};

use std::sync::Arc;
use std::sync::Mutex;

use arrow::array::{Array, ArrayRef, Float64Array, Int64Array, RecordBatch, UInt32Array};
use arrow::compute::take;
use arrow::datatypes::{DataType, Field, Schema};
use rayon::prelude::*;

use crate::asof::{AsOf, MICROS_PER_DAY};
use crate::load::interactions::EventField;
use crate::load::{IdIndex, Interactions, LoadError, Subscribers};
use crate::shard::Shard;
use crate::taxonomy::{Category, Kind, Stage, Taxonomy, TouchpointClass};
use accumulate::{
    Accumulator, EventCounts, FixedSum, PassContext, PassState, SLOT_CATEGORY, SLOT_KIND,
    SLOT_STAGE, SnapshotTable, Sum, TouchpointCounts, TouchpointUse, UseCounts, WINDOWS, Worker,
};
use codes::ChannelRegistry;

/// Which features to build.
#[derive(Debug, Clone, Copy)]
pub struct FeatureParams {
    pub as_of: AsOf,
    /// Also build the extended features (reason counts, handling time, per-touchpoint
    /// counts); they read two more columns. The SPEC §4 core features are always built.
    pub extended: bool,
    /// Also count each subscriber's use of each touchpoint ([`TouchpointUsage`]), for
    /// touchpoint recommendations; not part of the feature table.
    pub touchpoint_use: bool,
}

/// A feature table and what went into it.
pub struct FeatureTable {
    pub as_of: AsOf,
    /// `subscriber_id`, the features, then the pass-through subscriber columns.
    pub batch: RecordBatch,
    /// Rows of the subscriber table behind each output row.
    pub rows: Vec<u32>,
    /// Each output row's position in the subscriber input ([`Subscribers::positions`]):
    /// the canonical row order, the same whether or not the input was read by shard.
    pub positions: Vec<u64>,
    pub events: EventCounts,
    /// Subscribers in the file and active at `as_of`.
    pub subscribers: usize,
    /// Touchpoint use per row, when asked for.
    pub touchpoint_use: Option<TouchpointUsage>,
}

impl FeatureTable {
    /// The tables of one snapshot built shard by shard (disjoint subscribers), joined in
    /// canonical order (each row's position in the subscriber input), as a table built
    /// in one piece holds them. `rows` become those positions (the key that pairs a
    /// subscriber across snapshots: one input row, whichever shard read it), a column is
    /// nullable when it is in any shard, event counts are summed, and the touchpoints'
    /// mean costs are recomputed from the exact sums.
    pub fn join_shards(parts: Vec<FeatureTable>) -> Result<FeatureTable, FeatureError> {
        let Some(first) = parts.first() else {
            return Err(arrow::error::ArrowError::InvalidArgumentError(
                "no shard's table to join".into(),
            )
            .into());
        };
        let as_of = first.as_of;
        let fields: Vec<Field> = first
            .batch
            .schema()
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let nullable = parts.iter().any(|p| {
                    p.batch
                        .schema()
                        .fields()
                        .get(i)
                        .is_some_and(|g| g.is_nullable())
                });
                f.as_ref().clone().with_nullable(nullable)
            })
            .collect();
        let schema = Arc::new(Schema::new(fields));
        let mut order: Vec<(u64, usize, usize)> = parts
            .iter()
            .enumerate()
            .flat_map(|(k, p)| {
                p.positions
                    .iter()
                    .enumerate()
                    .map(move |(i, &pos)| (pos, k, i))
            })
            .collect();
        order.sort_unstable();
        let batches = parts
            .iter()
            .map(|p| RecordBatch::try_new(Arc::clone(&schema), p.batch.columns().to_vec()))
            .collect::<Result<Vec<_>, _>>()?;
        let indices: Vec<(usize, usize)> = order.iter().map(|&(_, k, i)| (k, i)).collect();
        let refs: Vec<&RecordBatch> = batches.iter().collect();
        let batch = arrow::compute::interleave_record_batch(&refs, &indices)?;
        let mut events = EventCounts::default();
        let mut subscribers = 0;
        for p in &parts {
            events.absorb(p.events.clone());
            subscribers += p.subscribers;
        }
        let touchpoint_use = match parts
            .iter()
            .map(|p| p.touchpoint_use.as_ref())
            .collect::<Option<Vec<_>>>()
        {
            Some(usages) if !usages.is_empty() => {
                let known = usages[0].touchpoints.len();
                let mut cost = vec![(FixedSum::default(), 0u64); known];
                for u in &usages {
                    for (total, (sum, n)) in cost.iter_mut().zip(&u.cost) {
                        total.0.merge(sum);
                        total.1 += n;
                    }
                }
                Some(TouchpointUsage {
                    touchpoints: usages[0].touchpoints.clone(),
                    uses: order
                        .iter()
                        .flat_map(|&(_, k, i)| usages[k].row(i).iter().copied())
                        .collect(),
                    mean_cost: cost
                        .iter()
                        .map(|(sum, n)| (*n > 0).then(|| sum.value() / *n as f64))
                        .collect(),
                    cost,
                })
            }
            _ => None,
        };
        let positions: Vec<u64> = order.iter().map(|&(pos, _, _)| pos).collect();
        Ok(FeatureTable {
            as_of,
            batch,
            rows: positions.iter().map(|&p| p as u32).collect(),
            positions,
            events,
            subscribers,
            touchpoint_use,
        })
    }
}

/// Each active subscriber's use of each taxonomy touchpoint in the 90 days before
/// `as_of`, and what each touchpoint costs to serve.
#[derive(Debug, Clone)]
pub struct TouchpointUsage {
    /// The taxonomy's touchpoints with their classes.
    pub touchpoints: Vec<(String, TouchpointClass)>,
    /// `uses[row * touchpoints.len() + k]`, rows in feature-table order.
    pub uses: Vec<TouchpointUse>,
    /// Mean cost to serve per event, over every active subscriber's 90-day events
    /// (`None` without cost data).
    pub mean_cost: Vec<Option<f64>>,
    /// The sums behind `mean_cost`: cost to serve and events with a cost, per touchpoint
    /// (exact fixed-point sums, so that shards add up to the whole).
    pub cost: Vec<(FixedSum, u64)>,
}

impl TouchpointUsage {
    fn new(
        taxonomy: &Taxonomy,
        events: &TouchpointCounts,
        counts: UseCounts,
        rows: usize,
    ) -> TouchpointUsage {
        let mean_cost = counts
            .cost
            .iter()
            .zip(&counts.cost_n)
            .map(|(sum, &n)| (n > 0).then(|| sum.value() / n as f64))
            .collect();
        let uses = (0..rows)
            .flat_map(|slot| (0..counts.known).map(move |k| (slot, k)))
            .map(|(slot, k)| counts.touchpoint_use(events, slot, k))
            .collect();
        TouchpointUsage {
            touchpoints: taxonomy.iter().map(|(n, c)| (n.to_string(), c)).collect(),
            uses,
            mean_cost,
            cost: counts.cost.iter().copied().zip(counts.cost_n).collect(),
        }
    }

    /// Row `r`'s use of every touchpoint.
    pub fn row(&self, r: usize) -> &[TouchpointUse] {
        let k = self.touchpoints.len();
        self.uses.get(r * k..(r + 1) * k).unwrap_or(&[])
    }
}

/// Why features could not be built.
#[derive(Debug, thiserror::Error)]
pub enum FeatureError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("failed to assemble the feature table: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error(
        "{path}: column(s) {} have the name of a column churnseg computes, so the feature table would hold two columns of that name; rename them, or leave them out with `--exclude-columns` (`inputs.exclude_columns` in a pipeline config)",
        names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
    )]
    ReservedColumns { path: String, names: Vec<String> },
    #[error(transparent)]
    Custom(#[from] crate::custom_features::CustomError),
}

/// Subscriber columns whose names the feature table already uses: `subscriber_id` and
/// every core and extended feature, the per-touchpoint counts included (whether or not
/// this run builds the extended ones, so that `features` and `train` agree).
fn reserved_columns(subscribers: &Subscribers, taxonomy: &Taxonomy) -> Vec<String> {
    let computed = names::reserved_names(taxonomy);
    subscribers
        .extra
        .iter()
        .map(|c| c.field.name())
        .filter(|n| computed.contains(n))
        .cloned()
        .collect()
}

/// Builds the feature table. `progress` is called with the number of events read so far.
pub fn build(
    subscribers: &Subscribers,
    interactions: Option<&Interactions>,
    taxonomy: &Taxonomy,
    params: FeatureParams,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<FeatureTable, FeatureError> {
    build_shard(
        subscribers,
        interactions,
        taxonomy,
        params,
        Shard::ALL,
        progress,
    )
}

/// Builds the feature table of one shard: `subscribers` holds that shard's rows
/// ([`Subscribers::load_shard`]), and only the events of that shard's subscribers enter
/// the pass (filtered as each batch is read), so the events of the other shards are not
/// counted as events of unknown subscribers and every event is counted in one shard.
pub fn build_shard(
    subscribers: &Subscribers,
    interactions: Option<&Interactions>,
    taxonomy: &Taxonomy,
    params: FeatureParams,
    shard: Shard,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<FeatureTable, FeatureError> {
    let mut tables = build_snapshots_shard(
        subscribers,
        interactions,
        taxonomy,
        std::slice::from_ref(&params),
        shard,
        progress,
    )?;
    // one table per snapshot asked for
    Ok(tables.swap_remove(0))
}

/// Builds one feature table per snapshot in `snapshots` (each with its own `as_of` and
/// options), in that order, from a single scan of the events: each table is the one
/// [`build`] would give for that snapshot alone, byte for byte. Meant for a few dates
/// (training's stacked snapshots and its validation snapshot): memory is one table of
/// accumulators per snapshot. `progress` is called with the number of events read so far.
pub fn build_snapshots(
    subscribers: &Subscribers,
    interactions: Option<&Interactions>,
    taxonomy: &Taxonomy,
    snapshots: &[FeatureParams],
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<FeatureTable>, FeatureError> {
    build_snapshots_shard(
        subscribers,
        interactions,
        taxonomy,
        snapshots,
        Shard::ALL,
        progress,
    )
}

/// [`build_snapshots`] of one shard (see [`build_shard`]).
pub fn build_snapshots_shard(
    subscribers: &Subscribers,
    interactions: Option<&Interactions>,
    taxonomy: &Taxonomy,
    snapshots: &[FeatureParams],
    shard: Shard,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<FeatureTable>, FeatureError> {
    let names = reserved_columns(subscribers, taxonomy);
    if !names.is_empty() {
        return Err(FeatureError::ReservedColumns {
            path: subscribers.source.clone(),
            names,
        });
    }
    let known = taxonomy.len();
    let active: Vec<Vec<u32>> = snapshots
        .iter()
        .map(|p| subscribers.active_rows(p.as_of))
        .collect();
    let tables: Vec<SnapshotTable> = snapshots
        .iter()
        .zip(&active)
        .map(|(p, rows)| {
            SnapshotTable::new(
                p.as_of,
                subscribers.len(),
                rows,
                known,
                p.extended || p.touchpoint_use,
                p.touchpoint_use,
            )
        })
        .collect();
    // One snapshot: ids map straight to its slots. Several: ids map to subscriber rows,
    // and each snapshot maps rows to its slots.
    let index_gives_slots = tables.len() == 1;
    let index = match tables.first() {
        Some(t) if index_gives_slots => IdIndex::new(&subscribers.ids, &t.slot_of_row),
        _ => {
            let all_rows: Vec<u32> = (0..subscribers.len() as u32).collect();
            IdIndex::new(&subscribers.ids, &all_rows)
        }
    };
    let registry = ChannelRegistry::default();
    let ctx = PassContext {
        index: &index,
        index_gives_slots,
        taxonomy,
        channels: &registry,
        snapshots: &tables,
    };
    let extended = snapshots.iter().any(|p| p.extended);
    let counts = match interactions {
        Some(events) => run_pass(events, &ctx, extended, shard, progress)?,
        None => vec![EventCounts::default(); snapshots.len()],
    };
    drop(index);
    let mut out = Vec::with_capacity(snapshots.len());
    for (((params, rows), table), events) in snapshots.iter().zip(active).zip(tables).zip(counts) {
        let mut state = table.into_state(known);
        let batch = assemble(subscribers, &rows, &state, taxonomy, *params)?;
        let touchpoint_use = match (state.uses.take(), &state.touchpoint_counts) {
            (Some(uses), Some(events)) => {
                Some(TouchpointUsage::new(taxonomy, events, uses, rows.len()))
            }
            _ => None,
        };
        out.push(FeatureTable {
            as_of: params.as_of,
            batch,
            positions: rows
                .iter()
                .map(|&r| subscribers.positions[r as usize])
                .collect(),
            rows,
            events,
            subscribers: subscribers.len(),
            touchpoint_use,
        });
    }
    Ok(out)
}

/// The event columns the pass reads besides the id, the instant and the touchpoint.
fn wanted_fields(extended: bool) -> Vec<EventField> {
    let mut wanted = vec![
        EventField::Channel,
        EventField::Satisfaction,
        EventField::Revenue,
        EventField::Cost,
        EventField::Resolved,
    ];
    if extended {
        wanted.extend([EventField::Reason, EventField::DurationS]);
    }
    wanted
}

/// Runs the fused pass over every row group, in parallel, and returns each snapshot's
/// event counts (the accumulators are in the snapshots' tables).
fn run_pass(
    events: &Interactions,
    ctx: &PassContext<'_>,
    extended: bool,
    shard: Shard,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<EventCounts>, FeatureError> {
    let groups = events.row_groups()?;
    let wanted = wanted_fields(extended);
    // Workers (coders, counts and scratch, no accumulators) are pooled: one per thread.
    let pool: Mutex<Vec<Worker<'_>>> = Mutex::new(Vec::new());
    let done = std::sync::atomic::AtomicU64::new(0);
    groups
        .par_iter()
        .try_for_each(|group| -> Result<(), FeatureError> {
            let taken = pool.lock().unwrap_or_else(|e| e.into_inner()).pop();
            let mut worker = taken.unwrap_or_else(|| Worker::new(ctx));
            let result = events
                .for_each_batch_of(group, &wanted, shard, |batch| worker.add_batch(ctx, batch));
            pool.lock().unwrap_or_else(|e| e.into_inner()).push(worker);
            result?;
            let total = done.fetch_add(group.rows as u64, std::sync::atomic::Ordering::Relaxed)
                + group.rows as u64;
            progress(total);
            Ok(())
        })?;
    let workers = pool.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut counts = vec![EventCounts::default(); ctx.snapshots.len()];
    for worker in workers {
        for (total, c) in counts.iter_mut().zip(worker.into_counts()) {
            total.absorb(c);
        }
    }
    Ok(counts)
}

/// The decode floor of the pass: reads the columns the pass would read (the extended
/// ones with `extended`), with the same reader, threads and batches, and drops them.
/// Returns the rows read. For measuring how close the pass is to decoding alone.
pub fn decode_floor(
    events: &Interactions,
    extended: bool,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<u64, FeatureError> {
    let groups = events.row_groups()?;
    let wanted = wanted_fields(extended);
    let done = std::sync::atomic::AtomicU64::new(0);
    let rows = groups
        .par_iter()
        .map(|group| -> Result<u64, FeatureError> {
            let mut rows = 0u64;
            events.for_each_batch(group, &wanted, |batch| {
                rows += std::hint::black_box(batch).rows as u64
            })?;
            let total = done.fetch_add(group.rows as u64, std::sync::atomic::Ordering::Relaxed)
                + group.rows as u64;
            progress(total);
            Ok(rows)
        })
        .try_reduce(|| 0, |a, b| Ok(a + b))?;
    Ok(rows)
}

fn int_column(values: impl Iterator<Item = i64>) -> ArrayRef {
    Arc::new(Int64Array::from_iter_values(values))
}

fn float_column(values: impl Iterator<Item = Option<f64>>) -> ArrayRef {
    Arc::new(Float64Array::from_iter(values))
}

/// Turns the merged accumulators into the feature table.
fn assemble(
    subscribers: &Subscribers,
    rows: &[u32],
    merged: &PassState,
    taxonomy: &Taxonomy,
    params: FeatureParams,
) -> Result<RecordBatch, FeatureError> {
    let accs: &[Accumulator] = &merged.accs;
    let as_of = params.as_of;
    let mut fields = vec![Field::new(
        "subscriber_id",
        subscribers.ids.data_type(),
        false,
    )];
    let take_rows = UInt32Array::from(rows.to_vec());
    let mut columns: Vec<ArrayRef> =
        vec![take(subscribers.ids.to_array().as_ref(), &take_rows, None)?];
    let mut push = |name: String, column: ArrayRef| {
        fields.push(Field::new(
            name,
            column.data_type().clone(),
            column.null_count() > 0 || *column.data_type() == DataType::Float64,
        ));
        columns.push(column);
    };
    let count =
        |w: usize, slot: usize| int_column(accs.iter().map(move |a| a.count(w, slot) as i64));
    let days_since = |ts: fn(&Accumulator) -> i64| {
        let as_of = as_of.micros();
        float_column(accs.iter().map(move |a| {
            let t = ts(a);
            (t != i64::MIN).then(|| (as_of - t) as f64 / MICROS_PER_DAY as f64)
        }))
    };

    push(
        "tenure_days".into(),
        int_column(
            rows.iter()
                .map(|&r| (as_of.days() - subscribers.signup[r as usize]) as i64),
        ),
    );
    for (w, days) in WINDOWS.iter().enumerate() {
        push(format!("events_{days}d"), count(w, 0));
        for c in Category::ALL {
            push(format!("{c}_{days}d"), count(w, SLOT_CATEGORY + c.index()));
        }
        for s in Stage::ALL {
            push(format!("{s}_{days}d"), count(w, SLOT_STAGE + s.index()));
        }
        for k in Kind::ALL {
            push(format!("{k}_{days}d"), count(w, SLOT_KIND + k.index()));
        }
    }
    push("days_since_last_event".into(), days_since(|a| a.last));
    let kind_last: [fn(&Accumulator) -> i64; 6] = [
        |a| a.last_kind[0],
        |a| a.last_kind[1],
        |a| a.last_kind[2],
        |a| a.last_kind[3],
        |a| a.last_kind[4],
        |a| a.last_kind[5],
    ];
    for k in Kind::ALL {
        push(
            format!("days_since_last_{k}"),
            days_since(kind_last[k.index()]),
        );
    }
    push(
        "satisfaction_mean_90d".into(),
        float_column(accs.iter().map(|a| {
            (a.satisfaction_n > 0).then(|| a.sum(Sum::Satisfaction) / a.satisfaction_n as f64)
        })),
    );
    push(
        "low_satisfaction_90d".into(),
        int_column(accs.iter().map(|a| a.low_satisfaction as i64)),
    );
    push(
        "complaints_unresolved_90d".into(),
        int_column(accs.iter().map(|a| a.complaints_unresolved as i64)),
    );
    let use_slot = SLOT_KIND + Kind::Use.index();
    push(
        "use_trend".into(),
        float_column(accs.iter().map(|a| {
            let (u30, u90) = (a.count(1, use_slot) as f64, a.count(2, use_slot) as f64);
            (u90 - u30 > 0.0).then(|| u30 / ((u90 - u30) / 2.0))
        })),
    );
    let mut wide: Vec<(u32, u16)> = merged.wide_channels.clone();
    wide.sort_unstable();
    wide.dedup();
    let mut wide_counts = vec![0i64; accs.len()];
    for (slot, _) in wide {
        wide_counts[slot as usize] += 1;
    }
    push(
        "channels_distinct_90d".into(),
        int_column(
            accs.iter()
                .zip(&wide_counts)
                .map(|(a, w)| a.channels.count_ones() as i64 + w),
        ),
    );
    let revenue: Vec<Option<f64>> = accs
        .iter()
        .zip(rows)
        .map(|(a, &r)| {
            let mr = subscribers
                .monthly_revenue
                .is_valid(r as usize)
                .then(|| subscribers.monthly_revenue.value(r as usize));
            mr.map(|mr| a.sum(Sum::Revenue) + 3.0 * mr)
        })
        .collect();
    let cost: Vec<f64> = accs
        .iter()
        .zip(rows)
        .map(|(a, &r)| {
            let mc = subscribers
                .monthly_cost
                .as_ref()
                .and_then(|c| c.is_valid(r as usize).then(|| c.value(r as usize)))
                .unwrap_or(0.0);
            a.sum(Sum::Cost) + 3.0 * mc
        })
        .collect();
    let profit: Vec<Option<f64>> = revenue
        .iter()
        .zip(&cost)
        .map(|(r, c)| r.map(|r| r - c))
        .collect();
    push("revenue_90d".into(), float_column(revenue.into_iter()));
    push("cost_90d".into(), float_column(cost.into_iter().map(Some)));
    push("profit_90d".into(), float_column(profit.into_iter()));
    if params.extended {
        for (i, r) in codes::REASONS.iter().enumerate() {
            push(
                format!("reason_{r}_90d"),
                int_column(accs.iter().map(move |a| a.reasons[i] as i64)),
            );
        }
        push(
            "personnel_duration_mean_90d".into(),
            float_column(accs.iter().map(|a| {
                (a.personnel_duration_n > 0)
                    .then(|| a.sum(Sum::PersonnelDuration) / a.personnel_duration_n as f64)
            })),
        );
        if let Some(counts) = &merged.touchpoint_counts {
            let names = touchpoint_feature_names(taxonomy);
            for (name, column) in names
                .into_iter()
                .zip(touchpoint_columns(counts, accs.len()))
            {
                push(name, column);
            }
        }
    }
    for extra in &subscribers.extra {
        let column = take(extra.values.as_ref(), &take_rows, None)?;
        fields.push(extra.field.clone());
        columns.push(column);
    }
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}

/// The per-touchpoint count columns in [`touchpoint_feature_names`] order, read in one
/// pass over the counts (row by row, so the strided counts are read once).
fn touchpoint_columns(counts: &TouchpointCounts, rows: usize) -> Vec<ArrayRef> {
    let known = counts.known;
    let mut columns: Vec<Vec<i64>> = (0..WINDOWS.len() * known)
        .map(|_| Vec::with_capacity(rows))
        .collect();
    for slot in 0..rows {
        for k in 0..known {
            for (w, n) in counts.windows(slot, k).into_iter().enumerate() {
                columns[w * known + k].push(n as i64);
            }
        }
    }
    columns
        .into_iter()
        .map(|c| Arc::new(Int64Array::from(c)) as ArrayRef)
        .collect()
}

/// A numeric column of a feature batch as floats (`None` for nulls, or every row when
/// the column is absent — e.g. a feature of the interactions when there are none).
pub fn column_f64(batch: &RecordBatch, name: &str) -> Vec<Option<f64>> {
    let Some(column) = batch.column_by_name(name) else {
        return vec![None; batch.num_rows()];
    };
    match arrow::compute::cast(column, &DataType::Float64) {
        Ok(values) => {
            let values = values.as_any().downcast_ref::<Float64Array>().cloned();
            match values {
                Some(v) => v.iter().collect(),
                None => vec![None; batch.num_rows()],
            }
        }
        Err(_) => vec![None; batch.num_rows()],
    }
}

/// A column as strings (ids of any type included); empty strings for nulls, or for
/// every row when the column is missing or cannot be cast.
pub fn column_strings(batch: &RecordBatch, name: &str) -> Vec<String> {
    let Some(c) = batch.column_by_name(name) else {
        return vec![String::new(); batch.num_rows()];
    };
    match arrow::compute::cast(c, &DataType::Utf8) {
        Ok(a) => match a.as_any().downcast_ref::<arrow::array::StringArray>() {
            Some(s) => s.iter().map(|v| v.unwrap_or("").to_string()).collect(),
            None => vec![String::new(); batch.num_rows()],
        },
        Err(_) => vec![String::new(); batch.num_rows()],
    }
}

/// Counts the events of every touchpoint name missing from the taxonomy, reading only the
/// touchpoint column (for `validate` and `--strict` checks before any work starts).
pub fn unknown_touchpoints(
    events: &Interactions,
    taxonomy: &Taxonomy,
) -> Result<std::collections::BTreeMap<String, u64>, LoadError> {
    let groups = events.row_groups()?;
    let counts = groups
        .par_iter()
        .map(|group| {
            let mut coder = codes::TouchpointCoder::new(taxonomy);
            let known = coder.known();
            let mut per_code: Vec<u64> = Vec::new();
            let mut scratch = Vec::new();
            let column = [events.names.touchpoint.as_str()];
            let reader = events
                .source
                .read_row_group(group, &column, &column, 64 * 1024)?;
            for batch in reader {
                let batch = batch.map_err(|e| events.source.corrupt(group.file, e))?;
                codes::encode(batch.column(0).as_ref(), &mut scratch, |s| coder.code(s));
                for &code in &scratch {
                    if code != codes::NULL_CODE && code as usize >= known {
                        let i = code as usize - known;
                        if per_code.len() <= i {
                            per_code.resize(i + 1, 0);
                        }
                        per_code[i] += 1;
                    }
                }
            }
            Ok(coder
                .unknown_names
                .into_iter()
                .zip(per_code)
                .collect::<Vec<(String, u64)>>())
        })
        .collect::<Result<Vec<_>, LoadError>>()?;
    let mut out = std::collections::BTreeMap::new();
    for (name, n) in counts.into_iter().flatten() {
        *out.entry(name).or_default() += n;
    }
    Ok(out)
}

/// [`build`] over loaded inputs, showing a progress bar over the events and a closing
/// line (subscribers active, events used).
pub fn build_logged(
    inputs: &crate::load::Inputs,
    params: FeatureParams,
    progress: &dyn crate::progress::Progress,
) -> Result<FeatureTable, FeatureError> {
    build_logged_shard(inputs, params, Shard::ALL, progress)
}

/// [`build_logged`] of one shard (`inputs` holding that shard's subscribers).
pub fn build_logged_shard(
    inputs: &crate::load::Inputs,
    params: FeatureParams,
    shard: Shard,
    progress: &dyn crate::progress::Progress,
) -> Result<FeatureTable, FeatureError> {
    let mut tables =
        build_snapshots_logged(inputs, std::slice::from_ref(&params), shard, progress)?;
    Ok(tables.swap_remove(0))
}

/// [`build_snapshots_shard`] over loaded inputs, with a progress bar over the events and
/// a closing line (the first snapshot's subscribers active and events used).
pub fn build_snapshots_logged(
    inputs: &crate::load::Inputs,
    snapshots: &[FeatureParams],
    shard: Shard,
    progress: &dyn crate::progress::Progress,
) -> Result<Vec<FeatureTable>, FeatureError> {
    let total = inputs.interactions.as_ref().map_or(0, |i| i.rows);
    let step = progress.step(total, "features", "events");
    let mut tables = build_snapshots_shard(
        &inputs.subscribers,
        inputs.interactions.as_ref(),
        &inputs.taxonomy,
        snapshots,
        shard,
        &|done| step.set(done),
    )?;
    let Some(first) = tables.first() else {
        step.finish("no snapshot asked for".into());
        return Ok(tables);
    };
    let line = format!(
        "{} subscribers active at {}, {} events used",
        first.batch.num_rows(),
        first.as_of,
        first.events.used
    );
    step.finish(match (tables.iter().map(|t| t.as_of).min(), tables.len()) {
        (Some(oldest), n) if n > 1 => {
            format!("{n} snapshots from one scan, back to {oldest}; {line}")
        }
        _ => line,
    });
    if !inputs.custom.is_empty() {
        let step = progress.step(0, "custom", "");
        for table in &mut tables {
            custom::append(&mut table.batch, table.as_of, inputs, shard)?;
        }
        step.finish(format!(
            "{} custom feature(s) with polars at {} date(s): {}",
            inputs.custom.defs.len(),
            tables.len(),
            inputs.custom.names().join(", ")
        ));
    }
    Ok(tables)
}
