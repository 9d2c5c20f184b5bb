//! The one error type of the churn model: every way fitting, scoring or evaluating can
//! refuse its input, as a sentence that names the field in backticks.

use std::fmt;

use arrow::error::ArrowError;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A setting out of its range, as every parameter set's `problems` reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamProblem {
    /// The setting, as spelled where it is set (e.g. `n_trees`, or
    /// `train.boosting.n_trees` once [`ParamProblem::within`] a config section).
    pub name: String,
    /// What it must be, e.g. "must be in (0, 1]".
    pub expected: &'static str,
    /// The value that was given.
    pub found: String,
}

impl ParamProblem {
    pub fn new(name: &str, expected: &'static str, found: impl ToString) -> ParamProblem {
        ParamProblem {
            name: name.to_string(),
            expected,
            found: found.to_string(),
        }
    }

    /// The same problem, its name prefixed with `section.`.
    pub fn within(self, section: &str) -> ParamProblem {
        ParamProblem {
            name: format!("{section}.{}", self.name),
            ..self
        }
    }
}

impl fmt::Display for ParamProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` {}, got {}", self.name, self.expected, self.found)
    }
}

/// Every setting of a parameter set that is out of its range.
#[derive(Debug, Clone, PartialEq, Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct InvalidParams(pub Vec<ParamProblem>);

impl InvalidParams {
    /// `Ok` when there are no problems.
    pub fn check(problems: Vec<ParamProblem>) -> Result<(), InvalidParams> {
        if problems.is_empty() {
            Ok(())
        } else {
            Err(InvalidParams(problems))
        }
    }
}

/// Everything that can go wrong in [`crate::model`].
#[derive(Debug, Error)]
pub enum ModelError {
    /// Hyper-parameters out of their range: every one, at once.
    #[error(transparent)]
    InvalidParams(#[from] InvalidParams),

    /// The feature table has no rows to fit on.
    #[error(
        "the feature table has no rows: a churn model needs at least one churner and one non-churner"
    )]
    NoRows,

    /// A library fit stopped on an internal assertion (caught, never passed on).
    #[error("{model}: the fit stopped inside {library} ({message}); this baseline is left out")]
    LibraryFit {
        /// The model being fitted.
        model: &'static str,
        /// The crate whose code stopped.
        library: &'static str,
        /// What it said.
        message: String,
    },

    /// Labels and feature rows do not pair up.
    #[error("`labels` has {labels} entries but the feature table has {rows} rows")]
    LabelCount {
        /// Rows in the feature table.
        rows: usize,
        /// Entries in `labels`.
        labels: usize,
    },

    /// Training labels contain one class only.
    #[error(
        "`labels` has {positives} churners among {rows} rows: a churn model needs both churners and non-churners"
    )]
    OneClass {
        /// Rows in the training table.
        rows: usize,
        /// Rows labelled as churned.
        positives: usize,
    },

    /// Nothing is left to learn from once the excluded and unsupported columns are set aside.
    #[error(
        "the feature table has no feature columns: every column is excluded or of an unsupported type ({skipped})"
    )]
    NoFeatures {
        /// The columns set aside, with why.
        skipped: String,
    },

    /// A column name appears twice in the feature table.
    #[error("column `{0}` appears more than once in the feature table")]
    DuplicateColumn(String),

    /// The table given for scoring does not have the columns the model was trained on.
    #[error("feature schema mismatch: {0}")]
    SchemaMismatch(SchemaMismatch),

    /// A raw matrix has the wrong number of columns for a fitted model.
    #[error("`x` has {found} columns, the model expects {expected}")]
    MatrixWidth {
        /// Columns the model was fitted on.
        expected: usize,
        /// Columns given.
        found: usize,
    },

    /// `probs` and `labels` do not pair up in an evaluation.
    #[error("`probs` has {probs} entries but `labels` has {labels}")]
    MetricsLength {
        /// Entries in `probs`.
        probs: usize,
        /// Entries in `labels`.
        labels: usize,
    },

    /// A value passed as a probability is not one.
    #[error("`probs` has {value} at row {row}, expected a probability in [0, 1]")]
    NotAProbability {
        /// Row of the offending value.
        row: usize,
        /// The value found.
        value: f64,
    },

    /// Arrow could not convert a feature column.
    #[error("failed to read feature column `{column}`: {source}")]
    Column {
        /// The column being read.
        column: String,
        /// What arrow said.
        source: ArrowError,
    },

    /// Feature data that cannot be used, with why (for callers preparing tables).
    #[error("bad feature data: {0}")]
    Data(String),

    /// The logistic-regression baseline could not be fitted.
    #[error("the logistic baseline failed to fit: {0}")]
    Logistic(#[from] linfa_logistic::error::Error),

    /// A linfa algorithm (the decision-tree baseline) refused its input.
    #[error("the decision-tree baseline failed to fit: {0}")]
    Linfa(#[from] linfa::Error),
}

/// Where a scoring table departs from the schema a model was trained on; every difference
/// is listed, not just the first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaMismatch {
    /// Feature columns the model needs that the table lacks.
    pub missing: Vec<String>,
    /// Columns that would be features but the model has never seen.
    pub extra: Vec<String>,
    /// Columns present with another kind of type than at training.
    pub changed: Vec<TypeChange>,
}

/// One column whose type changed between training and scoring.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypeChange {
    /// The column.
    pub column: String,
    /// Its arrow type now.
    pub found: String,
    /// Its arrow type at training.
    pub expected: String,
}

impl SchemaMismatch {
    /// True when the table matches.
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.extra.is_empty() && self.changed.is_empty()
    }
}

impl fmt::Display for SchemaMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        if !self.missing.is_empty() {
            parts.push(format!("missing {}", backticked(&self.missing)));
        }
        for change in &self.changed {
            parts.push(format!(
                "`{}` is {}, model expects {}",
                change.column, change.found, change.expected
            ));
        }
        if !self.extra.is_empty() {
            parts.push(format!(
                "unexpected {} (not in the model; retrain or exclude)",
                backticked(&self.extra)
            ));
        }
        write!(f, "{}", parts.join("; "))
    }
}

fn backticked(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mismatch_message_names_every_difference() {
        let m = SchemaMismatch {
            missing: vec!["use_trend".into()],
            extra: vec!["promo".into()],
            changed: vec![TypeChange {
                column: "plan".into(),
                found: "Int64".into(),
                expected: "Utf8".into(),
            }],
        };
        assert_eq!(
            ModelError::SchemaMismatch(m).to_string(),
            "feature schema mismatch: missing `use_trend`; `plan` is Int64, model expects Utf8; \
             unexpected `promo` (not in the model; retrain or exclude)"
        );
    }
}
