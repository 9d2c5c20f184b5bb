//! Did the predictions come true? A past night's scored table judged against the churn
//! observed since: once its horizon has elapsed, each subscriber it scored is labelled
//! with the training label ([`crate::load::Subscribers::labels`]: `churn_date` in
//! `[as_of, as_of + H)`, SPEC §3) from tonight's subscriber table, and the scores are
//! measured as validation measures them (ROC AUC, PR AUC, top-decile lift, Brier,
//! calibration error, [`crate::model::metrics`]).
//!
//! Subscribers of the judged table that tonight's subscriber file no longer holds cannot
//! be labelled: they are counted (`unmatched`) and left out. Among the subscribers that
//! night targeted, the value kept is the expected profit over the horizon (trailing
//! 90-day profit at the same rate, never below zero: the same figure `value_at_risk`
//! multiplies) of those who did not churn; the value lost, of those who did. Without a
//! control group this says what happened to the targeted, not what the offers caused.

use arrow::array::RecordBatch;
use serde::{Deserialize, Serialize};

use crate::asof::AsOf;
use crate::features::{column_f64, column_strings};
use crate::load::Subscribers;
use crate::load::subscribers::{IdIndex, MISSING};
use crate::model::metrics;

/// The realised performance of one scored night.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Realised {
    /// The scored night judged.
    pub judged_as_of: AsOf,
    /// The end of its horizon: churn before this day counts.
    pub observed_until: AsOf,
    pub horizon_days: u32,
    /// The model that scored it.
    pub model_version: String,
    /// Rows of the judged table.
    pub scored: usize,
    /// Of those, rows whose subscriber tonight's subscriber file no longer holds.
    pub unmatched: usize,
    /// Labelled rows that churned within the horizon.
    pub churned: usize,
    /// Mean predicted churn probability and the churn rate observed, over labelled rows.
    pub mean_predicted: f64,
    pub observed_rate: f64,
    /// `None` when the labelled rows hold only one class.
    pub roc_auc: Option<f64>,
    pub pr_auc: Option<f64>,
    pub lift_top_decile: Option<f64>,
    pub brier: Option<f64>,
    /// Expected calibration error over 10 bins.
    pub ece: Option<f64>,
    pub targeted: TargetedOutcome,
}

/// What became of the subscribers a night targeted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TargetedOutcome {
    pub subscribers: usize,
    pub churned: usize,
    /// Sum of their churn probabilities: the churners the model expected.
    pub expected_churners: f64,
    /// Expected horizon profit of the targeted who stayed, and of those who left.
    pub value_kept: f64,
    pub value_lost: f64,
}

/// Whether a night scored at `judged` with horizon `horizon_days` can be judged at
/// `now`: its whole horizon lies before `now`.
pub fn elapsed(judged: AsOf, horizon_days: u32, now: AsOf) -> bool {
    judged.plus_days(horizon_days as i32) <= now
}

/// The columns of a scored table that judging it reads.
pub const JUDGED_COLUMNS: [&str; 4] = [
    "subscriber_id",
    "churn_probability",
    "profit_90d",
    "targeted",
];

/// Judges `scored` (the table of the night `judged_as_of`, scored by `model_version`
/// with horizon `horizon_days`) against the churn dates of `subscribers`.
pub fn judge(
    scored: &RecordBatch,
    judged_as_of: AsOf,
    horizon_days: u32,
    model_version: &str,
    subscribers: &Subscribers,
) -> Realised {
    let mut labels = vec![None; scored.num_rows()];
    label(scored, judged_as_of, horizon_days, subscribers, &mut labels);
    judge_labelled(scored, &labels, judged_as_of, horizon_days, model_version)
}

/// Labels the rows of `scored` whose subscriber `subscribers` holds (`labels[i]` for
/// row `i`; the others are left as they are): a sharded run labels them shard by
/// shard, each shard's subscribers in turn, and then judges once
/// ([`judge_labelled`]).
pub fn label(
    scored: &RecordBatch,
    judged_as_of: AsOf,
    horizon_days: u32,
    subscribers: &Subscribers,
    labels: &mut [Option<bool>],
) {
    let Some(ids) = scored.column_by_name("subscriber_id") else {
        return;
    };
    let rows: Vec<u32> = (0..subscribers.len() as u32).collect();
    let index = IdIndex::new(&subscribers.ids, &rows);
    let mut slots = Vec::new();
    index.lookup_into(ids.as_ref(), &mut slots);
    let found: Vec<usize> = (0..scored.num_rows())
        .filter(|&i| slots[i] != MISSING)
        .collect();
    let rows: Vec<u32> = found.iter().map(|&i| slots[i]).collect();
    let churned = subscribers.labels(&rows, judged_as_of, horizon_days);
    for (&i, l) in found.iter().zip(churned) {
        labels[i] = Some(l);
    }
}

/// Judges `scored` whose rows are labelled (`labels[i]`, `None` when tonight's
/// subscriber table does not hold row `i`'s subscriber).
pub fn judge_labelled(
    scored: &RecordBatch,
    labels: &[Option<bool>],
    judged_as_of: AsOf,
    horizon_days: u32,
    model_version: &str,
) -> Realised {
    let probs = column_f64(scored, "churn_probability");
    let profit = column_f64(scored, "profit_90d");
    let targeted = column_strings(scored, "targeted");
    let keep: Vec<usize> = (0..scored.num_rows())
        .filter(|&i| labels[i].is_some() && probs[i].is_some_and(f64::is_finite))
        .collect();
    let labels: Vec<bool> = keep.iter().map(|&i| labels[i] == Some(true)).collect();
    let p: Vec<f64> = keep.iter().filter_map(|&i| probs[i]).collect();
    let n = p.len().max(1) as f64;
    let churned = labels.iter().filter(|&&l| l).count();
    let mut outcome = TargetedOutcome::default();
    for (k, &i) in keep.iter().enumerate() {
        if targeted[i] != "true" {
            continue;
        }
        let value = profit[i].filter(|v| v.is_finite()).unwrap_or(0.0).max(0.0)
            * horizon_days as f64
            / 90.0;
        outcome.subscribers += 1;
        outcome.expected_churners += p[k];
        if labels[k] {
            outcome.churned += 1;
            outcome.value_lost += value;
        } else {
            outcome.value_kept += value;
        }
    }
    Realised {
        judged_as_of,
        observed_until: judged_as_of.plus_days(horizon_days as i32),
        horizon_days,
        model_version: model_version.to_string(),
        scored: scored.num_rows(),
        unmatched: scored.num_rows() - keep.len(),
        churned,
        mean_predicted: p.iter().sum::<f64>() / n,
        observed_rate: churned as f64 / n,
        roc_auc: metrics::roc_auc(&p, &labels),
        pr_auc: metrics::average_precision(&p, &labels),
        lift_top_decile: metrics::lift(&p, &labels, 0.1),
        brier: metrics::brier(&p, &labels),
        ece: metrics::expected_calibration_error(&p, &labels, 10),
        targeted: outcome,
    }
}

impl Realised {
    /// One line for the run summary.
    pub fn summary(&self) -> String {
        let f = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.3}"));
        format!(
            "night {} (horizon to {}): ROC AUC {}, top-decile lift {}, predicted {:.3} vs observed {:.3} churn",
            self.judged_as_of,
            self.observed_until,
            f(self.roc_auc),
            f(self.lift_top_decile),
            self.mean_predicted,
            self.observed_rate
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_horizon_has_elapsed_on_its_last_day_plus_one() {
        let d: AsOf = "2026-04-01".parse().unwrap();
        assert!(!elapsed(d, 90, d.plus_days(89)));
        assert!(elapsed(d, 90, d.plus_days(90)));
    }
}
