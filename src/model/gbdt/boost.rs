//! The boosting loop: binning, gradients, one tree after another, early stopping.

use ndarray::ArrayView2;
use rand::SeedableRng;
use rand::seq::index::sample;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::grow::{Grower, HistPool};
use super::model::{BinnedFeatures, GbdtModel, add_binned};
use super::params::GbdtValidParams;
use crate::model::binning::{bin_matrix, fit_mappers};
use crate::model::design::ColumnType;
use crate::model::error::ModelError;
use crate::model::histogram::{Layout, RowBins, Scale, Sums};
use crate::model::split::SplitConfig;

impl GbdtValidParams {
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
                    ModelError::Data(format!(
                        "`rows` must be rows of the binned features, got {}",
                        rows.len()
                    ))
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
            return Err(ModelError::Data(format!(
                "`rows` must fit in 32 bits, got {rows}"
            )));
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

/// Mean log-loss of margins against labels.
pub(super) fn log_loss(margins: &[f64], y: &[bool]) -> f64 {
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

/// `e^x` for `|x| <= 700`, to about one unit in the last place, without a branch or a
/// call, so that a loop over many margins runs several at once in vector registers:
/// `e^x = 2^k e^r` with `k` the nearest integer to `x / ln 2`, and `e^r` (`|r| <= 0.35`) by
/// its Taylor polynomial of degree 13.
#[inline(always)]
pub(super) fn exp_near(x: f64) -> f64 {
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
pub(super) fn gradients(
    scores: &[f64],
    y: &[bool],
    pos_weight: f64,
    scale: &Scale,
    gh: &mut [Sums],
) {
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
