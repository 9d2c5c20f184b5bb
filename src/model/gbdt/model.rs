//! The fitted boosted trees: prediction, margins and contributions.

use linfa::dataset::{AsSingleTargets, DatasetBase};
use linfa::traits::Fit;
use ndarray::{ArrayBase, ArrayView2, Data, Ix2};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::params::GbdtValidParams;
use crate::model::binning::{BinMapper, BinnedMatrix};
use crate::model::design::ColumnType;
use crate::model::error::ModelError;
use crate::model::stats::sigmoid;

use crate::model::tree::Tree;

/// A feature matrix binned once ([`GbdtValidParams::bin`]), for several fits on its rows.
#[derive(Debug, Clone)]
pub struct BinnedFeatures {
    pub(super) mappers: Vec<BinMapper>,
    pub(super) data: BinnedMatrix,
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
            return Err(ModelError::Data(format!(
                "`rows` must be rows of the binned features, got {}",
                rows.len()
            )));
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

/// Adds the trees' outputs, in order, to the margins of the rows `rows` of `data` (of
/// every row, in order, when `None`): tree after tree over blocks of rows, so that a tree
/// stays in cache while a block goes through it.
pub(super) fn add_binned(
    margins: &mut [f64],
    trees: &[Tree],
    data: &BinnedMatrix,
    rows: Option<&[usize]>,
) {
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
