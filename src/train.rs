//! Training (SPEC §3, §5): snapshots, labels, out-of-time validation and the model
//! artifact.
//!
//! The final churn model is fit on the snapshot at `as_of` with labels
//! `churn_date ∈ [as_of, as_of + H)`. Its metrics come from an out-of-time check: the
//! same recipe fit on the snapshot at `as_of − H` (whose labels all fall before `as_of`,
//! so nothing from the future leaks in) and judged on the snapshot at `as_of`. When the
//! history allows no earlier snapshot — no interactions, or too few churners in it — the
//! metrics come from a stratified random 80/20 holdout of the `as_of` snapshot instead,
//! and say so.
//!
//! **Stacked snapshots.** With `snapshots = n > 1`, every model is fit on the rows of
//! `n` snapshots `step` days apart (its anchor, anchor − step, …), each labelled with
//! churn in its own `[t, t + H)`: more rows, and more than one season. Each snapshot's
//! features use only the events before its own date, so stacking leaks nothing. The
//! backtest then judges every one of the `n` most recent snapshots out of time — a
//! model anchored `H` days before it, judged on it — and reports the metrics of each.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use arrow::array::RecordBatch;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::artifact::{ModelArtifact, TrainingWindow};
use crate::asof::AsOf;
use crate::console::Console;
use crate::features::{FeatureParams, FeatureTable, column_f64};
use crate::load::Inputs;
use crate::model::{ChurnMetrics, ChurnModel, ChurnParams, ModelError};
use crate::pipeline::{self, PipelineError};
use crate::segment::touchpoints::RetentionTable;
use crate::segment::value::{ValueModel, ValueModelReport};

/// What to train.
#[derive(Debug, Clone)]
pub struct TrainParams {
    pub as_of: AsOf,
    pub horizon_days: u32,
    pub churn: ChurnParams,
    pub seed: u64,
    pub name: String,
    /// Build the extended features too.
    pub extended: bool,
    /// Snapshots each model is fit on (1 = only its anchor).
    pub snapshots: usize,
    /// Days between stacked snapshots.
    pub snapshot_step_days: u32,
    /// The health guards, judged on the `as_of` snapshot before anything is fit.
    pub guards: crate::guard::GuardSettings,
}

/// Why training failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Guard(#[from] crate::guard::GuardFailure),
    #[error(
        "no subscriber is active at {as_of} (signup_date < as_of and churn_date null or >= as_of): nothing to train on"
    )]
    NoActive { as_of: AsOf },
    #[error(
        "the subscriber file has no `churn_date` column: training needs it to label who churned within the horizon"
    )]
    NoChurnColumn,
    #[error(
        "snapshots must be at least 1 and the snapshot step at least 1 day (got {snapshots} every {step} days)"
    )]
    Snapshots { snapshots: usize, step: u32 },
}

/// How the model was validated.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Validation {
    /// `out_of_time` or `stratified_holdout`.
    pub method: String,
    /// Why a holdout was used instead of an out-of-time check, if it was.
    pub note: Option<String>,
    /// Snapshot the validation model was fit on (out-of-time) .
    pub fit_as_of: Option<AsOf>,
    pub judged_as_of: AsOf,
    pub churn: ChurnMetrics,
    /// Baselines judged the same way: `logistic`, `tree`.
    pub baselines: Vec<(String, ChurnMetrics)>,
    /// Per risk decile (1 = riskiest): rows, mean predicted probability, observed churn rate.
    pub deciles: Vec<CurvePoint>,
    /// Per probability bin (10 equal-width bins): rows, mean predicted, observed churn rate.
    pub calibration: Vec<CurvePoint>,
    /// Out-of-time metrics of each recent snapshot, newest first (stacked training only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backtest: Vec<BacktestPoint>,
}

/// One out-of-time check of the backtest: a model anchored at `fit_as_of`, judged on
/// the snapshot at `judged_as_of`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BacktestPoint {
    pub fit_as_of: AsOf,
    pub judged_as_of: AsOf,
    /// Rows the model was fit on (all its stacked snapshots).
    pub fit_rows: usize,
    /// Rows judged, and churners among them.
    pub rows: usize,
    pub positives: usize,
    pub churn: ChurnMetrics,
}

/// One point of a lift or calibration curve.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CurvePoint {
    pub rows: usize,
    pub predicted: f64,
    pub observed: f64,
}

/// Groups rows into `bins` by `key` and averages prediction and outcome in each.
fn curve(
    probs: &[f64],
    labels: &[bool],
    bins: usize,
    key: impl Fn(usize) -> usize,
) -> Vec<CurvePoint> {
    let mut acc = vec![(0usize, 0.0f64, 0.0f64); bins];
    for i in 0..probs.len() {
        let b = key(i).min(bins - 1);
        acc[b].0 += 1;
        acc[b].1 += probs[i];
        acc[b].2 += labels[i] as u8 as f64;
    }
    acc.into_iter()
        .map(|(n, p, y)| {
            let d = n.max(1) as f64;
            CurvePoint {
                rows: n,
                predicted: p / d,
                observed: y / d,
            }
        })
        .collect()
}

/// Everything `train` measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainMetrics {
    pub validation: Validation,
    /// Metrics of the final model on its own training rows (in-sample, for reference).
    pub in_sample: ChurnMetrics,
    pub rows: usize,
    pub positives: usize,
    /// Snapshots stacked in `rows` (1 = only `as_of`).
    #[serde(default = "one")]
    pub snapshots: usize,
    /// False when `as_of + horizon` is after the newest data, so some labels may be unseen.
    pub labels_fully_observed: bool,
    pub value_segments: ValueModelReport,
    pub whale: crate::segment::WhaleCurve,
}

/// Days of history a stacked snapshot needs before it (the longest feature window).
const FULL_HISTORY_DAYS: i32 = 90;

fn one() -> usize {
    1
}

/// Fewest churners (and non-churners) an earlier snapshot needs for an out-of-time fit.
const MIN_CLASS_ROWS: usize = 10;

/// Trains the churn and value-segment models; returns them with the health guards'
/// report on the `as_of` snapshot (a guard that fails and is not allowed stops training).
pub fn train(
    inputs: &Inputs,
    params: &TrainParams,
    console: &Console,
) -> Result<(ModelArtifact, crate::guard::GuardReport), TrainError> {
    if !inputs.subscribers.has_churn_column {
        return Err(TrainError::NoChurnColumn);
    }
    if params.snapshots == 0 || params.snapshot_step_days == 0 {
        return Err(TrainError::Snapshots {
            snapshots: params.snapshots,
            step: params.snapshot_step_days,
        });
    }
    let h = params.horizon_days as i32;
    let mut snapshots = Snapshots::new(inputs, params, console);
    let current = snapshots.get(params.as_of)?;
    let guards = crate::guard::check(inputs, &current.table, &params.guards, None).enforce()?;
    guards.warnings().iter().for_each(|w| console.say(w));
    snapshots.history_start = current
        .table
        .events
        .oldest_ts
        .map(|ts| ts.div_euclid(crate::asof::MICROS_PER_DAY) as i32);
    if current.table.batch.num_rows() == 0 {
        return Err(TrainError::NoActive {
            as_of: params.as_of,
        });
    }
    let newest = newest_day(inputs, &current.table);
    let labels_fully_observed = newest.is_some_and(|d| d >= params.as_of.days() + h - 1);
    if !labels_fully_observed {
        console.say(format!(
            "warning: the data ends before {} + {} days; churn after its end cannot be seen in the labels",
            params.as_of, params.horizon_days
        ));
    }
    let churn_params = params.churn.check()?;

    // Out-of-time when an earlier snapshot has enough of both classes.
    let earlier_as_of = params.as_of.plus_days(-h);
    let earlier = match &inputs.interactions {
        Some(_) => Some(snapshots.get(earlier_as_of)?),
        None => None,
    };
    let oot_possible = earlier.as_ref().is_some_and(|e| enough_of_both(&e.labels));
    let step = console.progress(0, "validate", "");
    let mut validation = if oot_possible {
        let fit = snapshots.stacked(earlier_as_of)?;
        let model = ChurnModel::fit(&stacked_batch(&fit)?, &stacked_labels(&fit), &churn_params)?;
        judge(
            &model,
            &current.table.batch,
            &current.labels,
            "out_of_time",
            None,
            Some(earlier_as_of),
            params.as_of,
        )?
    } else {
        let note = if inputs.interactions.is_none() {
            "no interactions: subscriber attributes are known only as they are now, so no earlier snapshot can be rebuilt"
                .to_string()
        } else {
            format!(
                "the snapshot at {earlier_as_of} has fewer than {MIN_CLASS_ROWS} churners or non-churners"
            )
        };
        let labels = &current.labels;
        let (fit_rows, test_rows) = stratified_split(labels, 0.2, params.seed);
        let fit_batch = take_rows(&current.table.batch, &fit_rows)?;
        let fit_labels: Vec<bool> = fit_rows.iter().map(|&r| labels[r]).collect();
        let model = ChurnModel::fit(&fit_batch, &fit_labels, &churn_params)?;
        let test_batch = take_rows(&current.table.batch, &test_rows)?;
        let test_labels: Vec<bool> = test_rows.iter().map(|&r| labels[r]).collect();
        judge(
            &model,
            &test_batch,
            &test_labels,
            "stratified_holdout",
            Some(note),
            None,
            params.as_of,
        )?
    };
    if oot_possible && params.snapshots > 1 {
        validation.backtest = backtest(&snapshots, params, &churn_params, &validation)?;
    }
    step.finish(format!(
        "{}: ROC AUC {:.3}, PR AUC {:.3}, top-decile lift {:.2}{}",
        validation.method,
        validation.churn.roc_auc,
        validation.churn.pr_auc,
        validation.churn.lift_top_decile,
        backtest_line(&validation.backtest)
    ));

    let step = console.progress(0, "fit", "");
    // The baselines are judged in the validation above; the final model needs none.
    let final_params = ChurnParams {
        baselines: false,
        ..params.churn.clone()
    };
    // Without interactions there is no history before `as_of`: only it is stacked.
    let fit = snapshots.stacked(params.as_of)?;
    let (stack, labels, stacked) = (stacked_batch(&fit)?, stacked_labels(&fit), fit.len());
    let (churn, in_sample) = ChurnModel::fit_in_sample(&stack, &labels, &final_params.check()?)?;
    step.finish(format!(
        "churn model on {} rows ({} churners{})",
        labels.len(),
        labels.iter().filter(|&&l| l).count(),
        if stacked > 1 {
            format!(", {stacked} snapshots")
        } else {
            String::new()
        }
    ));
    let step = console.progress(0, "in-sample", "");
    let in_sample = match in_sample {
        Some(p) => p,
        None => churn.predict_proba(&stack)?,
    };
    let in_sample = ChurnMetrics::evaluate(&in_sample, &labels);
    step.finish(format!(
        "ROC AUC {:.3} on the training rows (out of time {:.3})",
        in_sample.roc_auc, validation.churn.roc_auc
    ));
    let step = console.progress(0, "touchpoints", "");
    let touchpoints = if inputs.interactions.is_some() {
        RetentionTable::learn(fit.iter().filter_map(|s| {
            let usage = s.table.touchpoint_use.as_ref()?;
            Some((usage, &s.labels[..]))
        }))
    } else {
        RetentionTable::default()
    };
    step.finish(touchpoints.summary());
    let (current, earlier) = (&current.table, earlier.as_ref().map(|e| &e.table));

    let step = console.progress(0, "segments", "");
    let profit_now = column_f64(&current.batch, "profit_90d");
    let whale = crate::segment::WhaleCurve::from_profit(&profit_now);
    let (value, value_segments) = match earlier {
        Some(earlier) => ValueModel::train(earlier, current, &params.churn, params.seed)?,
        None => ValueModel::persistence(
            "no interactions: no earlier snapshot to learn segment moves from",
        ),
    };
    step.finish(value_segments.summary());

    let metrics = TrainMetrics {
        validation,
        in_sample,
        rows: labels.len(),
        positives: labels.iter().filter(|&&l| l).count(),
        snapshots: stacked,
        labels_fully_observed,
        value_segments,
        whale,
    };
    let window = TrainingWindow {
        as_of: params.as_of,
        horizon_days: params.horizon_days,
        validation_as_of: earlier_as_of,
        label_end: params.as_of.plus_days(h),
    };
    let artifact = ModelArtifact::new(
        &params.name,
        window,
        params.extended,
        churn,
        value,
        touchpoints,
        metrics,
    );
    Ok((artifact, guards))
}

/// A snapshot's feature table and its labels (churn within the horizon).
struct Snapshot {
    table: FeatureTable,
    labels: Vec<bool>,
}

/// Snapshots by date, each built once.
struct Snapshots<'a> {
    inputs: &'a Inputs,
    params: &'a TrainParams,
    console: &'a Console,
    built: RefCell<BTreeMap<i32, Rc<Snapshot>>>,
    /// Day of the oldest event: earlier snapshots are stacked only when their 90-day
    /// windows lie within the history, so that their features are complete.
    history_start: Option<i32>,
}

impl<'a> Snapshots<'a> {
    fn new(inputs: &'a Inputs, params: &'a TrainParams, console: &'a Console) -> Self {
        Snapshots {
            inputs,
            params,
            console,
            built: RefCell::new(BTreeMap::new()),
            history_start: None,
        }
    }

    fn get(&self, as_of: AsOf) -> Result<Rc<Snapshot>, PipelineError> {
        if let Some(s) = self.built.borrow().get(&as_of.days()) {
            return Ok(s.clone());
        }
        let table = pipeline::build_features(
            self.inputs,
            FeatureParams {
                as_of,
                extended: self.params.extended,
                touchpoint_use: true,
            },
            self.console,
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
    fn complete(&self, t: AsOf) -> bool {
        self.history_start
            .is_some_and(|start| t.days() >= start + FULL_HISTORY_DAYS)
    }

    /// The snapshots anchored at `anchor`: it and the `snapshots − 1` before it, `step`
    /// days apart, those with a full history.
    fn stacked(&self, anchor: AsOf) -> Result<Vec<Rc<Snapshot>>, PipelineError> {
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
fn stacked_batch(snapshots: &[Rc<Snapshot>]) -> Result<RecordBatch, TrainError> {
    let batches: Vec<&RecordBatch> = snapshots.iter().map(|s| &s.table.batch).collect();
    let Some(first) = batches.first() else {
        return Err(ModelError::Data("no snapshot to fit on".into()).into());
    };
    arrow::compute::concat_batches(&first.schema(), batches)
        .map_err(|e| ModelError::Data(e.to_string()).into())
}

/// The labels of snapshots, in the order of [`stacked_batch`].
fn stacked_labels(snapshots: &[Rc<Snapshot>]) -> Vec<bool> {
    snapshots
        .iter()
        .flat_map(|s| s.labels.iter().copied())
        .collect()
}

/// Judges each of the `snapshots` most recent snapshots out of time, newest first; the
/// newest is the main validation, already done. Older ones are left out when the model
/// judged on them would be fit on an incomplete history or on too few churners.
fn backtest(
    snapshots: &Snapshots,
    params: &TrainParams,
    churn: &crate::model::ValidChurnParams,
    validation: &Validation,
) -> Result<Vec<BacktestPoint>, TrainError> {
    let h = params.horizon_days as i32;
    let quick = ChurnParams {
        baselines: false,
        ..churn.params().clone()
    }
    .check()?;
    let mut out = Vec::new();
    for k in 0..params.snapshots {
        let judged = params
            .as_of
            .plus_days(-((k as u32 * params.snapshot_step_days) as i32));
        let fit_as_of = judged.plus_days(-h);
        if k > 0 && !snapshots.complete(fit_as_of) {
            break;
        }
        let target = snapshots.get(judged)?;
        let fit = snapshots.stacked(fit_as_of)?;
        let labels = stacked_labels(&fit);
        if !enough_of_both(&labels) || !enough_of_both(&target.labels) {
            continue;
        }
        let metrics = if k == 0 {
            validation.churn.clone()
        } else {
            let model = ChurnModel::fit(&stacked_batch(&fit)?, &labels, &quick)?;
            ChurnMetrics::evaluate(&model.predict_proba(&target.table.batch)?, &target.labels)
        };
        out.push(BacktestPoint {
            fit_as_of,
            judged_as_of: judged,
            fit_rows: labels.len(),
            rows: target.labels.len(),
            positives: target.labels.iter().filter(|&&l| l).count(),
            churn: metrics,
        });
    }
    Ok(out)
}

fn backtest_line(points: &[BacktestPoint]) -> String {
    if points.is_empty() {
        return String::new();
    }
    let aucs: Vec<String> = points
        .iter()
        .map(|p| format!("{} {:.3}", p.judged_as_of, p.churn.roc_auc))
        .collect();
    format!("; backtest ROC AUC {}", aucs.join(", "))
}

fn judge(
    model: &ChurnModel,
    batch: &arrow::array::RecordBatch,
    labels: &[bool],
    method: &str,
    note: Option<String>,
    fit_as_of: Option<AsOf>,
    judged_as_of: AsOf,
) -> Result<Validation, ModelError> {
    let probs = model.predict_proba(batch)?;
    let churn = ChurnMetrics::evaluate(&probs, labels);
    let baselines = model
        .baseline_proba(batch)?
        .into_iter()
        .map(|(name, p)| (name, ChurnMetrics::evaluate(&p, labels)))
        .collect();
    let decile = crate::score::risk_deciles(&probs);
    let deciles = curve(&probs, labels, 10, |i| decile[i] as usize - 1);
    let calibration = curve(&probs, labels, 10, |i| (probs[i] * 10.0) as usize);
    Ok(Validation {
        method: method.to_string(),
        note,
        fit_as_of,
        judged_as_of,
        churn,
        baselines,
        deciles,
        calibration,
        backtest: Vec::new(),
    })
}

fn enough_of_both(labels: &[bool]) -> bool {
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

/// Splits row positions into (fit, test) with `test_share` of each class in test,
/// deterministically for a seed.
pub fn stratified_split(labels: &[bool], test_share: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut fit, mut test) = (Vec::new(), Vec::new());
    for class in [false, true] {
        let mut rows: Vec<usize> = (0..labels.len()).filter(|&r| labels[r] == class).collect();
        rows.shuffle(&mut rng);
        let n_test = (rows.len() as f64 * test_share).round() as usize;
        test.extend_from_slice(&rows[..n_test]);
        fit.extend_from_slice(&rows[n_test..]);
    }
    fit.sort_unstable();
    test.sort_unstable();
    (fit, test)
}

/// The rows at `positions` of a batch.
pub fn take_rows(
    batch: &arrow::array::RecordBatch,
    positions: &[usize],
) -> Result<arrow::array::RecordBatch, ModelError> {
    let indices = arrow::array::UInt32Array::from_iter_values(positions.iter().map(|&p| p as u32));
    arrow::compute::take_record_batch(batch, &indices).map_err(|e| ModelError::Data(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stratified_split_keeps_class_shares() {
        let labels: Vec<bool> = (0..1000).map(|i| i % 10 == 0).collect();
        let (fit, test) = stratified_split(&labels, 0.2, 42);
        assert_eq!(fit.len() + test.len(), 1000);
        assert_eq!(test.iter().filter(|&&r| labels[r]).count(), 20);
        assert_eq!(stratified_split(&labels, 0.2, 42), (fit, test));
    }
}
