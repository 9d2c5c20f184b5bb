//! A histogram gradient-boosted tree classifier for log-loss, in the manner of LightGBM.
//!
//! - Features are binned once ([`super::binning`]): at most 255 bins, bin 0 for missing.
//! - Trees grow leaf-wise: the leaf whose best split gains most is split next, until
//!   `max_leaves` leaves (or `max_depth`, or no split gains anything).
//! - Only the smaller child of a split is histogrammed from rows; the larger is its
//!   parent's histogram minus the smaller ([`super::histogram`]).
//! - The first tree starts from the log-odds of the (weighted) churn rate, so class
//!   imbalance needs no resampling; `scale_pos_weight` is there for who wants it, and the
//!   churn model's calibration then fixes the probabilities.
//! - Optional per-tree feature and row subsampling and early stopping on a validation
//!   slice; all randomness comes from ChaCha8 streams seeded with `seed`.
//! - Gradients and hessians are summed in fixed point ([`super::histogram::Sums`]), so
//!   that histograms are exact integer sums.
//! - [`GbdtValidParams::bin`] and [`GbdtValidParams::fit_binned`] let several fits on
//!   rows of one matrix share its binning.
//!
//! Determinism: parallel work (histograms over chunks of rows, gradients and predictions
//! over rows) never reduces floats across threads, and integer sums do not depend on
//! their order, so a fit gives the same bits for any thread count.

use linfa::ParamGuard;
use linfa::dataset::{AsSingleTargets, DatasetBase};
use linfa::traits::Fit;
use ndarray::{ArrayBase, ArrayView2, Data, Ix2};
use rand::SeedableRng;
use rand::seq::index::sample;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::binning::{BinMapper, BinnedMatrix, MAX_BINS, bin_matrix, fit_mappers};
use super::design::ColumnType;
use super::error::ModelError;
use super::histogram::{self, Candidate, Layout, RowBins, Scale, SplitConfig, Sums};
use super::tree::{Node, Split, Tree};

/// Checked hyper-parameters of [`GbdtModel`]; see [`GbdtParams`] for each one's meaning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GbdtValidParams {
    n_trees: usize,
    learning_rate: f64,
    max_leaves: usize,
    max_depth: Option<usize>,
    min_data_in_leaf: usize,
    min_sum_hessian_in_leaf: f64,
    lambda: f64,
    min_gain_to_split: f64,
    max_bins: usize,
    feature_fraction: f64,
    bagging_fraction: f64,
    scale_pos_weight: f64,
    early_stopping_rounds: Option<usize>,
    seed: u64,
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

fn invalid(name: &'static str, expected: &'static str, found: impl ToString) -> ModelError {
    ModelError::InvalidParam {
        name,
        expected,
        found: found.to_string(),
    }
}

impl ParamGuard for GbdtParams {
    type Checked = GbdtValidParams;
    type Error = ModelError;

    fn check_ref(&self) -> Result<&GbdtValidParams, ModelError> {
        let p = &self.0;
        let fraction = |v: f64| v > 0.0 && v <= 1.0;
        if p.n_trees == 0 {
            return Err(invalid("n_trees", "must be at least 1", p.n_trees));
        }
        if !fraction(p.learning_rate) {
            return Err(invalid(
                "learning_rate",
                "must be in (0, 1]",
                p.learning_rate,
            ));
        }
        if p.max_leaves < 2 {
            return Err(invalid("max_leaves", "must be at least 2", p.max_leaves));
        }
        if p.max_depth == Some(0) {
            return Err(invalid("max_depth", "must be at least 1 when set", 0));
        }
        if p.min_data_in_leaf == 0 || p.min_data_in_leaf > u32::MAX as usize {
            return Err(invalid(
                "min_data_in_leaf",
                "must be at least 1",
                p.min_data_in_leaf,
            ));
        }
        if !(p.min_sum_hessian_in_leaf >= 0.0 && p.min_sum_hessian_in_leaf.is_finite()) {
            return Err(invalid(
                "min_sum_hessian_in_leaf",
                "must be finite and >= 0",
                p.min_sum_hessian_in_leaf,
            ));
        }
        if !(p.lambda >= 0.0 && p.lambda.is_finite()) {
            return Err(invalid("lambda", "must be finite and >= 0", p.lambda));
        }
        if !(p.min_gain_to_split >= 0.0 && p.min_gain_to_split.is_finite()) {
            return Err(invalid(
                "min_gain_to_split",
                "must be finite and >= 0",
                p.min_gain_to_split,
            ));
        }
        if !(2..=MAX_BINS).contains(&p.max_bins) {
            return Err(invalid("max_bins", "must be in 2..=255", p.max_bins));
        }
        if !fraction(p.feature_fraction) {
            return Err(invalid(
                "feature_fraction",
                "must be in (0, 1]",
                p.feature_fraction,
            ));
        }
        if !fraction(p.bagging_fraction) {
            return Err(invalid(
                "bagging_fraction",
                "must be in (0, 1]",
                p.bagging_fraction,
            ));
        }
        if !(p.scale_pos_weight > 0.0 && p.scale_pos_weight.is_finite()) {
            return Err(invalid(
                "scale_pos_weight",
                "must be finite and > 0",
                p.scale_pos_weight,
            ));
        }
        if p.early_stopping_rounds == Some(0) {
            return Err(invalid(
                "early_stopping_rounds",
                "must be at least 1 when set",
                0,
            ));
        }
        Ok(p)
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

    /// Fits the boosted trees on `x` (rows × features, `NaN` = missing) and `y`.
    /// `types` says which columns are categorical codes. With `valid` and
    /// `early_stopping_rounds`, stops when the validation log-loss stops improving and
    /// keeps the best number of trees.
    pub fn fit_matrix(
        &self,
        x: ArrayView2<'_, f64>,
        y: &[bool],
        types: &[ColumnType],
        valid: Option<(ArrayView2<'_, f64>, &[bool])>,
    ) -> Result<GbdtModel, ModelError> {
        self.fit_binned(&self.bin(x, types)?, None, y, valid)
    }

    /// Bins `x` (as [`Self::fit_matrix`] reads it) for [`Self::fit_binned`], so that
    /// several fits on its rows bin it once. Each feature's boundaries come from all its
    /// rows (at most 200 000 of them, drawn with the seed).
    pub fn bin(
        &self,
        x: ArrayView2<'_, f64>,
        types: &[ColumnType],
    ) -> Result<BinnedFeatures, ModelError> {
        if types.len() != x.ncols() {
            return Err(ModelError::MatrixWidth {
                expected: types.len(),
                found: x.ncols(),
            });
        }
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let mappers = fit_mappers(x, types, self.max_bins, &mut rng);
        let data = bin_matrix(x, &mappers);
        Ok(BinnedFeatures { mappers, data })
    }

    /// [`Self::fit_matrix`] on the rows `rows` (every row when `None`) of binned
    /// features; `y` has one label per fitted row.
    pub fn fit_binned(
        &self,
        binned: &BinnedFeatures,
        rows: Option<&[usize]>,
        y: &[bool],
        valid: Option<(ArrayView2<'_, f64>, &[bool])>,
    ) -> Result<GbdtModel, ModelError> {
        self.fit_binned_margins(binned, rows, y, valid)
            .map(|(model, _)| model)
    }

    /// [`Self::fit_binned`], with the margins of the fitted rows, in their order, as the
    /// boosting leaves them: the same bits as predicting those rows.
    pub fn fit_binned_margins(
        &self,
        binned: &BinnedFeatures,
        rows: Option<&[usize]>,
        y: &[bool],
        valid: Option<(ArrayView2<'_, f64>, &[bool])>,
    ) -> Result<(GbdtModel, Vec<f64>), ModelError> {
        let mappers = &binned.mappers;
        let selected;
        let data = match rows {
            Some(rows) => {
                selected = binned.data.select(rows).ok_or_else(|| {
                    invalid("rows", "must be rows of the binned features", rows.len())
                })?;
                &selected
            }
            None => &binned.data,
        };
        let rows = data.rows;
        if y.len() != rows {
            return Err(ModelError::LabelCount {
                rows,
                labels: y.len(),
            });
        }
        if rows > u32::MAX as usize {
            return Err(invalid("rows", "must fit in 32 bits", rows));
        }
        let positives = y.iter().filter(|&&v| v).count();
        if positives == 0 || positives == rows {
            return Err(ModelError::OneClass { rows, positives });
        }
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let layout = Layout::new(mappers);
        let n_features = mappers.len();

        let weight = |label: bool| if label { self.scale_pos_weight } else { 1.0 };
        let total_weight: f64 = y.iter().map(|&l| weight(l)).sum();
        let prior = positives as f64 * self.scale_pos_weight / total_weight;
        let base_score = (prior / (1.0 - prior)).ln();

        let valid = match valid {
            Some((vx, vy)) if self.early_stopping_rounds.is_some() => {
                if vx.ncols() != n_features {
                    return Err(ModelError::MatrixWidth {
                        expected: n_features,
                        found: vx.ncols(),
                    });
                }
                if vy.len() != vx.nrows() {
                    return Err(ModelError::LabelCount {
                        rows: vx.nrows(),
                        labels: vy.len(),
                    });
                }
                (!vy.is_empty()).then(|| (bin_matrix(vx, mappers), vy))
            }
            _ => None,
        };
        let mut valid_scores = valid
            .as_ref()
            .map(|(_, vy)| vec![base_score; vy.len()])
            .unwrap_or_default();
        let mut best = (f64::INFINITY, 0usize); // (validation loss, trees)

        let config = SplitConfig {
            lambda: self.lambda,
            min_data_in_leaf: self.min_data_in_leaf as u32,
            min_sum_hessian: self.min_sum_hessian_in_leaf,
            min_gain: self.min_gain_to_split,
        };
        let row_bins = RowBins::new(&data.bins, rows, &layout);
        // |gradient| <= weight, hessian <= weight / 4
        let max_weight = self.scale_pos_weight.max(1.0);
        let grower = Grower {
            data,
            row_bins: &row_bins,
            mappers,
            layout: &layout,
            scale: Scale::new(rows, max_weight, max_weight / 4.0),
            config,
            params: self,
        };

        let mut scores = vec![base_score; rows];
        let mut gh = vec![Sums::default(); rows];
        let mut trees = Vec::with_capacity(self.n_trees);
        let mut rows_buf: Vec<u32> = Vec::with_capacity(rows);
        let mut pool = HistPool::default();
        for _ in 0..self.n_trees {
            gradients(&scores, y, self.scale_pos_weight, &grower.scale, &mut gh);

            // rows and features of this tree
            let bagged = self.bagging_fraction < 1.0;
            rows_buf.clear();
            if bagged {
                let k = ((rows as f64 * self.bagging_fraction).round() as usize).clamp(1, rows);
                let mut chosen = sample(&mut rng, rows, k).into_vec();
                chosen.sort_unstable();
                rows_buf.extend(chosen.into_iter().map(|r| r as u32));
            } else {
                rows_buf.extend(0..rows as u32);
            }
            let mut active = vec![true; n_features];
            if self.feature_fraction < 1.0 {
                let k = ((n_features as f64 * self.feature_fraction).ceil() as usize)
                    .clamp(1, n_features);
                active.fill(false);
                for f in sample(&mut rng, n_features, k) {
                    active[f] = true;
                }
            }

            let grown = grower.grow(&mut rows_buf, !bagged, &gh, &active, &mut pool);
            if bagged {
                add_binned(&mut scores, std::slice::from_ref(&grown.tree), data, None);
            } else {
                for (start, end, value) in &grown.leaves {
                    for &r in &rows_buf[*start..*end] {
                        scores[r as usize] += value;
                    }
                }
            }
            let tree = grown.tree;

            if let (Some((vdata, vy)), Some(patience)) = (&valid, self.early_stopping_rounds) {
                add_binned(&mut valid_scores, std::slice::from_ref(&tree), vdata, None);
                trees.push(tree);
                let loss = log_loss(&valid_scores, vy);
                if loss < best.0 {
                    best = (loss, trees.len());
                } else if trees.len() - best.1 >= patience {
                    break;
                }
            } else {
                trees.push(tree);
            }
        }
        let best_iteration = valid.as_ref().map(|_| best.1.max(1));
        if let Some(keep) = best_iteration.filter(|&keep| keep < trees.len()) {
            trees.truncate(keep);
            scores.fill(base_score);
            add_binned(&mut scores, &trees, data, None);
        }
        let mut gain = vec![0.0; n_features];
        for tree in &trees {
            for node in &tree.nodes {
                if let Some(s) = &node.split
                    && let Some(g) = gain.get_mut(s.feature as usize)
                {
                    *g += s.gain;
                }
            }
        }
        let model = GbdtModel {
            base_score,
            trees,
            n_features,
            best_iteration,
            gain,
        };
        Ok((model, scores))
    }
}

/// Adds the trees' outputs, in order, to the margins of the rows `rows` of `data` (of
/// every row, in order, when `None`): tree after tree over blocks of rows, so that a tree
/// stays in cache while a block goes through it.
fn add_binned(margins: &mut [f64], trees: &[Tree], data: &BinnedMatrix, rows: Option<&[usize]>) {
    const BLOCK: usize = 1024;
    margins
        .par_chunks_mut(BLOCK)
        .enumerate()
        .for_each(|(c, block)| {
            let first = c * BLOCK;
            for tree in trees {
                for (k, m) in block.iter_mut().enumerate() {
                    let r = rows.map_or(first + k, |rows| rows[first + k]);
                    *m += tree.predict_binned(data, r);
                }
            }
        });
}

/// Mean log-loss of margins against labels.
fn log_loss(margins: &[f64], y: &[bool]) -> f64 {
    let total: f64 = margins
        .iter()
        .zip(y)
        .map(|(&m, &l)| {
            // log(1 + e^-m) for a churner, log(1 + e^m) otherwise, computed stably
            let z = if l { -m } else { m };
            z.max(0.0) + (-z.abs()).exp().ln_1p()
        })
        .sum();
    total / margins.len().max(1) as f64
}

#[inline]
fn sigmoid(m: f64) -> f64 {
    1.0 / (1.0 + (-m).exp())
}

/// `e^x` for `|x| <= 700`, to about one unit in the last place, without a branch or a
/// call, so that a loop over many margins runs several at once in vector registers:
/// `e^x = 2^k e^r` with `k` the nearest integer to `x / ln 2`, and `e^r` (`|r| <= 0.35`) by
/// its Taylor polynomial of degree 13.
#[inline(always)]
fn exp_near(x: f64) -> f64 {
    const LN2_HI: f64 = 0.693_147_180_369_123_8;
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    // adding 1.5 * 2^52 rounds to an integer, kept in the low bits of the sum
    const ROUND: f64 = 6_755_399_441_055_744.0;
    // 1 / d!
    const TAYLOR: [f64; 14] = {
        let mut c = [1.0; 14];
        let mut d = 1;
        while d < 14 {
            c[d] = c[d - 1] / d as f64;
            d += 1;
        }
        c
    };
    let t = x * std::f64::consts::LOG2_E + ROUND;
    let k = t - ROUND;
    let r = (x - k * LN2_HI) - k * LN2_LO;
    let p = TAYLOR.iter().rev().fold(0.0, |p, &c| p * r + c);
    let k = t.to_bits().wrapping_sub(ROUND.to_bits()) as i64;
    p * f64::from_bits(((k + 1023) << 52) as u64)
}

/// Log-loss gradients and hessians at the current margins, in fixed point.
fn gradients(scores: &[f64], y: &[bool], pos_weight: f64, scale: &Scale, gh: &mut [Sums]) {
    const BLOCK: usize = 64;
    gh.par_chunks_mut(BLOCK)
        .zip(scores.par_chunks(BLOCK).zip(y.par_chunks(BLOCK)))
        .with_min_len(8192 / BLOCK)
        .for_each(|(out, (s, labels))| {
            // the probabilities first, in a loop that vectorises
            let mut p = [0.0f64; BLOCK];
            for (p, &s) in p.iter_mut().zip(s) {
                *p = 1.0 / (1.0 + exp_near((-s).clamp(-700.0, 700.0)));
            }
            for ((out, &p), &label) in out.iter_mut().zip(&p).zip(labels) {
                let (target, w) = if label { (1.0, pos_weight) } else { (0.0, 1.0) };
                *out = scale.row((p - target) * w, p * (1.0 - p) * w);
            }
        });
}

/// Buffers reused from leaf to leaf and tree to tree: histograms and the right-hand rows
/// of a partition.
#[derive(Default)]
struct HistPool {
    free: Vec<Vec<Sums>>,
    scratch: Vec<u32>,
}

impl HistPool {
    fn take(&mut self, len: usize) -> Vec<Sums> {
        match self.free.pop() {
            Some(mut h) => {
                h.resize(len, Sums::default());
                h
            }
            None => vec![Sums::default(); len],
        }
    }

    fn give(&mut self, h: Vec<Sums>) {
        self.free.push(h);
    }
}

/// A leaf being grown: its rows are `rows[start..end]`.
struct Leaf {
    node: usize,
    start: usize,
    end: usize,
    depth: usize,
    stats: Sums,
    hist: Vec<Sums>,
    best: Option<Candidate>,
}

struct Grown {
    tree: Tree,
    /// (start, end, output) of each leaf's rows in the row buffer.
    leaves: Vec<(usize, usize, f64)>,
}

struct Grower<'a> {
    data: &'a BinnedMatrix,
    row_bins: &'a RowBins,
    mappers: &'a [BinMapper],
    layout: &'a Layout,
    scale: Scale,
    config: SplitConfig,
    params: &'a GbdtValidParams,
}

impl Grower<'_> {
    fn node(&self, s: &Sums) -> Node {
        let s = self.scale.stats(s);
        let v = -s.g / (s.h + self.params.lambda) * self.params.learning_rate;
        Node {
            value: if v.is_finite() { v } else { 0.0 },
            count: s.n,
            split: None,
        }
    }

    /// Histogram of `rows`, whose sums are `total`; `all_rows` says `rows` is every row
    /// in order.
    fn histogram(
        &self,
        rows: &[u32],
        all_rows: bool,
        gh: &[Sums],
        total: &Sums,
        active: &[bool],
        pool: &mut HistPool,
    ) -> Vec<Sums> {
        let mut hist = pool.take(self.layout.total());
        histogram::build(
            &mut hist,
            &mut pool.free,
            self.layout,
            self.row_bins,
            (!all_rows).then_some(rows),
            gh,
            total,
            active,
        );
        hist
    }

    fn can_split(&self, leaf: &Leaf) -> bool {
        let (leaf_n, depth) = (self.scale.count(&leaf.stats), leaf.depth);
        leaf_n >= 2 * self.config.min_data_in_leaf
            && self.params.max_depth.is_none_or(|d| depth < d)
    }

    fn find(&self, leaf: &mut Leaf, active: &[bool]) {
        leaf.best = if self.can_split(leaf) {
            histogram::best_split(
                &leaf.hist,
                self.layout,
                self.mappers,
                &leaf.stats,
                &self.scale,
                active,
                &self.config,
            )
        } else {
            None
        };
    }

    /// Grows one tree on the rows in `rows` (reordered so that each leaf's rows are
    /// contiguous). `all_rows` says `rows` is every row in order.
    fn grow(
        &self,
        rows: &mut [u32],
        all_rows: bool,
        gh: &[Sums],
        active: &[bool],
        pool: &mut HistPool,
    ) -> Grown {
        let root_stats = if all_rows {
            histogram::total(gh)
        } else {
            let mut t = Sums::default();
            for &r in rows.iter() {
                t.add(&gh[r as usize]);
            }
            t
        };
        let mut tree = Tree {
            nodes: vec![self.node(&root_stats)],
        };
        let hist = self.histogram(rows, all_rows, gh, &root_stats, active, pool);
        let mut root = Leaf {
            node: 0,
            start: 0,
            end: rows.len(),
            depth: 0,
            stats: root_stats,
            hist,
            best: None,
        };
        self.find(&mut root, active);
        let mut leaves = vec![root];

        while leaves.len() < self.params.max_leaves {
            // the leaf whose split gains most, ties to the earlier leaf
            let mut pick: Option<(usize, f64)> = None;
            for (i, leaf) in leaves.iter().enumerate() {
                if let Some(c) = &leaf.best
                    && pick.is_none_or(|(_, g)| c.gain > g)
                {
                    pick = Some((i, c.gain));
                }
            }
            let Some((i, _)) = pick else { break };
            let Some(candidate) = leaves[i].best.take() else {
                break;
            };
            let (parent_start, parent_end, parent_node, parent_depth) = (
                leaves[i].start,
                leaves[i].end,
                leaves[i].node,
                leaves[i].depth,
            );

            // partition the parent's rows, stably, left rows first; without branches,
            // as a row's side is anyone's guess
            let mut goes_left = [false; 256];
            for (b, left) in goes_left.iter_mut().enumerate() {
                *left = candidate.rule.bin_goes_left(b as u8);
            }
            let column = &self.data.bins[candidate.feature];
            let span = &mut rows[parent_start..parent_end];
            let scratch = &mut pool.scratch;
            scratch.resize(span.len(), 0);
            let (mut n_left, mut n_right) = (0, 0);
            for k in 0..span.len() {
                let r = span[k];
                let left = goes_left[column[r as usize] as usize];
                span[n_left] = r;
                scratch[n_right] = r;
                n_left += left as usize;
                n_right += !left as usize;
            }
            span[n_left..].copy_from_slice(&scratch[..n_right]);
            let mid = parent_start + n_left;

            let (left_node, right_node) = (tree.nodes.len(), tree.nodes.len() + 1);
            tree.nodes.push(self.node(&candidate.left));
            tree.nodes.push(self.node(&candidate.right));
            tree.nodes[parent_node].split = Some(Split {
                feature: candidate.feature as u32,
                rule: candidate.rule.clone(),
                gain: candidate.gain,
                left: left_node as u32,
                right: right_node as u32,
            });

            let depth = parent_depth + 1;
            let last_split = leaves.len() + 1 >= self.params.max_leaves;
            let mut left = Leaf {
                node: left_node,
                start: parent_start,
                end: mid,
                depth,
                stats: candidate.left,
                hist: Vec::new(),
                best: None,
            };
            let mut right = Leaf {
                node: right_node,
                start: mid,
                end: parent_end,
                depth,
                stats: candidate.right,
                hist: Vec::new(),
                best: None,
            };
            if !last_split {
                // the smaller child from rows, the larger by subtraction
                let parent_hist = std::mem::take(&mut leaves[i].hist);
                let (small, large) = if left.end - left.start <= right.end - right.start {
                    (&mut left, &mut right)
                } else {
                    (&mut right, &mut left)
                };
                small.hist = self.histogram(
                    &rows[small.start..small.end],
                    false,
                    gh,
                    &small.stats,
                    active,
                    pool,
                );
                let mut large_hist = parent_hist;
                histogram::subtract(&mut large_hist, &small.hist, self.layout, active);
                large.hist = large_hist;
                self.find(&mut left, active);
                self.find(&mut right, active);
            }
            let old = std::mem::replace(&mut leaves[i], left);
            if !old.hist.is_empty() {
                pool.give(old.hist);
            }
            leaves.push(right);
        }

        let mut out = Vec::with_capacity(leaves.len());
        for leaf in leaves {
            out.push((leaf.start, leaf.end, tree.nodes[leaf.node].value));
            if !leaf.hist.is_empty() {
                pool.give(leaf.hist);
            }
        }
        Grown { tree, leaves: out }
    }
}

/// A feature matrix binned once ([`GbdtValidParams::bin`]), for several fits on its rows.
#[derive(Debug, Clone)]
pub struct BinnedFeatures {
    mappers: Vec<BinMapper>,
    data: BinnedMatrix,
}

/// A fitted boosted-tree classifier: margins (log-odds) are the base score plus the sum
/// of the trees.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GbdtModel {
    /// Log-odds of the training churn rate.
    pub base_score: f64,
    /// The trees, in boosting order.
    pub trees: Vec<Tree>,
    /// Feature columns expected.
    pub n_features: usize,
    /// Trees kept by early stopping, when it ran.
    pub best_iteration: Option<usize>,
    /// Total split gain of each feature.
    pub gain: Vec<f64>,
}

impl GbdtModel {
    fn check_width(&self, x: &ArrayView2<'_, f64>) -> Result<(), ModelError> {
        if x.ncols() != self.n_features {
            return Err(ModelError::MatrixWidth {
                expected: self.n_features,
                found: x.ncols(),
            });
        }
        Ok(())
    }

    /// Margins (log-odds) of each row.
    pub fn predict_margin(&self, x: ArrayView2<'_, f64>) -> Result<Vec<f64>, ModelError> {
        self.check_width(&x)?;
        // Tree after tree over blocks of rows, so that a tree stays in cache while a
        // block goes through it; each row still adds the trees in order.
        const BLOCK: usize = 256;
        let mut margins = vec![self.base_score; x.nrows()];
        margins
            .par_chunks_mut(BLOCK)
            .enumerate()
            .for_each(|(c, block)| {
                let rows = x.slice(ndarray::s![c * BLOCK..c * BLOCK + block.len(), ..]);
                for tree in &self.trees {
                    for (m, row) in block.iter_mut().zip(rows.rows()) {
                        *m += tree.predict(|j| row[j]);
                    }
                }
            });
        Ok(margins)
    }

    /// [`Self::predict_margin`] of the rows `rows` of the binned features this model was
    /// fitted on (by [`GbdtValidParams::fit_binned`]): the same margins, read from the
    /// bins, tree after tree.
    pub fn predict_margin_binned(
        &self,
        binned: &BinnedFeatures,
        rows: &[usize],
    ) -> Result<Vec<f64>, ModelError> {
        let data = &binned.data;
        if binned.mappers.len() != self.n_features {
            return Err(ModelError::MatrixWidth {
                expected: self.n_features,
                found: binned.mappers.len(),
            });
        }
        if rows.iter().any(|&r| r >= data.rows) {
            return Err(invalid(
                "rows",
                "must be rows of the binned features",
                rows.len(),
            ));
        }
        let mut margins = vec![self.base_score; rows.len()];
        add_binned(&mut margins, &self.trees, data, Some(rows));
        Ok(margins)
    }

    /// Churn probabilities, uncalibrated.
    pub fn predict_proba(&self, x: ArrayView2<'_, f64>) -> Result<Vec<f64>, ModelError> {
        Ok(self.predict_margin(x)?.into_iter().map(sigmoid).collect())
    }

    /// Per-row feature contributions to the margin, `rows × (features + 1)`, the last
    /// column the bias: a row's entries sum to its margin. `shap` picks TreeSHAP
    /// (exact Shapley values, O(leaves × depth²) per tree) over Saabas path contributions
    /// (O(depth) per tree).
    pub fn contributions(
        &self,
        x: ArrayView2<'_, f64>,
        shap: bool,
    ) -> Result<ndarray::Array2<f64>, ModelError> {
        self.check_width(&x)?;
        let f = self.n_features;
        let rows: Vec<Vec<f64>> = (0..x.nrows())
            .into_par_iter()
            .with_min_len(64)
            .map(|i| {
                let row = x.row(i);
                let mut phi = vec![0.0; f + 1];
                let mut bias = self.base_score;
                for tree in &self.trees {
                    bias += if shap {
                        tree.shap(&|j| row[j], &mut phi[..f])
                    } else {
                        tree.saabas(|j| row[j], &mut phi[..f])
                    };
                }
                phi[f] = bias;
                phi
            })
            .collect();
        let mut out = ndarray::Array2::zeros((x.nrows(), f + 1));
        for (i, phi) in rows.into_iter().enumerate() {
            for (j, v) in phi.into_iter().enumerate() {
                out[[i, j]] = v;
            }
        }
        Ok(out)
    }
}

/// linfa's interface: every column numeric, labels `bool`.
impl<D, T> Fit<ArrayBase<D, Ix2>, T, ModelError> for GbdtValidParams
where
    D: Data<Elem = f64>,
    T: AsSingleTargets<Elem = bool>,
{
    type Object = GbdtModel;

    fn fit(&self, dataset: &DatasetBase<ArrayBase<D, Ix2>, T>) -> Result<GbdtModel, ModelError> {
        let x = dataset.records.view();
        let y: Vec<bool> = dataset
            .targets
            .as_single_targets()
            .iter()
            .copied()
            .collect();
        let types = vec![ColumnType::Numeric; x.ncols()];
        self.fit_matrix(x, &y, &types, None)
    }
}

#[cfg(test)]
mod tests {
    use linfa::Dataset;
    use ndarray::{Array1, Array2};

    use super::*;
    use crate::model::metrics::roc_auc;
    use crate::model::testdata::logistic_truth;

    fn small() -> GbdtValidParams {
        GbdtParams::new()
            .n_trees(50)
            .learning_rate(0.1)
            .check()
            .unwrap()
    }

    #[test]
    fn exp_near_matches_the_standard_exp() {
        for i in -70_000..=70_000 {
            let x = i as f64 / 100.0 + 0.003;
            let (got, want) = (exp_near(x), x.exp());
            assert!(
                ((got - want) / want).abs() < 4.0 * f64::EPSILON,
                "e^{x}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn learns_a_logistic_ground_truth() {
        let (x, y) = logistic_truth(2000, 10, 7);
        let (xt, yt) = logistic_truth(1000, 10, 8);
        let types = vec![ColumnType::Numeric; 10];
        let model = small().fit_matrix(x.view(), &y, &types, None).unwrap();
        let p = model.predict_proba(xt.view()).unwrap();
        let auc = roc_auc(&p, &yt).unwrap();
        assert!(auc > 0.8, "auc {auc}");
        assert_eq!(model.trees.len(), 50);
        assert!(model.trees.iter().all(|t| t.nodes.len() < 2 * 31));
    }

    #[test]
    fn identical_bits_for_any_thread_count_and_run() {
        let (x, y) = logistic_truth(2000, 10, 3);
        let types = vec![ColumnType::Numeric; 10];
        let params = GbdtParams::new()
            .n_trees(20)
            .feature_fraction(0.7)
            .bagging_fraction(0.8)
            .check()
            .unwrap();
        let fit = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let m = params.fit_matrix(x.view(), &y, &types, None).unwrap();
                serde_json::to_string(&m).unwrap()
            })
        };
        let one = fit(1);
        assert_eq!(one, fit(4));
        assert_eq!(one, fit(1));
    }

    #[test]
    fn contributions_sum_to_the_margin() {
        let (x, y) = logistic_truth(600, 4, 5);
        let types = vec![ColumnType::Numeric; 4];
        let model = GbdtParams::new()
            .n_trees(10)
            .check()
            .unwrap()
            .fit_matrix(x.view(), &y, &types, None)
            .unwrap();
        let margins = model.predict_margin(x.view()).unwrap();
        for shap in [false, true] {
            let c = model.contributions(x.view(), shap).unwrap();
            for (i, m) in margins.iter().enumerate().take(50) {
                assert!((c.row(i).sum() - m).abs() < 1e-9, "shap={shap}");
            }
        }
    }

    #[test]
    fn margins_from_the_bins_match_margins_from_the_values() {
        let (mut x, y) = logistic_truth(1500, 6, 9);
        x[[3, 2]] = f64::NAN;
        x[[7, 4]] = f64::INFINITY;
        x[[5, 2]] = f64::NAN;
        x[[10, 4]] = f64::NEG_INFINITY;
        let types = vec![ColumnType::Numeric; 6];
        let params = GbdtParams::new().n_trees(20).check().unwrap();
        let binned = params.bin(x.view(), &types).unwrap();
        let train: Vec<usize> = (0..1500).filter(|r| r % 5 != 0).collect();
        let held: Vec<usize> = (0..1500).filter(|r| r % 5 == 0).collect();
        let y_train: Vec<bool> = train.iter().map(|&r| y[r]).collect();
        let (model, fitted) = params
            .fit_binned_margins(&binned, Some(&train), &y_train, None)
            .unwrap();
        let from_values = model.predict_margin(x.view()).unwrap();
        let from_bins = model.predict_margin_binned(&binned, &held).unwrap();
        for (k, &r) in held.iter().enumerate() {
            assert_eq!(from_bins[k], from_values[r], "row {r}");
        }
        // the boosting's own margins of its rows are their predictions, bit for bit
        for (k, &r) in train.iter().enumerate() {
            assert_eq!(fitted[k], from_values[r], "row {r}");
        }
        assert!(model.predict_margin_binned(&binned, &[1500]).is_err());
        assert!(
            params
                .fit_binned(&binned, Some(&[1500]), &[true], None)
                .is_err()
        );
    }

    #[test]
    fn early_stopping_keeps_the_best_trees() {
        let (x, y) = logistic_truth(1000, 5, 11);
        let (vx, vy) = logistic_truth(500, 5, 12);
        let types = vec![ColumnType::Numeric; 5];
        let params = GbdtParams::new()
            .n_trees(400)
            .learning_rate(0.3)
            .early_stopping_rounds(Some(10))
            .check()
            .unwrap();
        let binned = params.bin(x.view(), &types).unwrap();
        let (model, fitted) = params
            .fit_binned_margins(&binned, None, &y, Some((vx.view(), &vy)))
            .unwrap();
        let kept = model.best_iteration.unwrap();
        assert!(kept < 400 && model.trees.len() == kept, "kept {kept}");
        // the margins are those of the kept trees
        assert_eq!(fitted, model.predict_margin(x.view()).unwrap());
    }

    #[test]
    fn categorical_codes_and_missing_values_are_learned() {
        // churn iff level 1 or 3, or the numeric value is missing
        let n = 1200;
        let mut x = Array2::zeros((n, 2));
        let mut y = vec![false; n];
        for i in 0..n {
            let level = (i * 7 % 6) as f64;
            x[[i, 0]] = level;
            x[[i, 1]] = if i % 5 == 0 {
                f64::NAN
            } else {
                (i % 13) as f64
            };
            y[i] = level == 1.0 || level == 3.0 || i % 5 == 0;
        }
        let types = [ColumnType::Categorical { levels: 6 }, ColumnType::Numeric];
        let model = GbdtParams::new()
            .n_trees(30)
            .learning_rate(0.3)
            .check()
            .unwrap()
            .fit_matrix(x.view(), &y, &types, None)
            .unwrap();
        let p = model.predict_proba(x.view()).unwrap();
        assert_eq!(roc_auc(&p, &y), Some(1.0));
    }

    #[test]
    fn one_class_and_bad_params_are_refused() {
        let x = Array2::zeros((3, 1));
        let err = small()
            .fit_matrix(x.view(), &[false; 3], &[ColumnType::Numeric], None)
            .unwrap_err();
        assert!(matches!(
            err,
            ModelError::OneClass {
                positives: 0,
                rows: 3
            }
        ));
        let err = GbdtParams::new().learning_rate(0.0).check().unwrap_err();
        assert_eq!(err.to_string(), "`learning_rate` must be in (0, 1], got 0");
    }

    #[test]
    fn tiny_and_constant_inputs_fit_without_splits() {
        let x = Array2::from_elem((2, 3), 1.0);
        let model = small()
            .fit_matrix(x.view(), &[true, false], &[ColumnType::Numeric; 3], None)
            .unwrap();
        assert!(model.trees.iter().all(|t| t.nodes.len() == 1));
        let p = model.predict_proba(x.view()).unwrap();
        assert!((p[0] - 0.5).abs() < 1e-12);
    }

    #[test]
    fn fits_through_linfa() {
        let (x, y) = logistic_truth(300, 3, 1);
        let dataset = Dataset::new(x, Array1::from(y));
        let model = GbdtParams::new()
            .n_trees(5)
            .check()
            .unwrap()
            .fit(&dataset)
            .unwrap();
        assert_eq!(model.trees.len(), 5);
    }
}
