//! The churn model: candidates on the feature table (boosted trees, a regularised
//! logistic regression, and a blend of the two), calibrated probabilities, reason codes,
//! and a decision-tree baseline to hold them to account.
//!
//! [`CandidateFit::fit`] fits every candidate on the same rows; training's validation
//! judges them on rows none was fit on and ships one ([`CandidateFit::into_model`]).
//! [`ChurnModel::fit`] fits and ships the candidate its parameters name.
//!
//! Fitting, from one training table:
//! 1. fit the [`FeatureSchema`] and read the feature matrix;
//! 2. hold out a stratified `calibration_fraction` of the rows (seeded);
//! 3. fit the boosted trees on the rest (early stopping, when asked, on the held-out rows);
//!    the features are binned once, on every row (no label involved), for this fit and
//!    the refit;
//! 4. choose Platt or isotonic calibration on the held-out rows;
//! 5. refit the trees on every row, as many as step 3 kept, so that the final model
//!    learns from all the data; the calibrator of step 4 maps its margins (`refit`,
//!    on by default; without it the model of step 3 is kept);
//! 6. fit the logistic regression the same way (on the rows of step 3, its L2 strength
//!    cross-validated inside them on small tables, margins of the held-out rows for its
//!    calibrator, then refit on every row), and the decision-tree baseline on the rows
//!    of step 3;
//! 7. the blend's weight is chosen on the held-out rows (the ROC AUC of `w × trees +
//!    (1 − w) × logistic` margins, `w` in 0.1 … 0.9), and its calibrator too;
//! 8. keep the training-typical value of each feature for reason codes, and the
//!    importance of the candidate shipped.
//!
//! **Small tables.** Below [`SMALL_DATA_ROWS`] rows, the trees are fitted in two
//! settings, today's and one for small data ([`small_data_params`]: 7 leaves, at least
//! 1% of the rows per leaf, L2 10), both with early stopping on the held-out rows, and
//! the one with the lower held-out log-loss is kept.
//!
//! The artifact is plain serde data: the same inputs and parameters give the same bytes,
//! for any number of threads.

use arrow::record_batch::RecordBatch;
use linfa::ParamGuard;
use ndarray::{ArrayView2, Axis};
use serde::{Deserialize, Serialize};

use super::calibration::{self, CalibrationReport, Calibrator};
use super::design::{FeatureSchema, MAX_LEVELS, SchemaOptions};
use super::error::{InvalidParams, ModelError, ParamProblem};
use super::explain::{self, Attribution, Reason};
use super::gbdt::{GbdtModel, GbdtParams, GbdtValidParams};
use super::logistic::LogisticBaseline;
use super::sample::calibration_holdout;
use super::tree_baseline::TreeBaseline;

/// Settings of the churn model, as a pipeline config spells them. Every field has a
/// default; unknown fields are refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChurnParams {
    /// Boosting rounds. Default 300.
    pub n_trees: usize,
    /// Shrinkage per tree, in (0, 1]. Default 0.05.
    pub learning_rate: f64,
    /// Leaves per tree, at least 2. Default 31.
    pub max_leaves: usize,
    /// Deepest split level; unlimited when absent (default).
    pub max_depth: Option<usize>,
    /// Fewest training rows per leaf, at least 1. Default 20.
    pub min_data_in_leaf: usize,
    /// L2 penalty on leaf outputs, `>= 0`. Default 1.
    pub lambda: f64,
    /// Bins per feature, missing included, 2..=255. Default 255.
    pub max_bins: usize,
    /// Share of features drawn per tree, in (0, 1]. Default 1.
    pub feature_fraction: f64,
    /// Share of rows drawn per tree, in (0, 1]. Default 1.
    pub bagging_fraction: f64,
    /// Weight of a churner's loss, `> 0`; calibration brings probabilities back. Default 1.
    pub scale_pos_weight: f64,
    /// Stop adding trees when the held-out log-loss has not improved for this many;
    /// off when absent (default).
    pub early_stopping_rounds: Option<usize>,
    /// Share of training rows held out for calibration, in [0, 0.5]; 0 turns calibration
    /// off (probabilities are then the trees' own). Default 0.2.
    pub calibration_fraction: f64,
    /// After calibrating, refit the trees on every row (held-out rows included) with
    /// the same number of trees. Default true.
    pub refit: bool,
    /// Seed of every random choice. Default 42.
    pub seed: u64,
    /// Columns that are not features, besides `subscriber_id`. Default none.
    pub exclude: Vec<String>,
    /// Training rows a text level needs to be kept, at least 1. Default 5.
    pub min_level_count: usize,
    /// Fit the logistic and decision-tree baselines. Default true.
    pub baselines: bool,
    /// L2 penalty of the logistic baseline, `> 0`. Default 1.
    pub logistic_alpha: f64,
    /// Depth of the decision-tree baseline, at least 1. Default 6.
    pub tree_max_depth: usize,
    /// The candidate [`ChurnModel::fit`] ships. Default `gbdt`.
    pub candidate: CandidateKind,
    /// Try the small-data settings of the trees below [`SMALL_DATA_ROWS`] rows. Default true.
    pub small_data: bool,
}

/// A kind of churn model candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CandidateKind {
    /// Histogram gradient-boosted trees.
    #[default]
    Gbdt,
    /// L2-regularised logistic regression on the standardised, one-hot design.
    Logistic,
    /// A weighted sum of the two models' margins.
    Blend,
}

impl CandidateKind {
    pub const ALL: [CandidateKind; 3] = [
        CandidateKind::Gbdt,
        CandidateKind::Logistic,
        CandidateKind::Blend,
    ];

    /// `gbdt`, `logistic` or `blend`.
    pub fn name(self) -> &'static str {
        match self {
            CandidateKind::Gbdt => "gbdt",
            CandidateKind::Logistic => "logistic",
            CandidateKind::Blend => "blend",
        }
    }

    pub fn parse(text: &str) -> Option<CandidateKind> {
        CandidateKind::ALL.into_iter().find(|k| k.name() == text)
    }
}

/// The model that scores: a candidate with its settings.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Candidate {
    #[default]
    Gbdt,
    Logistic,
    /// `weight × trees' margin + (1 − weight) × logistic margin`.
    Blend {
        weight: f64,
    },
}

impl Candidate {
    pub fn kind(self) -> CandidateKind {
        match self {
            Candidate::Gbdt => CandidateKind::Gbdt,
            Candidate::Logistic => CandidateKind::Logistic,
            Candidate::Blend { .. } => CandidateKind::Blend,
        }
    }

    /// Weight of the trees' margin (1 for the trees, 0 for the logistic regression).
    pub fn tree_weight(self) -> f64 {
        match self {
            Candidate::Gbdt => 1.0,
            Candidate::Logistic => 0.0,
            Candidate::Blend { weight } => weight,
        }
    }

    /// Combines the two margins (either may be absent when its weight is 0 or 1).
    fn combine(
        self,
        trees: Option<&[f64]>,
        logistic: Option<&[f64]>,
    ) -> Result<Vec<f64>, ModelError> {
        let w = self.tree_weight();
        match (trees, logistic) {
            (Some(t), _) if w == 1.0 => Ok(t.to_vec()),
            (_, Some(l)) if w == 0.0 => Ok(l.to_vec()),
            (Some(t), Some(l)) => Ok(t
                .iter()
                .zip(l)
                .map(|(t, l)| w * t + (1.0 - w) * l)
                .collect()),
            _ => Err(ModelError::Data(format!(
                "the `{}` candidate needs the logistic regression, which was not fitted",
                self.kind().name()
            ))),
        }
    }
}

/// Below this many training rows the trees also try their small-data settings.
pub const SMALL_DATA_ROWS: usize = 20_000;

/// Blend weights tried on the held-out rows.
const BLEND_WEIGHTS: [f64; 9] = [0.5, 0.4, 0.6, 0.3, 0.7, 0.2, 0.8, 0.1, 0.9];

/// The trees' settings for small tables: fewer leaves, more rows per leaf, stronger L2,
/// early stopping on the held-out rows.
pub fn small_data_params(p: &ChurnParams, rows: usize) -> ChurnParams {
    ChurnParams {
        max_leaves: p.max_leaves.min(7),
        min_data_in_leaf: p.min_data_in_leaf.max(rows / 100),
        lambda: p.lambda.max(10.0),
        early_stopping_rounds: Some(p.early_stopping_rounds.unwrap_or(50)),
        ..p.clone()
    }
}

impl Default for ChurnParams {
    fn default() -> Self {
        ChurnParams {
            n_trees: 300,
            learning_rate: 0.05,
            max_leaves: 31,
            max_depth: None,
            min_data_in_leaf: 20,
            lambda: 1.0,
            max_bins: 255,
            feature_fraction: 1.0,
            bagging_fraction: 1.0,
            scale_pos_weight: 1.0,
            early_stopping_rounds: None,
            calibration_fraction: 0.2,
            refit: true,
            seed: 42,
            exclude: Vec::new(),
            min_level_count: 5,
            baselines: true,
            logistic_alpha: 1.0,
            tree_max_depth: 6,
            candidate: CandidateKind::Gbdt,
            small_data: true,
        }
    }
}

/// [`ChurnParams`] that passed [`ChurnParams::check`].
#[derive(Debug, Clone, PartialEq)]
pub struct ValidChurnParams {
    params: ChurnParams,
    gbdt: GbdtValidParams,
}

impl ValidChurnParams {
    /// The settings as given.
    pub fn params(&self) -> &ChurnParams {
        &self.params
    }
}

impl ChurnParams {
    /// The trees' settings, as the boosting loop takes them.
    fn gbdt(&self) -> GbdtParams {
        GbdtParams::new()
            .n_trees(self.n_trees)
            .learning_rate(self.learning_rate)
            .max_leaves(self.max_leaves)
            .max_depth(self.max_depth)
            .min_data_in_leaf(self.min_data_in_leaf)
            .lambda(self.lambda)
            .max_bins(self.max_bins)
            .feature_fraction(self.feature_fraction)
            .bagging_fraction(self.bagging_fraction)
            .scale_pos_weight(self.scale_pos_weight)
            .early_stopping_rounds(self.early_stopping_rounds)
            .seed(self.seed)
    }

    /// Every setting out of its range, named as in this struct.
    pub fn problems(&self) -> Vec<ParamProblem> {
        let mut problems = self.gbdt().problems();
        if !(0.0..=0.5).contains(&self.calibration_fraction) {
            problems.push(ParamProblem::new(
                "calibration_fraction",
                "must be in [0, 0.5]",
                self.calibration_fraction,
            ));
        }
        if self.early_stopping_rounds.is_some() && self.calibration_fraction == 0.0 {
            problems.push(ParamProblem::new(
                "early_stopping_rounds",
                "needs held-out rows: set `calibration_fraction` above 0",
                format!("{:?}", self.early_stopping_rounds),
            ));
        }
        if self.min_level_count == 0 {
            problems.push(ParamProblem::new(
                "min_level_count",
                "must be at least 1",
                0,
            ));
        }
        if !(self.logistic_alpha > 0.0 && self.logistic_alpha.is_finite()) {
            problems.push(ParamProblem::new(
                "logistic_alpha",
                "must be finite and > 0",
                self.logistic_alpha,
            ));
        }
        if self.tree_max_depth == 0 {
            problems.push(ParamProblem::new("tree_max_depth", "must be at least 1", 0));
        }
        problems
    }

    /// Checks every setting; the error names every one out of range.
    pub fn check(&self) -> Result<ValidChurnParams, ModelError> {
        InvalidParams::check(self.problems())?;
        Ok(ValidChurnParams {
            params: self.clone(),
            gbdt: self.gbdt().check()?,
        })
    }
}

/// What happened during fitting, for the run manifest and the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitSummary {
    /// Rows of the training table.
    pub rows: usize,
    /// Churners among them.
    pub positives: usize,
    /// Rows the calibrated trees and the baselines were fitted on.
    pub train_rows: usize,
    /// Rows the final trees were refitted on (all of them), when they were.
    pub refit_rows: Option<usize>,
    /// Rows held out for calibration.
    pub calibration_rows: usize,
    /// Trees in the model.
    pub trees: usize,
    /// How the calibrator was chosen.
    pub calibration: CalibrationReport,
    /// Baselines that could not be fitted, with why.
    pub baseline_errors: Vec<String>,
    /// The trees' settings kept: `default`, or `small_data` when those won on the
    /// held-out rows.
    #[serde(default = "default_settings")]
    pub tree_settings: String,
    /// The logistic regression's L2 strength, when it was fitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logistic_alpha: Option<f64>,
}

fn default_settings() -> String {
    "default".into()
}

/// A fitted churn model. Serialise it with serde; it carries the feature schema it reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChurnModel {
    /// Settings it was fitted with.
    pub params: ChurnParams,
    /// Feature columns it reads.
    pub schema: FeatureSchema,
    /// Which candidate scores.
    #[serde(default)]
    pub candidate: Candidate,
    /// The boosted trees.
    pub gbdt: GbdtModel,
    /// The candidate's margin to probability.
    pub calibrator: Calibrator,
    /// The logistic regression (a candidate, and a baseline for the others).
    pub logistic: Option<LogisticBaseline>,
    /// Decision-tree baseline.
    pub tree: Option<TreeBaseline>,
    /// Training-typical value of each feature (median, or most frequent; `NaN` when a
    /// column was always missing), for reasons.
    #[serde(with = "super::serde_nan::vec")]
    pub typical: Vec<f64>,
    /// Share of importance per feature, largest first: the trees' split gain, the
    /// logistic regression's mean absolute contribution, or their blend.
    pub importance: Vec<(String, f64)>,
    /// How fitting went.
    pub summary: FitSummary,
}

/// The trees of a [`CandidateFit`].
struct TreesFit {
    /// Final trees (refit on every row when asked).
    model: GbdtModel,
    /// Margins of the held-out rows from the fit that did not see them.
    held: Vec<f64>,
    /// In-sample margins of every row, when the final trees saw them all.
    in_sample: Option<Vec<f64>>,
    refit_rows: Option<usize>,
    settings: &'static str,
}

/// The logistic regression of a [`CandidateFit`].
struct LogisticFit {
    /// Final model (refit on every row when asked).
    model: LogisticBaseline,
    /// Margins of the held-out rows from the fit that did not see them.
    held: Vec<f64>,
}

/// Every candidate fitted on the same rows, each with the margins of the held-out rows
/// it was not fitted on: what [`Self::into_model`] calibrates the one shipped with.
pub struct CandidateFit {
    params: ChurnParams,
    schema: FeatureSchema,
    trees: TreesFit,
    logistic: Option<LogisticFit>,
    tree: Option<TreeBaseline>,
    errors: Vec<String>,
    typical: Vec<f64>,
    held_labels: Vec<bool>,
    rows: usize,
    positives: usize,
    train_rows: usize,
    /// Blend weight chosen on the held-out rows, when both models were fitted.
    blend_weight: Option<f64>,
    /// The training rows' feature matrix: the logistic regression's in-sample margins and
    /// contributions (for importance) are read from it.
    x: ndarray::Array2<f64>,
}

impl CandidateFit {
    /// Fits the trees, and the logistic regression when `with_logistic` (plus the
    /// decision-tree baseline when the parameters ask for baselines).
    pub fn fit(
        features: &RecordBatch,
        labels: &[bool],
        params: &ValidChurnParams,
        with_logistic: bool,
    ) -> Result<CandidateFit, ModelError> {
        let p = &params.params;
        let rows = features.num_rows();
        if labels.len() != rows {
            return Err(ModelError::LabelCount {
                rows,
                labels: labels.len(),
            });
        }
        if rows == 0 {
            return Err(ModelError::NoRows);
        }
        let positives = labels.iter().filter(|&&l| l).count();
        if positives == 0 || positives == rows {
            return Err(ModelError::OneClass { rows, positives });
        }
        let exclude: Vec<&str> = p.exclude.iter().map(String::as_str).collect();
        let options = SchemaOptions {
            min_level_count: p.min_level_count,
            max_levels: MAX_LEVELS,
        };
        let schema = FeatureSchema::fit_with(features, &exclude, &options)?;
        let x = schema.matrix(features)?;
        let types = schema.column_types();

        let (train, held) = calibration_holdout(labels, p.calibration_fraction, p.seed);
        let y_train: Vec<bool> = train.iter().map(|&i| labels[i]).collect();
        let y_held: Vec<bool> = held.iter().map(|&i| labels[i]).collect();
        // the training and held-out rows, gathered once for every model that reads them
        let x_train = (with_logistic || p.baselines).then(|| x.select(Axis(0), &train));
        let x_held = x.select(Axis(0), &held);

        // The logistic regression (the longest single task on large tables) and the
        // baseline start first; the other thread fits the trees.
        let fit_logistic = || -> Option<Result<LogisticFit, ModelError>> {
            let x_train = x_train.as_ref().filter(|_| with_logistic)?;
            Some((|| {
                let first = LogisticBaseline::fit_cv(
                    x_train.view(),
                    &y_train,
                    &types,
                    p.logistic_alpha,
                    p.seed,
                )?;
                let held_margins = first.predict_margin(x_held.view())?;
                let model = if p.refit && !held.is_empty() {
                    LogisticBaseline::fit(x.view(), labels, &types, first.alpha, p.seed)?
                } else {
                    first
                };
                Ok(LogisticFit {
                    model,
                    held: held_margins,
                })
            })())
        };
        let fit_tree = || -> (Option<TreeBaseline>, Vec<String>) {
            let Some(x_train) = x_train.as_ref().filter(|_| p.baselines) else {
                return (None, Vec::new());
            };
            let min_leaf = p.min_data_in_leaf.max(1);
            match TreeBaseline::fit(
                x_train.view(),
                &y_train,
                &types,
                p.tree_max_depth,
                min_leaf,
                p.seed,
            ) {
                Ok(t) => (Some(t), Vec::new()),
                Err(e) => (None, vec![e.to_string()]),
            }
        };
        let (((logistic, (tree, errors)), typical), trees) = rayon::join(
            || {
                rayon::join(
                    || rayon::join(fit_logistic, fit_tree),
                    || schema.typical_values(&x),
                )
            },
            || {
                fit_trees(
                    &x, &x_held, &types, labels, &train, &held, &y_train, &y_held, params,
                )
            },
        );
        let trees = trees?;
        let mut errors = errors;
        // a logistic regression that fails is reported, not fatal: the trees still ship
        let logistic = match logistic {
            Some(Ok(l)) => Some(l),
            Some(Err(e)) => {
                errors.push(format!("logistic regression: {e}"));
                None
            }
            None => None,
        };
        let blend_weight = logistic.as_ref().and_then(|l| {
            let auc = |w: f64| {
                let m: Vec<f64> = trees
                    .held
                    .iter()
                    .zip(&l.held)
                    .map(|(t, l)| w * t + (1.0 - w) * l)
                    .collect();
                super::metrics::roc_auc(&m, &y_held).unwrap_or(0.0)
            };
            // ties keep the earlier weight of the list, nearer an even blend
            BLEND_WEIGHTS
                .iter()
                .map(|&w| (w, auc(w)))
                .fold(None, |best: Option<(f64, f64)>, (w, a)| match best {
                    Some((_, b)) if b >= a => best,
                    _ => Some((w, a)),
                })
                .map(|(w, _)| w)
        });
        Ok(CandidateFit {
            params: p.clone(),
            schema,
            trees,
            logistic,
            tree,
            errors,
            typical,
            held_labels: y_held,
            rows,
            positives,
            train_rows: train.len(),
            blend_weight,
            x,
        })
    }

    /// The candidates this fit can ship: the trees, and with the logistic regression
    /// also it and the blend.
    pub fn candidates(&self) -> Vec<Candidate> {
        let mut out = vec![Candidate::Gbdt];
        if self.logistic.is_some() {
            out.push(Candidate::Logistic);
        }
        if let Some(weight) = self.blend_weight {
            out.push(Candidate::Blend { weight });
        }
        out
    }

    /// The candidate of a kind, with the blend weight chosen on the held-out rows.
    pub fn candidate(&self, kind: CandidateKind) -> Option<Candidate> {
        self.candidates().into_iter().find(|c| c.kind() == kind)
    }

    /// The calibrator of a candidate, fitted on the margins of the held-out rows.
    fn calibrator(
        &self,
        candidate: Candidate,
    ) -> Result<(Calibrator, CalibrationReport), ModelError> {
        let held = candidate.combine(
            Some(&self.trees.held),
            self.logistic.as_ref().map(|l| &l.held[..]),
        )?;
        Ok(if self.held_labels.is_empty() {
            let (_, report) = calibration::choose(&[], &[], self.params.seed);
            (Calibrator::Sigmoid, report)
        } else {
            calibration::choose(&held, &self.held_labels, self.params.seed)
        })
    }

    /// Calibrated probabilities of every candidate on a table, in [`Self::candidates`]'
    /// order.
    pub fn candidate_proba(
        &self,
        features: &RecordBatch,
    ) -> Result<Vec<(Candidate, Vec<f64>)>, ModelError> {
        let x = self.schema.matrix(features)?;
        let trees = self.trees.model.predict_margin(x.view())?;
        let logistic = match &self.logistic {
            Some(l) => Some(l.model.predict_margin(x.view())?),
            None => None,
        };
        self.candidates()
            .into_iter()
            .map(|c| {
                let (cal, _) = self.calibrator(c)?;
                let m = c.combine(Some(&trees), logistic.as_deref())?;
                Ok((c, m.into_iter().map(|m| cal.apply(m)).collect()))
            })
            .collect()
    }

    /// Probabilities of the decision-tree baseline, when it was fitted.
    pub fn baseline_proba(&self, features: &RecordBatch) -> Result<Option<Vec<f64>>, ModelError> {
        let Some(tree) = &self.tree else {
            return Ok(None);
        };
        let x = self.schema.matrix(features)?;
        Ok(Some(tree.predict_proba(x.view())?))
    }

    /// The model that ships `candidate`, with the calibrated in-sample probabilities of
    /// the training rows when its final models saw them all.
    pub fn into_model(
        self,
        candidate: Candidate,
    ) -> Result<(ChurnModel, Option<Vec<f64>>), ModelError> {
        let (calibrator, calibration) = self.calibrator(candidate)?;
        let w = candidate.tree_weight();
        let logistic_margins = match &self.logistic {
            Some(l) if w < 1.0 => Some(l.model.predict_margin(self.x.view())?),
            _ => None,
        };
        let in_sample = match (&self.trees.in_sample, w) {
            (_, w) if w == 0.0 => logistic_margins.clone(),
            (Some(t), _) => Some(candidate.combine(Some(t), logistic_margins.as_deref())?),
            (None, _) => None,
        }
        .map(|m| m.into_iter().map(|m| calibrator.apply(m)).collect());
        let names = self.schema.names();
        let gain = explain::gain_importance(&names, &self.trees.model.gain);
        let importance = match &self.logistic {
            Some(l) if w < 1.0 => {
                let c = l.model.contributions(self.x.view())?;
                let f = names.len();
                let mean_abs: Vec<f64> = (0..f)
                    .map(|j| c.column(j).iter().map(|v| v.abs()).sum::<f64>())
                    .collect();
                let linear = explain::gain_importance(&names, &mean_abs);
                blend_importance(&gain, &linear, w)
            }
            _ => gain,
        };
        let summary = FitSummary {
            rows: self.rows,
            positives: self.positives,
            train_rows: self.train_rows,
            refit_rows: self.trees.refit_rows,
            calibration_rows: self.held_labels.len(),
            trees: self.trees.model.trees.len(),
            calibration,
            baseline_errors: self.errors,
            tree_settings: self.trees.settings.to_string(),
            logistic_alpha: self.logistic.as_ref().map(|l| l.model.alpha),
        };
        let model = ChurnModel {
            params: ChurnParams {
                candidate: candidate.kind(),
                ..self.params
            },
            schema: self.schema,
            candidate,
            gbdt: self.trees.model,
            calibrator,
            logistic: self.logistic.map(|l| l.model),
            tree: self.tree,
            typical: self.typical,
            importance,
            summary,
        };
        Ok((model, in_sample))
    }
}

/// Fits the trees on the `train` rows (early stopping on the `held` ones when asked),
/// in the small-data settings too on small tables (the lower held-out log-loss wins),
/// then refits the kept settings on every row when asked.
#[allow(clippy::too_many_arguments)]
fn fit_trees(
    x: &ndarray::Array2<f64>,
    x_held: &ndarray::Array2<f64>,
    types: &[super::design::ColumnType],
    labels: &[bool],
    train: &[usize],
    held: &[usize],
    y_train: &[bool],
    y_held: &[bool],
    params: &ValidChurnParams,
) -> Result<TreesFit, ModelError> {
    let p = &params.params;
    let binned = params.gbdt.bin(x.view(), types)?;
    let valid = (!held.is_empty()).then(|| (x_held.view(), y_held));
    let held_margins = |gbdt: &GbdtModel| -> Result<Vec<f64>, ModelError> {
        if held.is_empty() {
            Ok(Vec::new())
        } else {
            gbdt.predict_margin_binned(&binned, held)
        }
    };
    let small = p.small_data && labels.len() < SMALL_DATA_ROWS && !held.is_empty();
    let (first, first_margins, settings, early_refit) = if small {
        let patience = Some(p.early_stopping_rounds.unwrap_or(50));
        let default = ChurnParams {
            early_stopping_rounds: patience,
            ..p.clone()
        }
        .check()?;
        let small = small_data_params(p, labels.len()).check()?;
        let (a, b) = rayon::join(
            || {
                default
                    .gbdt
                    .fit_binned_margins(&binned, Some(train), y_train, valid)
            },
            || {
                small
                    .gbdt
                    .fit_binned_margins(&binned, Some(train), y_train, valid)
            },
        );
        let ((a, am), (b, bm)) = (a?, b?);
        let loss = |m: &[f64]| {
            let p: Vec<f64> = m.iter().map(|&v| 1.0 / (1.0 + (-v).exp())).collect();
            super::metrics::log_loss(&p, y_held).unwrap_or(f64::INFINITY)
        };
        let (ha, hb) = (held_margins(&a)?, held_margins(&b)?);
        if loss(&hb) < loss(&ha) {
            ((b, hb), bm, ("small_data", small), None)
        } else {
            ((a, ha), am, ("default", default), None)
        }
    } else {
        // Without early stopping the refit's number of trees is known up front, so it
        // runs alongside the first fit (each fit gives the same bits either way).
        let refit_now = p.refit && !held.is_empty() && p.early_stopping_rounds.is_none();
        let (first, early_refit) = rayon::join(
            || {
                params
                    .gbdt
                    .fit_binned_margins(&binned, Some(train), y_train, valid)
            },
            || refit_now.then(|| params.gbdt.fit_binned_margins(&binned, None, labels, None)),
        );
        let (gbdt, margins) = first?;
        let h = held_margins(&gbdt)?;
        ((gbdt, h), margins, ("default", params.clone()), early_refit)
    };
    let ((gbdt, held_m), (settings, kept)) = (first, settings);
    let (model, in_sample, refit_rows) = if let Some(refit) = early_refit {
        let (refit, margins) = refit?;
        (refit, Some(margins), Some(labels.len()))
    } else if p.refit && !held.is_empty() {
        let all_rows = ChurnParams {
            n_trees: gbdt.trees.len().max(1),
            early_stopping_rounds: None,
            ..kept.params().clone()
        }
        .check()?;
        let (refit, margins) = all_rows
            .gbdt
            .fit_binned_margins(&binned, None, labels, None)?;
        (refit, Some(margins), Some(labels.len()))
    } else {
        // the first fit's margins are in-sample for every row when it had them all
        let in_sample = held.is_empty().then_some(first_margins);
        (gbdt, in_sample, None)
    };
    Ok(TreesFit {
        model,
        held: held_m,
        in_sample,
        refit_rows,
        settings,
    })
}

/// Importance shares of the blend: `w` of the trees' and `1 − w` of the linear ones,
/// largest first.
fn blend_importance(
    trees: &[(String, f64)],
    linear: &[(String, f64)],
    w: f64,
) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = trees
        .iter()
        .map(|(name, t)| {
            let l = linear.iter().find(|(n, _)| n == name).map_or(0.0, |x| x.1);
            (name.clone(), w * t + (1.0 - w) * l)
        })
        .collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    out
}

impl ChurnModel {
    /// Fits the churn model on a feature table and its labels (churned within the
    /// horizon), shipping the candidate `params` name.
    pub fn fit(
        features: &RecordBatch,
        labels: &[bool],
        params: &ValidChurnParams,
    ) -> Result<ChurnModel, ModelError> {
        Self::fit_in_sample(features, labels, params).map(|(model, _)| model)
    }

    /// [`Self::fit`], with the calibrated probabilities of the training rows when the
    /// final models were fitted on all of them: read from the boosting's own margins, the
    /// same bits as [`Self::predict_proba`] on the table, without a pass over the trees.
    pub fn fit_in_sample(
        features: &RecordBatch,
        labels: &[bool],
        params: &ValidChurnParams,
    ) -> Result<(ChurnModel, Option<Vec<f64>>), ModelError> {
        let p = &params.params;
        let kind = p.candidate;
        let with_logistic = p.baselines || kind != CandidateKind::Gbdt;
        let fit = CandidateFit::fit(features, labels, params, with_logistic)?;
        let candidate = fit.candidate(kind).ok_or_else(|| {
            ModelError::Data(format!(
                "the `{}` candidate could not be fitted (the logistic regression failed: {})",
                kind.name(),
                fit.errors.join("; ")
            ))
        })?;
        fit.into_model(candidate)
    }

    /// Calibrated churn probabilities, one per row, in [0, 1]. Refuses a table whose
    /// columns do not match the model's schema.
    pub fn predict_proba(&self, features: &RecordBatch) -> Result<Vec<f64>, ModelError> {
        let x = self.schema.matrix(features)?;
        Ok(self
            .margins(x.view())?
            .into_iter()
            .map(|m| self.calibrator.apply(m))
            .collect())
    }

    /// The shipped candidate's margins of a feature matrix.
    fn margins(&self, x: ArrayView2<'_, f64>) -> Result<Vec<f64>, ModelError> {
        let w = self.candidate.tree_weight();
        let trees = (w > 0.0).then(|| self.gbdt.predict_margin(x)).transpose()?;
        let logistic = match &self.logistic {
            Some(l) if w < 1.0 => Some(l.predict_margin(x)?),
            _ => None,
        };
        self.candidate
            .combine(trees.as_deref(), logistic.as_deref())
    }

    /// The top `k` reasons for each row's risk, from Saabas path contributions.
    pub fn reasons(
        &self,
        features: &RecordBatch,
        k: usize,
    ) -> Result<Vec<Vec<Reason>>, ModelError> {
        self.reasons_with(features, k, Attribution::Saabas)
    }

    /// The top `k` reasons for each row's risk, with the attribution of your choice.
    pub fn reasons_with(
        &self,
        features: &RecordBatch,
        k: usize,
        attribution: Attribution,
    ) -> Result<Vec<Vec<Reason>>, ModelError> {
        let x = self.schema.matrix(features)?;
        let w = self.candidate.tree_weight();
        let trees = (w > 0.0)
            .then(|| {
                self.gbdt
                    .contributions(x.view(), attribution == Attribution::TreeShap)
            })
            .transpose()?;
        let linear = match &self.logistic {
            Some(l) if w < 1.0 => Some(l.contributions(x.view())?),
            _ => None,
        };
        // the shipped candidate's margin, split by feature: the trees' path
        // contributions, the linear coefficient × standardised deviation, or their blend
        let contributions = match (trees, linear) {
            (Some(t), Some(l)) => t * w + l * (1.0 - w),
            (Some(t), None) => t,
            (None, Some(l)) => l,
            (None, None) => {
                return Err(ModelError::Data(
                    "the model has no fitted candidate to explain".into(),
                ));
            }
        };
        Ok(explain::top_reasons(
            &self.schema,
            x.view(),
            contributions.view(),
            &self.typical,
            k,
        ))
    }

    /// The top `k` reasons according to the logistic baseline (coefficient × standardised
    /// value); `None` when the baseline was not fitted.
    pub fn logistic_reasons(
        &self,
        features: &RecordBatch,
        k: usize,
    ) -> Result<Option<Vec<Vec<Reason>>>, ModelError> {
        let Some(logistic) = &self.logistic else {
            return Ok(None);
        };
        let x = self.schema.matrix(features)?;
        let contributions = logistic.contributions(x.view())?;
        Ok(Some(explain::top_reasons(
            &self.schema,
            x.view(),
            contributions.view(),
            &self.typical,
            k,
        )))
    }

    /// Probabilities of the fitted logistic regression and decision-tree baseline, named
    /// `logistic` and `tree`, for their metrics beside the model's.
    pub fn baseline_proba(
        &self,
        features: &RecordBatch,
    ) -> Result<Vec<(String, Vec<f64>)>, ModelError> {
        let x = self.schema.matrix(features)?;
        let mut out = Vec::new();
        if let Some(logistic) = &self.logistic {
            out.push(("logistic".to_string(), logistic.predict_proba(x.view())?));
        }
        if let Some(tree) = &self.tree {
            out.push(("tree".to_string(), tree.predict_proba(x.view())?));
        }
        Ok(out)
    }

    /// Share of split gain per feature, largest first.
    pub fn feature_importance(&self) -> Vec<(String, f64)> {
        self.importance.clone()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Float64Array, Int64Array, StringArray};

    use super::*;
    use crate::model::metrics::ChurnMetrics;
    use crate::model::testdata::{batch, churn_table};

    fn quick() -> ValidChurnParams {
        ChurnParams {
            n_trees: 50,
            learning_rate: 0.1,
            ..ChurnParams::default()
        }
        .check()
        .unwrap()
    }

    #[test]
    fn fits_scores_explains_and_beats_nothing_less_than_the_baselines() {
        let (train, y) = churn_table(2000, 1);
        let (test, yt) = churn_table(1500, 2);
        let model = ChurnModel::fit(&train, &y, &quick()).unwrap();
        assert!((399..=401).contains(&model.summary.calibration_rows));
        // a small table: early stopping on the held-out rows may keep fewer trees
        assert!((1..=50).contains(&model.summary.trees));
        assert!(["default", "small_data"].contains(&model.summary.tree_settings.as_str()));

        let p = model.predict_proba(&test).unwrap();
        assert!(p.iter().all(|v| (0.0..=1.0).contains(v)));
        let m = ChurnMetrics::evaluate(&p, &yt);
        assert!(m.roc_auc > 0.75, "{m:?}");
        assert!(m.ece < 0.06, "{m:?}");

        let baselines = model.baseline_proba(&test).unwrap();
        let names: Vec<&str> = baselines.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["logistic", "tree"]);
        for (name, probs) in &baselines {
            let auc = ChurnMetrics::evaluate(probs, &yt).roc_auc;
            assert!(auc > 0.65, "{name} {auc}");
        }

        let importance = model.feature_importance();
        assert_eq!(importance.len(), 7);
        assert!(importance.windows(2).all(|w| w[0].1 >= w[1].1));
        assert_eq!(importance[0].0, "complaints_unresolved_90d");
        let zero: Vec<&str> = importance
            .iter()
            .filter(|i| i.1 == 0.0)
            .map(|i| i.0.as_str())
            .collect();
        assert!(zero.contains(&"constant") && zero.contains(&"always_null"));

        let reasons = model.reasons(&test, 3).unwrap();
        assert_eq!(reasons.len(), 1500);
        assert!(reasons.iter().all(|r| r.len() <= 3));
        assert!(
            reasons
                .iter()
                .all(|r| r.windows(2).all(|w| w[0].contribution >= w[1].contribution))
        );
        let shap = model.reasons_with(&test, 3, Attribution::TreeShap).unwrap();
        assert_eq!(shap.len(), 1500);
        // the riskiest row's reasons mention complaints
        let top = (0..p.len()).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap();
        assert!(
            reasons[top]
                .iter()
                .any(|r| r.feature == "complaints_unresolved_90d"),
            "{:?}",
            reasons[top]
        );
        let logistic = model.logistic_reasons(&test, 2).unwrap().unwrap();
        assert!(logistic.iter().all(|r| r.len() <= 2));
    }

    #[test]
    fn every_candidate_scores_explains_and_is_judged_on_the_same_rows() {
        let (train, y) = churn_table(3000, 11);
        let (test, yt) = churn_table(1500, 12);
        let fit = CandidateFit::fit(&train, &y, &quick(), true).unwrap();
        let kinds: Vec<CandidateKind> = fit.candidates().iter().map(|c| c.kind()).collect();
        assert_eq!(kinds, CandidateKind::ALL);
        let judged = fit.candidate_proba(&test).unwrap();
        for kind in CandidateKind::ALL {
            let fit = CandidateFit::fit(&train, &y, &quick(), true).unwrap();
            let candidate = fit.candidate(kind).unwrap();
            let (model, in_sample) = fit.into_model(candidate).unwrap();
            assert_eq!(model.candidate.kind(), kind);
            // the shipped model scores exactly as the validation judged it
            let p = model.predict_proba(&test).unwrap();
            let (_, q) = judged.iter().find(|(c, _)| c.kind() == kind).unwrap();
            assert_eq!(&p, q, "{kind:?}");
            assert!(p.iter().all(|&v| v > 0.0 && v < 1.0));
            assert!(ChurnMetrics::evaluate(&p, &yt).roc_auc > 0.7, "{kind:?}");
            assert_eq!(in_sample.unwrap(), model.predict_proba(&train).unwrap());
            // reasons and importance for every candidate
            let reasons = model.reasons(&test, 3).unwrap();
            assert!(reasons.iter().any(|r| !r.is_empty()), "{kind:?}");
            let share: f64 = model.feature_importance().iter().map(|i| i.1).sum();
            assert!((share - 1.0).abs() < 1e-9, "{kind:?} {share}");
            // and a saved model reads back as the same candidate
            let back: ChurnModel =
                serde_json::from_str(&serde_json::to_string(&model).unwrap()).unwrap();
            assert_eq!(back.candidate.kind(), kind);
        }
    }

    /// Regression: on 240 training rows with 3 churners the calibrator inverted the
    /// model's ranking (in-sample ROC AUC 0.000).
    #[test]
    fn tiny_data_never_inverts_the_in_sample_ranking() {
        for seed in 0..4 {
            let (train, mut y) = churn_table(240, 20 + seed);
            // keep only the first three churners
            let mut kept = 0;
            for l in y.iter_mut() {
                if *l {
                    kept += 1;
                    *l = kept <= 3;
                }
            }
            for kind in CandidateKind::ALL {
                let params = ChurnParams {
                    candidate: kind,
                    ..ChurnParams::default()
                }
                .check()
                .unwrap();
                let model = ChurnModel::fit(&train, &y, &params).unwrap();
                let p = model.predict_proba(&train).unwrap();
                assert!(p.iter().all(|&v| v > 0.0 && v < 1.0));
                let auc = ChurnMetrics::evaluate(&p, &y).roc_auc;
                assert!(auc >= 0.5, "seed {seed} {kind:?}: in-sample ROC AUC {auc}");
            }
        }
    }

    #[test]
    fn in_sample_probabilities_are_the_predictions_of_the_training_rows() {
        let (train, y) = churn_table(1500, 4);
        // refit on every row (the default), one fit on every row, bagged trees
        for params in [
            ChurnParams {
                n_trees: 20,
                ..ChurnParams::default()
            },
            ChurnParams {
                n_trees: 20,
                calibration_fraction: 0.0,
                bagging_fraction: 0.7,
                ..ChurnParams::default()
            },
        ] {
            let (model, in_sample) =
                ChurnModel::fit_in_sample(&train, &y, &params.check().unwrap()).unwrap();
            assert_eq!(in_sample.unwrap(), model.predict_proba(&train).unwrap());
        }
        // without the refit the final trees have not seen the held-out rows
        let no_refit = ChurnParams {
            n_trees: 20,
            refit: false,
            ..ChurnParams::default()
        };
        let (_, in_sample) =
            ChurnModel::fit_in_sample(&train, &y, &no_refit.check().unwrap()).unwrap();
        assert!(in_sample.is_none());
    }

    #[test]
    fn same_bytes_for_any_run_and_thread_count() {
        let (train, y) = churn_table(1500, 3);
        let params = ChurnParams {
            n_trees: 20,
            feature_fraction: 0.8,
            bagging_fraction: 0.8,
            ..ChurnParams::default()
        }
        .check()
        .unwrap();
        let fit = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                serde_json::to_string(&ChurnModel::fit(&train, &y, &params).unwrap()).unwrap()
            })
        };
        let one = fit(1);
        assert_eq!(one, fit(4));
        assert_eq!(one, fit(1));
        // serde_json parses floats to within one ulp unless its `float_roundtrip`
        // feature is on; a reloaded model scores the same to 1e-12.
        let back: ChurnModel = serde_json::from_str(&one).unwrap();
        let reloaded = back.predict_proba(&train).unwrap();
        let original = ChurnModel::fit(&train, &y, &params)
            .unwrap()
            .predict_proba(&train)
            .unwrap();
        for (a, b) in reloaded.iter().zip(&original) {
            assert!((a - b).abs() < 1e-12);
        }
    }

    #[test]
    fn refuses_one_class_empty_and_mismatched_tables() {
        let (train, y) = churn_table(200, 4);
        let params = quick();
        let all_negative = vec![false; 200];
        let err = ChurnModel::fit(&train, &all_negative, &params).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`labels` has 0 churners among 200 rows: a churn model needs both churners and non-churners"
        );
        let all_positive = vec![true; 200];
        assert!(matches!(
            ChurnModel::fit(&train, &all_positive, &params),
            Err(ModelError::OneClass { positives: 200, .. })
        ));
        assert!(matches!(
            ChurnModel::fit(&train, &y[..10], &params),
            Err(ModelError::LabelCount { .. })
        ));
        let empty = train.slice(0, 0);
        assert!(matches!(
            ChurnModel::fit(&empty, &[], &params),
            Err(ModelError::NoRows)
        ));
        let one = train.slice(0, 1);
        assert!(matches!(
            ChurnModel::fit(&one, &y[..1], &params),
            Err(ModelError::OneClass { rows: 1, .. })
        ));

        let model = ChurnModel::fit(&train, &y, &params).unwrap();
        let renamed = batch(vec![
            (
                "subscriber_id",
                Arc::new(StringArray::from(vec!["a"])) as ArrayRef,
            ),
            ("tenure_days", Arc::new(Int64Array::from(vec![10]))),
        ]);
        let err = model.predict_proba(&renamed).unwrap_err().to_string();
        assert!(
            err.starts_with("feature schema mismatch: missing `complaints_unresolved_90d`, "),
            "{err}"
        );
        // a single row scores
        assert_eq!(model.predict_proba(&train.slice(5, 1)).unwrap().len(), 1);
    }

    #[test]
    fn tiny_tables_and_degenerate_columns_fit() {
        // two rows, one text column with one level, one all-NaN column
        let tiny = batch(vec![
            (
                "plan",
                Arc::new(StringArray::from(vec!["basic", "basic"])) as ArrayRef,
            ),
            ("x", Arc::new(Float64Array::from(vec![f64::NAN, f64::NAN]))),
        ]);
        let params = ChurnParams {
            min_level_count: 1,
            ..ChurnParams::default()
        }
        .check()
        .unwrap();
        let model = ChurnModel::fit(&tiny, &[true, false], &params).unwrap();
        assert_eq!(model.summary.calibration_rows, 0);
        assert_eq!(model.calibrator, Calibrator::Sigmoid);
        let p = model.predict_proba(&tiny).unwrap();
        assert!(p.iter().all(|v| (v - 0.5).abs() < 1e-9), "{p:?}");
        assert!(
            model
                .reasons(&tiny, 3)
                .unwrap()
                .iter()
                .all(|r| r.is_empty())
        );
    }

    #[test]
    fn params_are_checked_and_read_from_config() {
        let bad = ChurnParams {
            calibration_fraction: 0.9,
            ..ChurnParams::default()
        };
        assert_eq!(
            bad.check().unwrap_err().to_string(),
            "`calibration_fraction` must be in [0, 0.5], got 0.9"
        );
        let p: ChurnParams =
            serde_json::from_str(r#"{"n_trees": 10, "exclude": ["region"]}"#).unwrap();
        assert_eq!((p.n_trees, p.learning_rate), (10, 0.05));
        assert!(serde_json::from_str::<ChurnParams>(r#"{"n_tree": 10}"#).is_err());
    }
}
