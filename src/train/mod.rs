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

pub mod artifact;
pub mod from_tables;
pub mod metrics;
mod params;
mod snapshots;
mod validation;

use crate::features::column_f64;
use crate::load::Inputs;
use crate::model::{CandidateFit, ChurnMetrics, ChurnModel, ChurnParams};
use crate::progress::Progress;
use crate::segment::forecast::ValueModel;
use crate::segment::touchpoints::RetentionTable;
use crate::shard::Shard;
use artifact::{ModelArtifact, TrainingWindow};
pub use metrics::{BacktestPoint, CandidateMetrics, CurvePoint, TrainMetrics, Validation};
use params::model_params;
pub use params::{CandidateChoice, DEFAULT_TOUCHPOINT_WINDOWS, TrainError, TrainParams};
use snapshots::{FULL_HISTORY_DAYS, MIN_CLASS_ROWS, enough_of_both, stacked_batch, stacked_labels};
pub use snapshots::{SampleSummary, TrainingSnapshots, planned_dates};
use validation::{
    backtest, backtest_line, cross_validate, judge, validation_candidate, validation_scope,
};

/// Trains the churn and value-segment models; returns them with the health guards'
/// report on the `as_of` snapshot (a guard that fails and is not allowed stops training).
/// Every snapshot comes from one scan of the events ([`TrainingSnapshots::build`]).
pub fn train(
    inputs: &Inputs,
    params: &TrainParams,
    progress: &dyn Progress,
) -> Result<(ModelArtifact, crate::guard::GuardReport), TrainError> {
    if !inputs.subscribers.has_churn_column {
        return Err(TrainError::NoChurnColumn);
    }
    params.check()?;
    let snapshots = TrainingSnapshots::build(inputs, params, Shard::ALL, progress)?;
    let (mut artifact, guards) = train_on(&snapshots, &inputs.taxonomy, params, progress)?;
    artifact.custom_features = inputs.custom.defs.clone();
    Ok((artifact, guards))
}

/// [`train`] on snapshots already built (in one piece, or shard by shard and joined).
pub fn train_on(
    snapshots: &TrainingSnapshots,
    taxonomy: &crate::taxonomy::Taxonomy,
    params: &TrainParams,
    progress: &dyn Progress,
) -> Result<(ModelArtifact, crate::guard::GuardReport), TrainError> {
    params.check()?;
    let h = params.horizon_days as i32;
    let current = snapshots.get(params.as_of)?;
    let guards = crate::guard::judge(&snapshots.guard, &params.guards, None).enforce()?;
    guards.warnings().iter().for_each(|w| progress.say(w));
    if current.table.batch.num_rows() == 0 {
        return Err(TrainError::NoActive {
            as_of: params.as_of,
        });
    }
    let labels_fully_observed = snapshots
        .newest_day
        .is_some_and(|d| d >= params.as_of.days() + h - 1);
    if !labels_fully_observed {
        progress.say(&format!(
            "warning: the data ends before {} + {} days; churn after its end cannot be seen in the labels",
            params.as_of, params.horizon_days
        ));
    }
    let settings = model_params(params, taxonomy);
    let churn_params = settings.check()?;

    // Out-of-time when an earlier snapshot has enough of both classes and the full
    // feature history before it; else a repeated stratified k-fold of `as_of`.
    let earlier_as_of = params.as_of.plus_days(-h);
    let earlier = if snapshots.has_interactions {
        Some(snapshots.get(earlier_as_of)?)
    } else {
        None
    };
    let history_ok = snapshots.complete(earlier_as_of);
    let oot_possible = history_ok && earlier.as_ref().is_some_and(|e| enough_of_both(&e.labels));
    let step = progress.step(0, "validate", "");
    let validation_params = ChurnParams {
        baselines: true,
        ..settings.clone()
    }
    .check()?;
    let mut validation = if oot_possible {
        let fit = snapshots.stacked(earlier_as_of, params)?;
        let candidates = CandidateFit::fit(
            &stacked_batch(&fit)?,
            &stacked_labels(&fit),
            &validation_params,
            true,
        )?;
        let probs = candidates.candidate_proba(&current.table.batch)?;
        let tree = candidates.baseline_proba(&current.table.batch)?;
        judge(
            probs,
            tree,
            &current.labels,
            "out_of_time",
            None,
            Some(earlier_as_of),
            params.as_of,
            params.candidate,
        )?
    } else {
        let note = if !snapshots.has_interactions {
            "no interactions: subscriber attributes are known only as they are now, so no earlier snapshot can be rebuilt"
                .to_string()
        } else if !history_ok {
            format!(
                "the history does not cover the {FULL_HISTORY_DAYS} days before {earlier_as_of}: an out-of-time check there would judge features built from a partial history"
            )
        } else {
            format!(
                "the snapshot at {earlier_as_of} has fewer than {MIN_CLASS_ROWS} churners or non-churners"
            )
        };
        cross_validate(
            &current.table.batch,
            &current.labels,
            &validation_params,
            params,
            note,
        )?
    };
    let chosen = validation_candidate(&validation);
    if oot_possible && params.snapshots > 1 {
        validation.backtest = backtest(&snapshots, params, &churn_params, chosen, &validation)?;
    }
    step.finish(format!(
        "{} ({}): {}; shipping {} ({}){}",
        validation.method,
        validation_scope(&validation),
        validation
            .candidates
            .iter()
            .map(|c| format!("{} ROC AUC {:.3}", c.name, c.churn.roc_auc))
            .collect::<Vec<_>>()
            .join(", "),
        validation.chosen,
        validation.choice,
        backtest_line(&validation.backtest)
    ));

    let step = progress.step(0, "fit", "");
    // The baselines are judged in the validation above; the final model needs none.
    let final_params = ChurnParams {
        baselines: false,
        candidate: chosen,
        ..settings.clone()
    };
    // Without interactions there is no history before `as_of`: only it is stacked.
    let fit = snapshots.stacked(params.as_of, params)?;
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
    let step = progress.step(0, "in-sample", "");
    let in_sample = match in_sample {
        Some(p) => p,
        None => churn.predict_proba(&stack)?,
    };
    let in_sample = ChurnMetrics::evaluate(&in_sample, &labels);
    step.finish(format!(
        "ROC AUC {:.3} on the training rows ({} {:.3})",
        in_sample.roc_auc, validation.method, validation.churn.roc_auc
    ));
    let step = progress.step(0, "touchpoints", "");
    let touchpoints = if snapshots.has_interactions {
        RetentionTable::learn(fit.iter().filter_map(|s| {
            let usage = s.table.touchpoint_use.as_ref()?;
            Some((usage, &s.labels[..]))
        }))
    } else {
        RetentionTable::default()
    };
    step.finish(touchpoints.summary());
    let (current, earlier) = (&current.table, earlier.as_ref().map(|e| &e.table));

    let step = progress.step(0, "segments", "");
    let profit_now = column_f64(&current.batch, "profit_90d");
    let whale = crate::segment::WhaleCurve::from_profit(&profit_now);
    let (value, value_segments) = match earlier {
        Some(earlier) => ValueModel::train(earlier, current, &settings, params.seed)?,
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
        sample: snapshots.sample,
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
    )?;
    Ok((artifact, guards))
}
