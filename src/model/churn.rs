//! The churn model: boosted trees on the feature table, calibrated probabilities, reason
//! codes, and two baselines to hold it to account.
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
//! 6. fit the logistic and decision-tree baselines on the same rows as step 3;
//! 7. keep the training-typical value of each feature for reason codes, and the trees'
//!    gain importance.
//!
//! The artifact is plain serde data: the same inputs and parameters give the same bytes,
//! for any number of threads.

use arrow::record_batch::RecordBatch;
use linfa::ParamGuard;
use ndarray::{ArrayView2, Axis};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::calibration::{self, CalibrationReport, Calibrator};
use super::design::{FeatureSchema, MAX_LEVELS, SchemaOptions};
use super::error::ModelError;
use super::explain::{self, Attribution, Reason};
use super::gbdt::{GbdtModel, GbdtParams, GbdtValidParams};
use super::logistic::LogisticBaseline;
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

fn invalid(name: &'static str, expected: &'static str, found: impl ToString) -> ModelError {
    ModelError::InvalidParam {
        name,
        expected,
        found: found.to_string(),
    }
}

impl ChurnParams {
    /// Checks every setting; the first one out of range is named in the error.
    pub fn check(&self) -> Result<ValidChurnParams, ModelError> {
        let gbdt = GbdtParams::new()
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
            .check()?;
        if !(0.0..=0.5).contains(&self.calibration_fraction) {
            return Err(invalid(
                "calibration_fraction",
                "must be in [0, 0.5]",
                self.calibration_fraction,
            ));
        }
        if self.early_stopping_rounds.is_some() && self.calibration_fraction == 0.0 {
            return Err(invalid(
                "early_stopping_rounds",
                "needs held-out rows: set `calibration_fraction` above 0",
                format!("{:?}", self.early_stopping_rounds),
            ));
        }
        if self.min_level_count == 0 {
            return Err(invalid("min_level_count", "must be at least 1", 0));
        }
        if !(self.logistic_alpha > 0.0 && self.logistic_alpha.is_finite()) {
            return Err(invalid(
                "logistic_alpha",
                "must be finite and > 0",
                self.logistic_alpha,
            ));
        }
        if self.tree_max_depth == 0 {
            return Err(invalid("tree_max_depth", "must be at least 1", 0));
        }
        Ok(ValidChurnParams {
            params: self.clone(),
            gbdt,
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
}

/// A fitted churn model. Serialise it with serde; it carries the feature schema it reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChurnModel {
    /// Settings it was fitted with.
    pub params: ChurnParams,
    /// Feature columns it reads.
    pub schema: FeatureSchema,
    /// The boosted trees.
    pub gbdt: GbdtModel,
    /// Margin to probability.
    pub calibrator: Calibrator,
    /// Logistic-regression baseline.
    pub logistic: Option<LogisticBaseline>,
    /// Decision-tree baseline.
    pub tree: Option<TreeBaseline>,
    /// Training-typical value of each feature (median, or most frequent; `NaN` when a
    /// column was always missing), for reasons.
    #[serde(with = "super::serde_nan::vec")]
    pub typical: Vec<f64>,
    /// Share of split gain per feature, largest first.
    pub importance: Vec<(String, f64)>,
    /// How fitting went.
    pub summary: FitSummary,
}

/// Stratified, seeded hold-out: (train rows, held-out rows), each ascending. Keeps at
/// least one row of each class for training; holds out nothing when a class is too small
/// to give one to each side.
fn holdout(labels: &[bool], fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5EED_CA1B);
    let mut train = Vec::new();
    let mut held = Vec::new();
    let classes: Vec<Vec<usize>> = [true, false]
        .iter()
        .map(|&c| (0..labels.len()).filter(|&i| labels[i] == c).collect())
        .collect();
    let take: Vec<usize> = classes
        .iter()
        .map(|rows| {
            ((rows.len() as f64 * fraction).round() as usize).min(rows.len().saturating_sub(1))
        })
        .collect();
    if take.contains(&0) {
        return ((0..labels.len()).collect(), Vec::new());
    }
    for (mut rows, k) in classes.into_iter().zip(take) {
        rows.shuffle(&mut rng);
        held.extend_from_slice(&rows[..k]);
        train.extend_from_slice(&rows[k..]);
    }
    train.sort_unstable();
    held.sort_unstable();
    (train, held)
}

impl ChurnModel {
    /// Fits the churn model on a feature table and its labels (churned within the horizon).
    pub fn fit(
        features: &RecordBatch,
        labels: &[bool],
        params: &ValidChurnParams,
    ) -> Result<ChurnModel, ModelError> {
        Self::fit_in_sample(features, labels, params).map(|(model, _)| model)
    }

    /// [`Self::fit`], with the calibrated probabilities of the training rows when the
    /// final trees were fitted on all of them: read from the boosting's own margins, the
    /// same bits as [`Self::predict_proba`] on the table, without a pass over the trees.
    pub fn fit_in_sample(
        features: &RecordBatch,
        labels: &[bool],
        params: &ValidChurnParams,
    ) -> Result<(ChurnModel, Option<Vec<f64>>), ModelError> {
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

        let (train, held) = holdout(labels, p.calibration_fraction, p.seed);
        let x_train = x.select(Axis(0), &train);
        let y_train: Vec<bool> = train.iter().map(|&i| labels[i]).collect();
        let x_held = x.select(Axis(0), &held);
        let y_held: Vec<bool> = held.iter().map(|&i| labels[i]).collect();

        let valid = (!held.is_empty()).then(|| (x_held.view(), y_held.as_slice()));
        let fit_baselines = || fit_baselines(x_train.view(), &y_train, &types, p);
        let binned = params.gbdt.bin(x.view(), &types)?;
        let fit_and_calibrate = || -> Result<_, ModelError> {
            let (gbdt, margins) =
                params
                    .gbdt
                    .fit_binned_margins(&binned, Some(&train), &y_train, valid)?;
            let (calibrator, calibration) = if held.is_empty() {
                let (_, report) = calibration::choose(&[], &[], p.seed);
                (Calibrator::Sigmoid, report)
            } else {
                let margins = gbdt.predict_margin_binned(&binned, &held)?;
                calibration::choose(&margins, &y_held, p.seed)
            };
            // the first fit's margins are in-sample for every row when it had them all
            let margins = held.is_empty().then_some(margins);
            Ok((gbdt, margins, calibrator, calibration))
        };
        // Without early stopping the refit's number of trees is known up front, so it
        // runs alongside the first fit (each fit gives the same bits either way).
        let refit_now = p.refit && !held.is_empty() && p.early_stopping_rounds.is_none();
        // The baselines (when asked) start first: the logistic regression is the longest
        // single task; the other thread fits, calibrates, then refits.
        let (((logistic, tree, baseline_errors), typical), (first, early_refit)) = rayon::join(
            || rayon::join(fit_baselines, || schema.typical_values(&x)),
            || {
                rayon::join(fit_and_calibrate, || {
                    refit_now.then(|| params.gbdt.fit_binned_margins(&binned, None, labels, None))
                })
            },
        );
        let (gbdt, margins, calibrator, calibration) = first?;
        let ((gbdt, margins), refit_rows) = if let Some(refit) = early_refit {
            let (refit, margins) = refit?;
            ((refit, Some(margins)), Some(rows))
        } else if p.refit && !held.is_empty() {
            let all_rows = ChurnParams {
                n_trees: gbdt.trees.len().max(1),
                early_stopping_rounds: None,
                ..p.clone()
            }
            .check()?;
            let (refit, margins) = all_rows
                .gbdt
                .fit_binned_margins(&binned, None, labels, None)?;
            ((refit, Some(margins)), Some(rows))
        } else {
            ((gbdt, margins), None)
        };
        let in_sample = margins.map(|m| m.into_iter().map(|m| calibrator.apply(m)).collect());

        let importance = explain::gain_importance(&schema.names(), &gbdt.gain);
        let summary = FitSummary {
            rows,
            positives,
            train_rows: train.len(),
            refit_rows,
            calibration_rows: held.len(),
            trees: gbdt.trees.len(),
            calibration,
            baseline_errors,
        };
        let model = ChurnModel {
            params: p.clone(),
            schema,
            gbdt,
            calibrator,
            logistic,
            tree,
            typical,
            importance,
            summary,
        };
        Ok((model, in_sample))
    }

    /// Calibrated churn probabilities, one per row, in [0, 1]. Refuses a table whose
    /// columns do not match the model's schema.
    pub fn predict_proba(&self, features: &RecordBatch) -> Result<Vec<f64>, ModelError> {
        let x = self.schema.matrix(features)?;
        Ok(self
            .gbdt
            .predict_margin(x.view())?
            .into_iter()
            .map(|m| self.calibrator.apply(m))
            .collect())
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
        let contributions = self
            .gbdt
            .contributions(x.view(), attribution == Attribution::TreeShap)?;
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

    /// Probabilities of the fitted baselines, named `logistic` and `tree`, for their
    /// metrics beside the model's.
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

type Baselines = (Option<LogisticBaseline>, Option<TreeBaseline>, Vec<String>);

/// Fits both baselines; a baseline that fails is reported, not fatal.
fn fit_baselines(
    x: ArrayView2<'_, f64>,
    y: &[bool],
    types: &[super::design::ColumnType],
    p: &ChurnParams,
) -> Baselines {
    if !p.baselines {
        return (None, None, Vec::new());
    }
    let mut errors = Vec::new();
    let logistic = LogisticBaseline::fit(x, y, types, p.logistic_alpha, p.seed)
        .map_err(|e| errors.push(e.to_string()))
        .ok();
    let min_leaf = p.min_data_in_leaf.max(1);
    let tree = TreeBaseline::fit(x, y, types, p.tree_max_depth, min_leaf, p.seed)
        .map_err(|e| errors.push(e.to_string()))
        .ok();
    (logistic, tree, errors)
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
        assert_eq!(model.summary.trees, 50);

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
