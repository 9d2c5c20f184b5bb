//! Snapshots: a feature table at a date and its labels (churn within the horizon), every
//! one training needs built from one scan of the events, and the stacks of them the
//! models are fit on.
//!
//! **One scan.** The dates training asks for follow from its parameters alone: the
//! anchor `as_of` and its stacked predecessors (`as_of − k·step`), the validation anchor
//! `as_of − H` and its stack, and the backtest's anchors `as_of − k·step − H` with
//! theirs ([`planned_dates`]). Which of them are used depends on one thing learnt only
//! from the events — where the history starts (the oldest event of the `as_of`
//! snapshot), since an earlier snapshot is stacked only with 90 days of history before
//! it — so the plan holds every date the recipe could ask for, all are built in a
//! single pass ([`features::build_snapshots_shard`]), and the recipe then skips those
//! without a complete history. No date is built lazily: one the recipe asks for is
//! always in the plan (a miss is reported as an error, not rebuilt). The price is one
//! table of accumulators per planned date during the pass (eight with the defaults),
//! and, on a short history, a few tables built and not used.
//!
//! **Shards.** [`TrainingSnapshots::build`] works on one shard's inputs as on the whole;
//! [`TrainingSnapshots::join_shards`] joins the shards' snapshots date by date in
//! canonical order (position in the subscriber input), so the models see the rows a
//! run in one piece sees, in the same order.

use std::collections::{BTreeMap, BTreeSet};

use arrow::array::RecordBatch;

use super::params::{TrainError, TrainParams};
use crate::asof::AsOf;
use crate::features::{self, FeatureParams, FeatureTable};
use crate::load::Inputs;
use crate::model::ModelError;
use crate::progress::Progress;
use crate::shard::Shard;

/// Days of history a stacked snapshot needs before it (the longest feature window).
pub(super) const FULL_HISTORY_DAYS: i32 = 90;

/// Fewest churners (and non-churners) an earlier snapshot needs for an out-of-time fit.
pub(super) const MIN_CLASS_ROWS: usize = 10;

/// A snapshot's feature table and its labels (churn within the horizon).
pub struct Snapshot {
    pub(super) table: FeatureTable,
    pub(super) labels: Vec<bool>,
}

/// A hash sample of the subscribers (`train --sample N`): how many were kept of how
/// many, and the cut on Spark's `xxhash64(subscriber_id)` that kept them.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SampleSummary {
    /// `N`, as asked.
    pub asked: u64,
    /// Subscribers (rows of the subscriber input) kept, and read.
    pub sampled: u64,
    pub of: u64,
    /// The largest hash kept: a subscriber is in the sample when its hash is at most this.
    pub max_hash: i64,
}

/// Every snapshot training may need, built before any model is fit, with what the
/// recipe learns from the events and the guards' measure of the `as_of` snapshot.
pub struct TrainingSnapshots {
    built: BTreeMap<i32, Snapshot>,
    as_of: AsOf,
    /// Day of the oldest event of the `as_of` snapshot: earlier snapshots are stacked
    /// only when their 90-day windows lie within the history, so that their features
    /// are complete.
    pub(super) history_start: Option<i32>,
    /// The newest day any input knows of: the last event, signup or churn.
    pub(super) newest_day: Option<i32>,
    /// The health guards' measure of the `as_of` snapshot (summed over shards).
    pub(super) guard: crate::guard::Snapshot,
    pub(super) has_interactions: bool,
    /// The subscriber sample, when training on one.
    pub(super) sample: Option<SampleSummary>,
}

/// The snapshots a model anchored at `anchor` is fit on, newest first: it and the
/// `snapshots − 1` before it, `step` days apart (those with a full history: see
/// [`TrainingSnapshots::stacked`]).
fn stack_dates(anchor: AsOf, params: &TrainParams) -> impl Iterator<Item = AsOf> + '_ {
    (0..params.snapshots)
        .map(move |k| anchor.plus_days(-((k as u32 * params.snapshot_step_days) as i32)))
}

/// Every date training at `params` may build a snapshot at, oldest first: the stack of
/// `as_of`, and with interactions the stacks of `as_of − k·step − H` for each backtest
/// anchor `k` (`k = 0` is the validation's). Without interactions only `as_of` (no
/// earlier snapshot can be rebuilt from subscriber columns alone).
pub fn planned_dates(params: &TrainParams, has_interactions: bool) -> Vec<AsOf> {
    let mut days = BTreeSet::new();
    days.insert(params.as_of);
    if has_interactions {
        let h = params.horizon_days as i32;
        days.extend(stack_dates(params.as_of, params));
        for judged in stack_dates(params.as_of, params) {
            days.extend(stack_dates(judged.plus_days(-h), params));
        }
    }
    days.into_iter().collect()
}

impl TrainingSnapshots {
    /// Builds every snapshot of [`planned_dates`] from `inputs` (one shard's, or
    /// everyone's with [`Shard::ALL`]) in one scan of its events.
    pub fn build(
        inputs: &Inputs,
        params: &TrainParams,
        shard: Shard,
        progress: &dyn Progress,
    ) -> Result<TrainingSnapshots, TrainError> {
        if !inputs.subscribers.has_churn_column {
            return Err(TrainError::NoChurnColumn);
        }
        let has_interactions = inputs.interactions.is_some();
        let mut dates = planned_dates(params, has_interactions);
        // the anchor first, for the closing line
        dates.sort_by_key(|d| std::cmp::Reverse(*d));
        let asked: Vec<FeatureParams> = dates
            .iter()
            .map(|&as_of| FeatureParams {
                as_of,
                extended: params.extended,
                touchpoint_use: true,
            })
            .collect();
        let tables = features::build_snapshots_logged(inputs, &asked, shard, progress)?;
        let mut built = BTreeMap::new();
        for table in tables {
            let labels = inputs
                .subscribers
                .labels(&table.rows, table.as_of, params.horizon_days);
            built.insert(table.as_of.days(), Snapshot { table, labels });
        }
        let current = built
            .get(&params.as_of.days())
            .ok_or_else(|| not_planned(params.as_of))?;
        let guard = crate::guard::Snapshot::measure(inputs, &current.table);
        let newest_day = newest_day(inputs, &current.table);
        let mut out = TrainingSnapshots {
            built,
            as_of: params.as_of,
            history_start: None,
            newest_day,
            guard,
            has_interactions,
            sample: None,
        };
        out.history_start = out.oldest_day();
        Ok(out)
    }

    /// The snapshots of every shard joined date by date, rows in canonical order (see
    /// [`FeatureTable::join_shards`]), labels with them; counts, guards' measures and
    /// the newest day summed or taken over all shards.
    pub fn join_shards(parts: Vec<TrainingSnapshots>) -> Result<TrainingSnapshots, TrainError> {
        let mut parts = parts.into_iter();
        let Some(mut whole) = parts.next() else {
            return Err(ModelError::Data("no shard was built".into()).into());
        };
        let mut rest: Vec<TrainingSnapshots> = parts.collect();
        for part in &rest {
            whole.guard.absorb(part.guard.clone());
            whole.newest_day = whole.newest_day.max(part.newest_day);
        }
        let days: Vec<i32> = whole.built.keys().copied().collect();
        for day in days {
            let mut tables = Vec::new();
            let mut labels: Vec<(u64, bool)> = Vec::new();
            for part in std::iter::once(&mut whole).chain(rest.iter_mut()) {
                let snapshot = part
                    .built
                    .remove(&day)
                    .ok_or_else(|| not_planned(AsOf::from_days(day)))?;
                labels.extend(
                    snapshot
                        .table
                        .positions
                        .iter()
                        .copied()
                        .zip(snapshot.labels),
                );
                tables.push(snapshot.table);
            }
            labels.sort_unstable_by_key(|(position, _)| *position);
            let table = FeatureTable::join_shards(tables)?;
            let labels = labels.into_iter().map(|(_, l)| l).collect();
            whole.built.insert(day, Snapshot { table, labels });
        }
        whole.history_start = whole.oldest_day();
        Ok(whole)
    }

    /// Records the subscriber sample the snapshots were built from.
    pub fn with_sample(mut self, sample: Option<SampleSummary>) -> TrainingSnapshots {
        self.sample = sample;
        self
    }

    /// The feature table at `as_of` (the anchor).
    pub fn anchor(&self) -> Result<&FeatureTable, TrainError> {
        Ok(&self.get(self.as_of)?.table)
    }

    /// Day of the oldest event of the `as_of` snapshot.
    fn oldest_day(&self) -> Option<i32> {
        self.built
            .get(&self.as_of.days())?
            .table
            .events
            .oldest_ts
            .map(|ts| ts.div_euclid(crate::asof::MICROS_PER_DAY) as i32)
    }

    /// The snapshot at `as_of` (one of [`planned_dates`]).
    pub(super) fn get(&self, as_of: AsOf) -> Result<&Snapshot, TrainError> {
        self.built
            .get(&as_of.days())
            .ok_or_else(|| not_planned(as_of).into())
    }

    /// Whether the history covers the longest feature window before `t`.
    pub(super) fn complete(&self, t: AsOf) -> bool {
        self.history_start
            .is_some_and(|start| t.days() >= start + FULL_HISTORY_DAYS)
    }

    /// The snapshots anchored at `anchor`: it and the `snapshots − 1` before it, `step`
    /// days apart, those with a full history.
    pub(super) fn stacked(
        &self,
        anchor: AsOf,
        params: &TrainParams,
    ) -> Result<Vec<&Snapshot>, TrainError> {
        let mut out = Vec::new();
        for (k, t) in stack_dates(anchor, params).enumerate() {
            if k > 0 && !self.complete(t) {
                break;
            }
            out.push(self.get(t)?);
        }
        Ok(out)
    }
}

/// A date the recipe asked for that [`planned_dates`] did not plan: a bug, said as one.
fn not_planned(as_of: AsOf) -> ModelError {
    ModelError::Data(format!(
        "the snapshot at {as_of} was not among those built for training (a bug in the plan of snapshot dates)"
    ))
}

/// The feature rows of snapshots, one after the other.
pub(super) fn stacked_batch(snapshots: &[&Snapshot]) -> Result<RecordBatch, TrainError> {
    let batches: Vec<&RecordBatch> = snapshots.iter().map(|s| &s.table.batch).collect();
    let Some(first) = batches.first() else {
        return Err(ModelError::Data("no snapshot to fit on".into()).into());
    };
    arrow::compute::concat_batches(&first.schema(), batches)
        .map_err(|e| ModelError::Data(e.to_string()).into())
}

/// The labels of snapshots, in the order of [`stacked_batch`].
pub(super) fn stacked_labels(snapshots: &[&Snapshot]) -> Vec<bool> {
    snapshots
        .iter()
        .flat_map(|s| s.labels.iter().copied())
        .collect()
}

pub(super) fn enough_of_both(labels: &[bool]) -> bool {
    let positives = labels.iter().filter(|&&l| l).count();
    positives >= MIN_CLASS_ROWS && labels.len() - positives >= MIN_CLASS_ROWS
}

/// The newest day any input knows of: the last event (read while building `table`),
/// signup or churn.
fn newest_day(inputs: &Inputs, table: &FeatureTable) -> Option<i32> {
    let events = table
        .events
        .newest_ts
        .map(|ts| ts.div_euclid(crate::asof::MICROS_PER_DAY) as i32);
    inputs.subscribers.newest_day().max(events)
}

/// One shard's snapshots taken apart, for an engine that moves them between processes
/// ([`super::from_tables`]: Spark builds them per shard, the driver fits), and put back.
pub(super) struct SnapshotParts {
    pub snapshots: Vec<Snapshot>,
    pub as_of: AsOf,
    pub newest_day: Option<i32>,
    pub guard: crate::guard::Snapshot,
    pub has_interactions: bool,
}

impl TrainingSnapshots {
    pub(super) fn into_parts(self) -> SnapshotParts {
        SnapshotParts {
            snapshots: self.built.into_values().collect(),
            as_of: self.as_of,
            newest_day: self.newest_day,
            guard: self.guard,
            has_interactions: self.has_interactions,
        }
    }

    /// The snapshots of `parts` as [`TrainingSnapshots::build`] gives them.
    pub(super) fn from_parts(parts: SnapshotParts) -> TrainingSnapshots {
        let built = parts
            .snapshots
            .into_iter()
            .map(|s| (s.table.as_of.days(), s))
            .collect();
        let mut out = TrainingSnapshots {
            built,
            as_of: parts.as_of,
            history_start: None,
            newest_day: parts.newest_day,
            guard: parts.guard,
            has_interactions: parts.has_interactions,
            sample: None,
        };
        out.history_start = out.oldest_day();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(snapshots: usize) -> TrainParams {
        let mut p = TrainParams::new("2026-04-01".parse().unwrap(), "t");
        p.snapshots = snapshots;
        p
    }

    #[test]
    fn the_plan_holds_the_anchor_its_stack_and_the_validations() {
        let days = |p: &TrainParams, events| -> Vec<String> {
            planned_dates(p, events)
                .iter()
                .map(|d| d.to_string())
                .collect()
        };
        assert_eq!(days(&params(3), false), ["2026-04-01"]);
        assert_eq!(days(&params(1), true), ["2026-01-01", "2026-04-01"]);
        // as_of − {0, 30, 60} and as_of − 90 − {0, 30, 60, 90, 120}
        assert_eq!(
            days(&params(3), true),
            [
                "2025-09-03",
                "2025-10-03",
                "2025-11-02",
                "2025-12-02",
                "2026-01-01",
                "2026-01-31",
                "2026-03-02",
                "2026-04-01"
            ]
        );
    }
}
