//! Snapshots: a feature table at a date and its labels (churn within the horizon),
//! each built once, and the stacks of them the models are fit on.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use arrow::array::RecordBatch;

use super::params::{TrainError, TrainParams};
use crate::asof::AsOf;
use crate::features::{self, FeatureError, FeatureParams, FeatureTable};
use crate::load::Inputs;
use crate::model::ModelError;
use crate::progress::Progress;

/// Days of history a stacked snapshot needs before it (the longest feature window).
pub(super) const FULL_HISTORY_DAYS: i32 = 90;

/// Fewest churners (and non-churners) an earlier snapshot needs for an out-of-time fit.
pub(super) const MIN_CLASS_ROWS: usize = 10;

/// A snapshot's feature table and its labels (churn within the horizon).
pub(super) struct Snapshot {
    pub(super) table: FeatureTable,
    pub(super) labels: Vec<bool>,
}

/// Snapshots by date, each built once.
pub(super) struct Snapshots<'a> {
    inputs: &'a Inputs,
    params: &'a TrainParams,
    progress: &'a dyn Progress,
    built: RefCell<BTreeMap<i32, Rc<Snapshot>>>,
    /// Day of the oldest event: earlier snapshots are stacked only when their 90-day
    /// windows lie within the history, so that their features are complete.
    pub(super) history_start: Option<i32>,
}

impl<'a> Snapshots<'a> {
    pub(super) fn new(
        inputs: &'a Inputs,
        params: &'a TrainParams,
        progress: &'a dyn Progress,
    ) -> Self {
        Snapshots {
            inputs,
            params,
            progress,
            built: RefCell::new(BTreeMap::new()),
            history_start: None,
        }
    }

    pub(super) fn get(&self, as_of: AsOf) -> Result<Rc<Snapshot>, FeatureError> {
        if let Some(s) = self.built.borrow().get(&as_of.days()) {
            return Ok(s.clone());
        }
        let table = features::build_logged(
            self.inputs,
            FeatureParams {
                as_of,
                extended: self.params.extended,
                touchpoint_use: true,
            },
            self.progress,
        )?;
        let labels = self
            .inputs
            .subscribers
            .labels(&table.rows, as_of, self.params.horizon_days);
        let snapshot = Rc::new(Snapshot { table, labels });
        self.built
            .borrow_mut()
            .insert(as_of.days(), snapshot.clone());
        Ok(snapshot)
    }

    /// Whether the history covers the longest feature window before `t`.
    pub(super) fn complete(&self, t: AsOf) -> bool {
        self.history_start
            .is_some_and(|start| t.days() >= start + FULL_HISTORY_DAYS)
    }

    /// The snapshots anchored at `anchor`: it and the `snapshots − 1` before it, `step`
    /// days apart, those with a full history.
    pub(super) fn stacked(&self, anchor: AsOf) -> Result<Vec<Rc<Snapshot>>, FeatureError> {
        let mut out = Vec::new();
        for k in 0..self.params.snapshots {
            let t = anchor.plus_days(-((k as u32 * self.params.snapshot_step_days) as i32));
            if k > 0 && !self.complete(t) {
                break;
            }
            out.push(self.get(t)?);
        }
        Ok(out)
    }
}

/// The feature rows of snapshots, one after the other.
pub(super) fn stacked_batch(snapshots: &[Rc<Snapshot>]) -> Result<RecordBatch, TrainError> {
    let batches: Vec<&RecordBatch> = snapshots.iter().map(|s| &s.table.batch).collect();
    let Some(first) = batches.first() else {
        return Err(ModelError::Data("no snapshot to fit on".into()).into());
    };
    arrow::compute::concat_batches(&first.schema(), batches)
        .map_err(|e| ModelError::Data(e.to_string()).into())
}

/// The labels of snapshots, in the order of [`stacked_batch`].
pub(super) fn stacked_labels(snapshots: &[Rc<Snapshot>]) -> Vec<bool> {
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
pub(super) fn newest_day(inputs: &Inputs, table: &FeatureTable) -> Option<i32> {
    let events = table
        .events
        .newest_ts
        .map(|ts| ts.div_euclid(crate::asof::MICROS_PER_DAY) as i32);
    inputs.subscribers.newest_day().max(events)
}
