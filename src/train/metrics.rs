//! What training measured: the validation, the backtest and the curves, kept in the
//! model artifact's `metrics.json`.

use serde::{Deserialize, Serialize};

use crate::asof::AsOf;
use crate::model::ChurnMetrics;
use crate::segment::forecast::ValueModelReport;

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
    /// Metrics of the candidate shipped.
    pub churn: ChurnMetrics,
    /// Every candidate judged on the same rows: `gbdt`, `logistic`, `blend`.
    #[serde(default)]
    pub candidates: Vec<CandidateMetrics>,
    /// The candidate shipped, and why.
    #[serde(default)]
    pub chosen: String,
    #[serde(default)]
    pub choice: String,
    /// Baselines judged the same way (`tree`).
    pub baselines: Vec<(String, ChurnMetrics)>,
    /// Per risk decile (1 = riskiest): rows, mean predicted probability, observed churn rate.
    pub deciles: Vec<CurvePoint>,
    /// Per probability bin (10 equal-width bins): rows, mean predicted, observed churn rate.
    pub calibration: Vec<CurvePoint>,
    /// Out-of-time metrics of each recent snapshot, newest first (stacked training only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backtest: Vec<BacktestPoint>,
}

/// One candidate's validation metrics.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CandidateMetrics {
    pub name: String,
    /// The trees' weight in the blend (1 for the trees alone, 0 for the logistic
    /// regression); for the blend, the weight chosen on the validation fit's held-out rows.
    pub tree_weight: f64,
    pub churn: ChurnMetrics,
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
    /// With `train --sample N`: the subscribers kept of those read, and the hash cut.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample: Option<super::snapshots::SampleSummary>,
    pub value_segments: ValueModelReport,
    pub whale: crate::segment::WhaleCurve,
}

fn one() -> usize {
    1
}
