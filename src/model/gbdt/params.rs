//! The boosted trees' hyper-parameters: [`GbdtParams`] with its defaults and checks,
//! checked into [`GbdtValidParams`].

use linfa::ParamGuard;
use serde::{Deserialize, Serialize};

use crate::model::binning::MAX_BINS;
use crate::model::error::{InvalidParams, ModelError, ParamProblem};

/// Checked hyper-parameters of [`GbdtModel`]; see [`GbdtParams`] for each one's meaning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GbdtValidParams {
    pub(super) n_trees: usize,
    pub(super) learning_rate: f64,
    pub(super) max_leaves: usize,
    pub(super) max_depth: Option<usize>,
    pub(super) min_data_in_leaf: usize,
    pub(super) min_sum_hessian_in_leaf: f64,
    pub(super) lambda: f64,
    pub(super) min_gain_to_split: f64,
    pub(super) max_bins: usize,
    pub(super) feature_fraction: f64,
    pub(super) bagging_fraction: f64,
    pub(super) scale_pos_weight: f64,
    pub(super) early_stopping_rounds: Option<usize>,
    pub(super) seed: u64,
}

/// Hyper-parameters of the boosted trees, checked into [`GbdtValidParams`] by
/// [`ParamGuard::check`]. Defaults follow LightGBM's, but for `n_trees` 300,
/// `learning_rate` 0.05 and `lambda` 1.
#[derive(Debug, Clone, PartialEq)]
pub struct GbdtParams(GbdtValidParams);

impl Default for GbdtParams {
    fn default() -> Self {
        GbdtParams(GbdtValidParams {
            n_trees: 300,
            learning_rate: 0.05,
            max_leaves: 31,
            max_depth: None,
            min_data_in_leaf: 20,
            min_sum_hessian_in_leaf: 1e-3,
            lambda: 1.0,
            min_gain_to_split: 0.0,
            max_bins: MAX_BINS,
            feature_fraction: 1.0,
            bagging_fraction: 1.0,
            scale_pos_weight: 1.0,
            early_stopping_rounds: None,
            seed: 42,
        })
    }
}

impl GbdtParams {
    /// Every setting out of its range.
    pub fn problems(&self) -> Vec<ParamProblem> {
        let p = &self.0;
        let mut problems = Vec::new();
        let fraction = |v: f64| v > 0.0 && v <= 1.0;
        if p.n_trees == 0 {
            problems.push(ParamProblem::new(
                "n_trees",
                "must be at least 1",
                p.n_trees,
            ));
        }
        if !fraction(p.learning_rate) {
            problems.push(ParamProblem::new(
                "learning_rate",
                "must be in (0, 1]",
                p.learning_rate,
            ));
        }
        if p.max_leaves < 2 {
            problems.push(ParamProblem::new(
                "max_leaves",
                "must be at least 2",
                p.max_leaves,
            ));
        }
        if p.max_depth == Some(0) {
            problems.push(ParamProblem::new(
                "max_depth",
                "must be at least 1 when set",
                0,
            ));
        }
        if p.min_data_in_leaf == 0 || p.min_data_in_leaf > u32::MAX as usize {
            problems.push(ParamProblem::new(
                "min_data_in_leaf",
                "must be at least 1",
                p.min_data_in_leaf,
            ));
        }
        if !(p.min_sum_hessian_in_leaf >= 0.0 && p.min_sum_hessian_in_leaf.is_finite()) {
            problems.push(ParamProblem::new(
                "min_sum_hessian_in_leaf",
                "must be finite and >= 0",
                p.min_sum_hessian_in_leaf,
            ));
        }
        if !(p.lambda >= 0.0 && p.lambda.is_finite()) {
            problems.push(ParamProblem::new(
                "lambda",
                "must be finite and >= 0",
                p.lambda,
            ));
        }
        if !(p.min_gain_to_split >= 0.0 && p.min_gain_to_split.is_finite()) {
            problems.push(ParamProblem::new(
                "min_gain_to_split",
                "must be finite and >= 0",
                p.min_gain_to_split,
            ));
        }
        if !(2..=MAX_BINS).contains(&p.max_bins) {
            problems.push(ParamProblem::new(
                "max_bins",
                "must be in 2..=255",
                p.max_bins,
            ));
        }
        if !fraction(p.feature_fraction) {
            problems.push(ParamProblem::new(
                "feature_fraction",
                "must be in (0, 1]",
                p.feature_fraction,
            ));
        }
        if !fraction(p.bagging_fraction) {
            problems.push(ParamProblem::new(
                "bagging_fraction",
                "must be in (0, 1]",
                p.bagging_fraction,
            ));
        }
        if !(p.scale_pos_weight > 0.0 && p.scale_pos_weight.is_finite()) {
            problems.push(ParamProblem::new(
                "scale_pos_weight",
                "must be finite and > 0",
                p.scale_pos_weight,
            ));
        }
        if p.early_stopping_rounds == Some(0) {
            problems.push(ParamProblem::new(
                "early_stopping_rounds",
                "must be at least 1 when set",
                0,
            ));
        }
        problems
    }

    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// Boosting rounds (trees). Default 300.
    pub fn n_trees(mut self, v: usize) -> Self {
        self.0.n_trees = v;
        self
    }
    /// Shrinkage of each tree's output, in (0, 1]. Default 0.05.
    pub fn learning_rate(mut self, v: f64) -> Self {
        self.0.learning_rate = v;
        self
    }
    /// Leaves per tree, at least 2. Default 31.
    pub fn max_leaves(mut self, v: usize) -> Self {
        self.0.max_leaves = v;
        self
    }
    /// Deepest split level, unlimited when `None` (default).
    pub fn max_depth(mut self, v: Option<usize>) -> Self {
        self.0.max_depth = v;
        self
    }
    /// Fewest training rows in a leaf, at least 1. Default 20.
    pub fn min_data_in_leaf(mut self, v: usize) -> Self {
        self.0.min_data_in_leaf = v;
        self
    }
    /// Smallest hessian sum in a leaf. Default 1e-3.
    pub fn min_sum_hessian_in_leaf(mut self, v: f64) -> Self {
        self.0.min_sum_hessian_in_leaf = v;
        self
    }
    /// L2 penalty on leaf outputs, `>= 0`. Default 1.
    pub fn lambda(mut self, v: f64) -> Self {
        self.0.lambda = v;
        self
    }
    /// Smallest loss reduction worth a split, `>= 0`. Default 0.
    pub fn min_gain_to_split(mut self, v: f64) -> Self {
        self.0.min_gain_to_split = v;
        self
    }
    /// Bins per feature, missing bin included, in 2..=255. Default 255.
    pub fn max_bins(mut self, v: usize) -> Self {
        self.0.max_bins = v;
        self
    }
    /// Share of features drawn for each tree, in (0, 1]. Default 1.
    pub fn feature_fraction(mut self, v: f64) -> Self {
        self.0.feature_fraction = v;
        self
    }
    /// Share of rows drawn for each tree, in (0, 1]. Default 1.
    pub fn bagging_fraction(mut self, v: f64) -> Self {
        self.0.bagging_fraction = v;
        self
    }
    /// Weight of a churner's loss, `> 0`. Default 1.
    pub fn scale_pos_weight(mut self, v: f64) -> Self {
        self.0.scale_pos_weight = v;
        self
    }
    /// Stop when the validation log-loss has not improved for this many trees (needs a
    /// validation slice). Default `None`.
    pub fn early_stopping_rounds(mut self, v: Option<usize>) -> Self {
        self.0.early_stopping_rounds = v;
        self
    }
    /// Seed of the subsampling. Default 42.
    pub fn seed(mut self, v: u64) -> Self {
        self.0.seed = v;
        self
    }
}

impl ParamGuard for GbdtParams {
    type Checked = GbdtValidParams;
    type Error = ModelError;

    fn check_ref(&self) -> Result<&GbdtValidParams, ModelError> {
        InvalidParams::check(self.problems())?;
        Ok(&self.0)
    }

    fn check(self) -> Result<GbdtValidParams, ModelError> {
        self.check_ref()?;
        Ok(self.0)
    }
}

impl GbdtValidParams {
    /// Trees to grow.
    pub fn n_trees(&self) -> usize {
        self.n_trees
    }
    /// Learning rate.
    pub fn learning_rate(&self) -> f64 {
        self.learning_rate
    }
    /// Leaves per tree.
    pub fn max_leaves(&self) -> usize {
        self.max_leaves
    }
    /// Early-stopping patience.
    pub fn early_stopping_rounds(&self) -> Option<usize> {
        self.early_stopping_rounds
    }
}
