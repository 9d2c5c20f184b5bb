//! The single decision-tree baseline (linfa-trees), read as probabilities.
//!
//! linfa's tree predicts classes, so the fitted tree is copied into a flat form whose
//! leaves carry the churn rate of the training rows that reach them (smoothed towards the
//! overall rate). Classes are weighted to balance, so that the tree splits churn-rich
//! regions even when churners are a small minority; each row's weight carries a small
//! seeded jitter because linfa breaks exactly tied class weights in hash-map order, which
//! would make the fit differ from run to run. The tree reads the same standardised design
//! as the logistic baseline and is fitted on at most 100 000 rows (25 000 when linfa-trees
//! fails on 100 000).

use linfa::Dataset;
use linfa::prelude::Fit;
use linfa_trees::{DecisionTree, TreeNode};
use ndarray::{Array1, ArrayView2, Axis};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::design::ColumnType;
use super::error::ModelError;
use super::logistic::{LinearDesign, MAX_ROWS};
use super::sample::sample_rows;

/// Rows of the second try when linfa-trees fails on [`MAX_ROWS`] (its f32 sums drift
/// less on fewer rows).
const RETRY_ROWS: usize = MAX_ROWS / 4;

/// One node of the flattened tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlatNode {
    /// Design column tested (internal nodes).
    pub feature: usize,
    /// `value < threshold` goes left, as linfa predicts.
    pub threshold: f64,
    /// Children, `None` for a leaf.
    pub children: Option<(u32, u32)>,
    /// Churn rate of the training rows reaching the node.
    pub prob: f64,
}

/// A depth-limited decision tree giving churn probabilities.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TreeBaseline {
    /// The design it reads.
    pub design: LinearDesign,
    /// Nodes, root first.
    pub nodes: Vec<FlatNode>,
}

impl TreeBaseline {
    /// Fits a tree of depth at most `max_depth` with at least `min_leaf` (balanced) rows
    /// per leaf.
    pub fn fit(
        x: ArrayView2<'_, f64>,
        y: &[bool],
        types: &[ColumnType],
        max_depth: usize,
        min_leaf: usize,
        seed: u64,
    ) -> Result<TreeBaseline, ModelError> {
        match Self::fit_sampled(x, y, types, max_depth, min_leaf, seed, MAX_ROWS) {
            Err(ModelError::LibraryFit { .. }) if x.nrows() > RETRY_ROWS => {
                Self::fit_sampled(x, y, types, max_depth, min_leaf, seed, RETRY_ROWS)
            }
            fitted => fitted,
        }
    }

    /// [`Self::fit`] on a seeded sample of at most `max_rows` rows.
    fn fit_sampled(
        x: ArrayView2<'_, f64>,
        y: &[bool],
        types: &[ColumnType],
        max_depth: usize,
        min_leaf: usize,
        seed: u64,
        max_rows: usize,
    ) -> Result<TreeBaseline, ModelError> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let rows = sample_rows(x.nrows(), max_rows, rng.random())
            .unwrap_or_else(|| (0..x.nrows()).collect());
        let x = x.select(Axis(0), &rows);
        let y: Vec<bool> = rows.iter().map(|&i| y[i]).collect();
        let design = LinearDesign::fit(x.view(), types);
        let z = design.transform(x.view())?;

        let n = y.len() as f64;
        let positives = y.iter().filter(|&&l| l).count() as f64;
        let (w_pos, w_neg) = (
            n / (2.0 * positives.max(1.0)),
            n / (2.0 * (n - positives).max(1.0)),
        );
        let weights: Array1<f32> = y
            .iter()
            .map(|&l| {
                let w = if l { w_pos } else { w_neg };
                (w * (1.0 + 0.01 * rng.random::<f64>())) as f32
            })
            .collect();
        let dataset = Dataset::new(z.clone(), Array1::from(y.clone())).with_weights(weights);
        // linfa-trees 0.8 asserts that every candidate side holds weight (`gini_impurity`:
        // `n_samples > 0.0`), which its f32 running sums break on large tables (seen on
        // 100k generated subscribers): the panic is caught without a report, and `fit`
        // tries once more on fewer rows before the baseline is left out.
        let tree = crate::catch_quietly(|| {
            DecisionTree::params()
                .max_depth(Some(max_depth.max(1)))
                .min_weight_leaf(min_leaf.max(1) as f32)
                .min_weight_split(2.0 * min_leaf.max(1) as f32)
                .fit(&dataset)
        })
        .map_err(|message| ModelError::LibraryFit {
            model: "decision-tree baseline",
            library: "linfa-trees",
            message,
        })??;

        let mut nodes = Vec::new();
        flatten(tree.root_node(), &mut nodes);
        // leaf rates from the training rows, smoothed towards the overall rate
        let mut counts = vec![(0.0f64, 0.0f64); nodes.len()];
        for (row, &label) in z.rows().into_iter().zip(&y) {
            let mut i = 0;
            loop {
                counts[i].0 += f64::from(u8::from(label));
                counts[i].1 += 1.0;
                match nodes[i].children {
                    Some((l, r)) => {
                        let v = row.get(nodes[i].feature).copied().unwrap_or(0.0);
                        i = if v < nodes[i].threshold {
                            l as usize
                        } else {
                            r as usize
                        };
                    }
                    None => break,
                }
            }
        }
        let prior = positives / n.max(1.0);
        for (node, (pos, total)) in nodes.iter_mut().zip(counts) {
            node.prob = (pos + 2.0 * prior) / (total + 2.0);
        }
        Ok(TreeBaseline { design, nodes })
    }

    /// Churn probabilities.
    pub fn predict_proba(&self, x: ArrayView2<'_, f64>) -> Result<Vec<f64>, ModelError> {
        let z = self.design.transform(x)?;
        Ok(z.rows()
            .into_iter()
            .map(|row| {
                let mut i = 0;
                while let Some(node) = self.nodes.get(i) {
                    match node.children {
                        Some((l, r)) => {
                            let v = row.get(node.feature).copied().unwrap_or(0.0);
                            i = if v < node.threshold {
                                l as usize
                            } else {
                                r as usize
                            };
                        }
                        None => return node.prob,
                    }
                }
                0.5
            })
            .collect())
    }
}

/// Copies linfa's tree, depth first, into `out`; returns the node's index.
fn flatten(node: &TreeNode<f64, bool>, out: &mut Vec<FlatNode>) -> u32 {
    let index = out.len();
    let (feature, threshold, _) = node.split();
    out.push(FlatNode {
        feature,
        threshold,
        children: None,
        prob: 0.0,
    });
    if !node.is_leaf() {
        let children = node.children();
        if let (Some(Some(left)), Some(Some(right))) = (children.first(), children.get(1)) {
            let l = flatten(left, out);
            let r = flatten(right, out);
            out[index].children = Some((l, r));
        }
    }
    index as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::metrics::roc_auc;
    use crate::model::testdata::logistic_truth;

    #[test]
    fn tree_ranks_churners_and_is_deterministic() {
        let (x, y) = logistic_truth(2000, 6, 31);
        let types = vec![ColumnType::Numeric; 6];
        let a = TreeBaseline::fit(x.view(), &y, &types, 5, 20, 1).unwrap();
        let b = TreeBaseline::fit(x.view(), &y, &types, 5, 20, 1).unwrap();
        assert_eq!(a, b);
        let (xt, yt) = logistic_truth(1000, 6, 32);
        let p = a.predict_proba(xt.view()).unwrap();
        let auc = roc_auc(&p, &yt).unwrap();
        assert!(auc > 0.7, "auc {auc}");
        assert!(p.iter().all(|v| (0.0..=1.0).contains(v)));
    }
}
