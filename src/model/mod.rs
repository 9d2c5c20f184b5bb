//! The churn model: from a feature table (one row per subscriber) and churn labels to
//! calibrated churn probabilities, reason codes and feature importance, with a logistic
//! and a decision-tree baseline to compare against.
//!
//! The stages, one module each:
//! - [`design`]: the [`FeatureSchema`] a model reads, and the feature matrix;
//! - [`binning`], [`histogram`], [`tree`], [`gbdt`]: histogram gradient-boosted trees;
//! - [`logistic`], [`tree_baseline`]: the baselines (linfa-logistic, linfa-trees);
//! - [`calibration`]: Platt or isotonic, chosen on held-out rows;
//! - [`explain`]: reason codes and importance;
//! - [`metrics`]: ROC AUC, PR AUC, lift, Brier, calibration error;
//! - [`sample`]: seeded row samples, stratified splits and folds;
//! - [`check`]: the structural checks a model read from disk must pass;
//! - [`churn`]: [`ChurnParams`] → [`ValidChurnParams`] → [`ChurnModel`].
//!
//! ```no_run
//! # fn demo(train: &arrow::record_batch::RecordBatch, labels: &[bool],
//! #         tonight: &arrow::record_batch::RecordBatch) -> Result<(), churnseg::model::ModelError> {
//! use churnseg::model::{ChurnModel, ChurnParams};
//! let params = ChurnParams::default().check()?;
//! let model = ChurnModel::fit(train, labels, &params)?;
//! let risk = model.predict_proba(tonight)?;
//! let reasons = model.reasons(tonight, 3)?;
//! # Ok(()) }
//! ```

pub mod binning;
pub mod calibration;
pub mod check;
pub mod churn;
pub mod design;
pub mod display;
pub mod error;
pub mod explain;
pub mod gbdt;
pub mod histogram;
pub mod logistic;
pub mod metrics;
pub mod sample;
mod serde_nan;
pub mod split;
pub mod stats;
pub mod tree;
pub mod tree_baseline;

#[cfg(test)]
mod testdata;

pub use calibration::{CalibrationReport, Calibrator};
pub use churn::{
    Candidate, CandidateFit, CandidateKind, ChurnModel, ChurnParams, FitSummary, ValidChurnParams,
};
pub use design::{
    ColumnType, FeatureColumn, FeatureKind, FeatureSchema, ID_COLUMN, IgnoredBecause,
    IgnoredColumn, SchemaOptions,
};
pub use display::FeatureValue;
pub use error::{InvalidParams, ModelError, ParamProblem, SchemaMismatch, TypeChange};
pub use explain::{Attribution, Reason};
pub use gbdt::{GbdtModel, GbdtParams, GbdtValidParams};
pub use logistic::LogisticBaseline;
pub use metrics::ChurnMetrics;
pub use tree_baseline::TreeBaseline;
