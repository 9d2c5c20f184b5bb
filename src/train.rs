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
}

/// Why training failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(
        "no subscriber is active at {as_of} (signup_date < as_of and churn_date null or >= as_of): nothing to train on"
    )]
    NoActive { as_of: AsOf },
    #[error(
        "the subscriber file has no `churn_date` column: training needs it to label who churned within the horizon"
    )]
    NoChurnColumn,
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
    /// False when `as_of + horizon` is after the newest data, so some labels may be unseen.
    pub labels_fully_observed: bool,
    pub value_segments: ValueModelReport,
    pub whale: crate::segment::WhaleCurve,
}

/// Fewest churners (and non-churners) an earlier snapshot needs for an out-of-time fit.
const MIN_CLASS_ROWS: usize = 10;

/// Trains the churn and value-segment models.
pub fn train(
    inputs: &Inputs,
    params: &TrainParams,
    console: &Console,
) -> Result<ModelArtifact, TrainError> {
    if !inputs.subscribers.has_churn_column {
        return Err(TrainError::NoChurnColumn);
    }
    let h = params.horizon_days as i32;
    let features = |as_of: AsOf| -> Result<FeatureTable, PipelineError> {
        pipeline::build_features(
            inputs,
            FeatureParams {
                as_of,
                extended: params.extended,
            },
            console,
        )
    };
    let current = features(params.as_of)?;
    if current.batch.num_rows() == 0 {
        return Err(TrainError::NoActive {
            as_of: params.as_of,
        });
    }
    let labels = inputs
        .subscribers
        .labels(&current.rows, params.as_of, params.horizon_days);
    let newest = newest_day(inputs, &current);
    let labels_fully_observed = newest.is_some_and(|d| d >= params.as_of.days() + h - 1);
    if !labels_fully_observed {
        console.say(format!(
            "warning: the data ends before {} + {} days; churn after its end cannot be seen in the labels",
            params.as_of, params.horizon_days
        ));
    }

    // Out-of-time when an earlier snapshot has enough of both classes.
    let earlier_as_of = params.as_of.plus_days(-h);
    let earlier = match &inputs.interactions {
        Some(_) => Some(features(earlier_as_of)?),
        None => None,
    };
    let earlier_labels = earlier.as_ref().map(|e| {
        inputs
            .subscribers
            .labels(&e.rows, earlier_as_of, params.horizon_days)
    });
    let oot_possible = earlier_labels.as_ref().is_some_and(|l| enough_of_both(l));
    let step = console.progress(0, "validate", "");
    let validation = if let (true, Some(earlier), Some(earlier_labels)) =
        (oot_possible, &earlier, &earlier_labels)
    {
        let model = ChurnModel::fit(&earlier.batch, earlier_labels, &params.churn.check()?)?;
        judge(
            &model,
            &current.batch,
            &labels,
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
        let (fit_rows, test_rows) = stratified_split(&labels, 0.2, params.seed);
        let fit_batch = take_rows(&current.batch, &fit_rows)?;
        let fit_labels: Vec<bool> = fit_rows.iter().map(|&r| labels[r]).collect();
        let model = ChurnModel::fit(&fit_batch, &fit_labels, &params.churn.check()?)?;
        let test_batch = take_rows(&current.batch, &test_rows)?;
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
    step.finish(format!(
        "{}: ROC AUC {:.3}, PR AUC {:.3}, top-decile lift {:.2}",
        validation.method,
        validation.churn.roc_auc,
        validation.churn.pr_auc,
        validation.churn.lift_top_decile
    ));

    let step = console.progress(0, "fit", "");
    // The baselines are judged in the validation above; the final model needs none.
    let final_params = ChurnParams {
        baselines: false,
        ..params.churn.clone()
    };
    let churn = ChurnModel::fit(&current.batch, &labels, &final_params.check()?)?;
    let in_sample = ChurnMetrics::evaluate(&churn.predict_proba(&current.batch)?, &labels);
    step.finish(format!(
        "churn model on {} rows ({} churners)",
        labels.len(),
        labels.iter().filter(|&&l| l).count()
    ));

    let step = console.progress(0, "segments", "");
    let profit_now = column_f64(&current.batch, "profit_90d");
    let whale = crate::segment::WhaleCurve::from_profit(&profit_now);
    let (value, value_segments) = match &earlier {
        Some(earlier) => ValueModel::train(earlier, &current, &params.churn, params.seed)?,
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
    Ok(ModelArtifact::new(
        &params.name,
        window,
        params.extended,
        churn,
        value,
        metrics,
    ))
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
