//! Validation: judging every candidate on rows none was fit on (out of time, or by
//! repeated stratified k-fold), choosing the one to ship, and the backtest.

use arrow::array::RecordBatch;

use super::params::{TrainError, TrainParams};
use super::snapshots::{TrainingSnapshots, enough_of_both, stacked_batch, stacked_labels};
use crate::asof::AsOf;
use crate::model::sample::{stratified_folds, stratified_split, take_rows};
use crate::model::{
    Candidate, CandidateFit, CandidateKind, ChurnMetrics, ChurnModel, ChurnParams, ModelError,
};
use crate::train::metrics::{BacktestPoint, CandidateMetrics, CurvePoint, Validation};

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

/// Judges each of the `snapshots` most recent snapshots out of time, newest first; the
/// newest is the main validation, already done. Older ones are left out when the model
/// judged on them would be fit on an incomplete history or on too few churners.
pub(super) fn backtest(
    snapshots: &TrainingSnapshots,
    params: &TrainParams,
    churn: &crate::model::ValidChurnParams,
    chosen: CandidateKind,
    validation: &Validation,
) -> Result<Vec<BacktestPoint>, TrainError> {
    let h = params.horizon_days as i32;
    let quick = ChurnParams {
        baselines: false,
        candidate: chosen,
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
        let fit = snapshots.stacked(fit_as_of, params)?;
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

pub(super) fn backtest_line(points: &[BacktestPoint]) -> String {
    if points.is_empty() {
        return String::new();
    }
    let aucs: Vec<String> = points
        .iter()
        .map(|p| format!("{} {:.3}", p.judged_as_of, p.churn.roc_auc))
        .collect();
    format!("; backtest ROC AUC {}", aucs.join(", "))
}

/// Judges every candidate on the same rows, and chooses the one to ship: the highest
/// ROC AUC (ties to the simpler: the trees, then the logistic regression, then the
/// blend), unless `forced`.
#[allow(clippy::too_many_arguments)]
pub(super) fn judge(
    candidates: Vec<(Candidate, Vec<f64>)>,
    tree: Option<Vec<f64>>,
    labels: &[bool],
    method: &str,
    note: Option<String>,
    fit_as_of: Option<AsOf>,
    judged_as_of: AsOf,
    forced: Option<CandidateKind>,
) -> Result<Validation, ModelError> {
    let metrics: Vec<CandidateMetrics> = candidates
        .iter()
        .map(|(c, p)| CandidateMetrics {
            name: c.kind().name().to_string(),
            tree_weight: c.tree_weight(),
            churn: ChurnMetrics::evaluate(p, labels),
        })
        .collect();
    let best = (0..metrics.len())
        .fold(None, |best: Option<usize>, i| match best {
            Some(b) if metrics[b].churn.roc_auc >= metrics[i].churn.roc_auc => Some(b),
            _ if metrics[i].churn.roc_auc.is_nan() => best,
            _ => Some(i),
        })
        .unwrap_or(0);
    let (chosen, choice) = match forced {
        Some(kind) => {
            let i = metrics
                .iter()
                .position(|m| m.name == kind.name())
                .ok_or_else(|| {
                    ModelError::Data(format!(
                        "the forced candidate `{}` could not be fitted",
                        kind.name()
                    ))
                })?;
            (i, "forced by `train.candidate`".to_string())
        }
        None => {
            let runner_up = metrics
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != best)
                .map(|(_, m)| m.churn.roc_auc)
                .filter(|a| !a.is_nan())
                .fold(f64::NEG_INFINITY, f64::max);
            let choice = if runner_up.is_finite() {
                format!(
                    "highest ROC AUC, by {:+.4}",
                    metrics[best].churn.roc_auc - runner_up
                )
            } else {
                "the only candidate".to_string()
            };
            (best, choice)
        }
    };
    let probs = &candidates[chosen].1;
    let baselines = tree
        .map(|p| vec![("tree".to_string(), ChurnMetrics::evaluate(&p, labels))])
        .unwrap_or_default();
    let decile = crate::model::metrics::risk_deciles(probs);
    let deciles = curve(probs, labels, 10, |i| decile[i] as usize - 1);
    let calibration = curve(probs, labels, 10, |i| (probs[i] * 10.0) as usize);
    Ok(Validation {
        method: method.to_string(),
        note,
        fit_as_of,
        judged_as_of,
        churn: metrics[chosen].churn.clone(),
        chosen: metrics[chosen].name.clone(),
        choice,
        candidates: metrics,
        baselines,
        deciles,
        calibration,
        backtest: Vec::new(),
    })
}

/// Folds of the stratified cross-validation.
const FOLDS: usize = 5;
/// Below this many rows the k-fold is repeated (with another seed) to steady the choice.
const REPEAT_BELOW_ROWS: usize = 5_000;
/// Above this many rows one stratified 80/20 holdout replaces the k-fold.
const KFOLD_MAX_ROWS: usize = 50_000;

/// Judges every candidate on the `as_of` snapshot by repeated stratified k-fold: each
/// row is scored by models fitted on the other folds; the out-of-fold probabilities of
/// every repeat are pooled. Large tables get one stratified 80/20 holdout instead.
pub(super) fn cross_validate(
    batch: &RecordBatch,
    labels: &[bool],
    churn: &crate::model::ValidChurnParams,
    params: &TrainParams,
    note: String,
) -> Result<Validation, TrainError> {
    let rows = labels.len();
    let splits: Vec<Vec<(Vec<usize>, Vec<usize>)>> = if rows > KFOLD_MAX_ROWS {
        vec![vec![stratified_split(labels, 0.2, params.seed)]]
    } else {
        let repeats = if rows < REPEAT_BELOW_ROWS { 2 } else { 1 };
        (0..repeats)
            .map(|r| {
                let fold = stratified_folds(labels, FOLDS, params.seed.wrapping_add(r));
                (0..FOLDS)
                    .map(|k| {
                        let (fit, test): (Vec<usize>, Vec<usize>) =
                            (0..rows).partition(|&i| fold[i] != k);
                        (fit, test)
                    })
                    .collect()
            })
            .collect()
    };
    let method = if rows > KFOLD_MAX_ROWS {
        "stratified_holdout".to_string()
    } else {
        format!("stratified_{FOLDS}fold_x{}", splits.len())
    };
    let mut pooled: Vec<(Candidate, Vec<f64>)> = Vec::new();
    let mut tree_pooled: Option<Vec<f64>> = Some(Vec::new());
    let mut pooled_labels = Vec::new();
    let (mut blend_sum, mut blend_folds) = (0.0, 0usize);
    for (fit_rows, test_rows) in splits.into_iter().flatten() {
        let fit_labels: Vec<bool> = fit_rows.iter().map(|&r| labels[r]).collect();
        // a fold whose fit rows hold one class cannot fit a churn model
        if fit_labels.iter().all(|&l| l == fit_labels[0]) {
            continue;
        }
        let fit = CandidateFit::fit(&take_rows(batch, &fit_rows)?, &fit_labels, churn, true)?;
        let test = take_rows(batch, &test_rows)?;
        let probs = fit.candidate_proba(&test)?;
        if pooled.is_empty() {
            pooled = probs.iter().map(|(c, _)| (*c, Vec::new())).collect();
        }
        // a fold whose logistic regression failed has fewer candidates: keep what all have
        pooled.retain(|(c, _)| probs.iter().any(|(d, _)| d.kind() == c.kind()));
        for (c, p) in probs {
            if let Candidate::Blend { weight } = c {
                blend_sum += weight;
                blend_folds += 1;
            }
            if let Some(slot) = pooled.iter_mut().find(|(d, _)| d.kind() == c.kind()) {
                slot.1.extend(p);
            }
        }
        tree_pooled = match (tree_pooled, fit.baseline_proba(&test)?) {
            (Some(mut acc), Some(p)) => {
                acc.extend(p);
                Some(acc)
            }
            _ => None,
        };
        pooled_labels.extend(test_rows.iter().map(|&r| labels[r]));
    }
    if pooled.is_empty() {
        return Err(ModelError::Data(
            "every validation fold had a single class: too few churners to validate".into(),
        )
        .into());
    }
    for (c, _) in &mut pooled {
        if let Candidate::Blend { weight } = c {
            // each fold chose its own weight; the mean is reported
            *weight = blend_sum / blend_folds.max(1) as f64;
        }
    }
    Ok(judge(
        pooled,
        tree_pooled,
        &pooled_labels,
        &method,
        Some(note),
        None,
        params.as_of,
        params.candidate,
    )?)
}

/// The candidate the validation chose.
pub(super) fn validation_candidate(v: &Validation) -> CandidateKind {
    CandidateKind::parse(&v.chosen).unwrap_or_default()
}

/// What the validation judged, in words, for the console.
pub(super) fn validation_scope(v: &Validation) -> String {
    match v.fit_as_of {
        Some(fit) => format!("fit at {fit}, judged on {}", v.judged_as_of),
        None => format!("{} out-of-fold rows of {}", v.churn.rows, v.judged_as_of),
    }
}
