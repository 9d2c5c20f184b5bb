//! One regression tree of the boosted ensemble: a flat vector of nodes, with the rules to
//! route a row, and the two ways to explain a prediction (Saabas path contributions and
//! path-dependent TreeSHAP).
//!
//! Every node, internal ones included, keeps the output it would have as a leaf and the
//! number of training rows that reached it; contributions and importance come from these.

use serde::{Deserialize, Serialize};

use super::binning::BinnedMatrix;

/// A fitted regression tree; `nodes[0]` is the root.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    /// The nodes; children always come after their parent.
    pub nodes: Vec<Node>,
}

/// One node of a tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Output (log-odds, learning rate applied) if the node were a leaf.
    pub value: f64,
    /// Training rows that reached the node.
    pub count: u32,
    /// The split, `None` for a leaf.
    pub split: Option<Split>,
}

/// How an internal node routes rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Split {
    /// Feature column.
    pub feature: u32,
    /// The rule; `true` sends the row left.
    pub rule: SplitRule,
    /// Loss reduction of the split, for importance.
    pub gain: f64,
    /// Index of the left child.
    pub left: u32,
    /// Index of the right child.
    pub right: u32,
}

/// The test of a split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SplitRule {
    /// Numeric: `value <= threshold` goes left; missing goes left when `missing_left`.
    Threshold {
        /// Largest value sent left.
        threshold: f64,
        /// Bin of the threshold, for binned rows: bins `1..=bin` go left.
        bin: u8,
        /// Where missing values go.
        missing_left: bool,
    },
    /// Categorical: the bins in `left_bins` go left (bin 0 = missing, bin `c + 1` = level `c`).
    Levels {
        /// Bit `b` set when bin `b` goes left.
        left_bins: [u64; 4],
        /// Number of levels of the feature; other codes are missing.
        levels: u32,
    },
}

impl SplitRule {
    /// Whether a raw value goes left. Non-finite values count as missing.
    #[inline]
    pub fn goes_left(&self, v: f64) -> bool {
        match self {
            SplitRule::Threshold {
                threshold,
                missing_left,
                ..
            } => {
                if v.is_finite() {
                    v <= *threshold
                } else {
                    *missing_left
                }
            }
            SplitRule::Levels { left_bins, levels } => {
                let bin = if v >= 0.0 && v < *levels as f64 && v == v.trunc() {
                    v as usize + 1
                } else {
                    0
                };
                bit(left_bins, bin)
            }
        }
    }

    /// Whether a binned value goes left.
    #[inline]
    pub fn bin_goes_left(&self, b: u8) -> bool {
        match self {
            SplitRule::Threshold {
                bin, missing_left, ..
            } => {
                if b == 0 {
                    *missing_left
                } else {
                    b <= *bin
                }
            }
            SplitRule::Levels { left_bins, .. } => bit(left_bins, b as usize),
        }
    }
}

#[inline]
pub(crate) fn bit(bits: &[u64; 4], b: usize) -> bool {
    b < 256 && (bits[b / 64] >> (b % 64)) & 1 == 1
}

impl Tree {
    /// A tree of one leaf.
    pub fn leaf(value: f64, count: u32) -> Tree {
        Tree {
            nodes: vec![Node {
                value,
                count,
                split: None,
            }],
        }
    }

    /// Index of the leaf a row reaches; `value(j)` reads feature `j` of the row.
    #[inline]
    pub fn leaf_of(&self, value: impl Fn(usize) -> f64) -> usize {
        let mut i = 0;
        while let Some(split) = self.nodes.get(i).and_then(|n| n.split.as_ref()) {
            i = if split.rule.goes_left(value(split.feature as usize)) {
                split.left as usize
            } else {
                split.right as usize
            };
        }
        i
    }

    /// Output for a row.
    #[inline]
    pub fn predict(&self, value: impl Fn(usize) -> f64) -> f64 {
        self.nodes.get(self.leaf_of(value)).map_or(0.0, |n| n.value)
    }

    /// Output for row `row` of a binned matrix.
    #[inline]
    pub fn predict_binned(&self, data: &BinnedMatrix, row: usize) -> f64 {
        let mut i = 0;
        while let Some(split) = self.nodes.get(i).and_then(|n| n.split.as_ref()) {
            let b = data.bins[split.feature as usize][row];
            i = if split.rule.bin_goes_left(b) {
                split.left as usize
            } else {
                split.right as usize
            };
        }
        self.nodes.get(i).map_or(0.0, |n| n.value)
    }

    /// Number of splits on the longest root-to-leaf path.
    pub fn depth(&self) -> usize {
        let mut depth = vec![0usize; self.nodes.len()];
        let mut max = 0;
        for (i, node) in self.nodes.iter().enumerate() {
            if let Some(s) = &node.split {
                let below = depth[i] + 1;
                for child in [s.left as usize, s.right as usize] {
                    if let Some(d) = depth.get_mut(child) {
                        *d = below;
                        max = max.max(below);
                    }
                }
            }
        }
        max
    }

    /// Saabas path contributions: along the row's path each split's feature is credited
    /// with the change in node output it causes. Adds to `phi` (one entry per feature)
    /// and returns the root output, so that root + Σ phi = the leaf output.
    pub fn saabas(&self, value: impl Fn(usize) -> f64, phi: &mut [f64]) -> f64 {
        let Some(root) = self.nodes.first() else {
            return 0.0;
        };
        let mut node = root;
        while let Some(split) = &node.split {
            let next = if split.rule.goes_left(value(split.feature as usize)) {
                split.left
            } else {
                split.right
            };
            let Some(child) = self.nodes.get(next as usize) else {
                break;
            };
            if let Some(p) = phi.get_mut(split.feature as usize) {
                *p += child.value - node.value;
            }
            node = child;
        }
        root.value
    }

    /// Path-dependent TreeSHAP (Lundberg et al. 2018, algorithm 2, as in LightGBM): exact
    /// Shapley values of the tree output where absent features follow the training rows.
    /// Adds to `phi` and returns the expected output (the root's cover-weighted mean).
    pub fn shap(&self, value: &dyn Fn(usize) -> f64, phi: &mut [f64]) -> f64 {
        if self.nodes.is_empty() {
            return 0.0;
        }
        let d = self.depth() + 2;
        let mut buffer = vec![PathElement::default(); (d + 1) * (d + 2) / 2 + d];
        self.shap_recurse(value, phi, 0, 0, &mut buffer, 1.0, 1.0, usize::MAX);
        self.expected_value(0)
    }

    /// Cover-weighted mean output below node `i`.
    fn expected_value(&self, i: usize) -> f64 {
        let Some(node) = self.nodes.get(i) else {
            return 0.0;
        };
        match &node.split {
            None => node.value,
            Some(s) => {
                let (l, r) = (s.left as usize, s.right as usize);
                let (nl, nr) = (self.count(l), self.count(r));
                if nl + nr == 0.0 {
                    return node.value;
                }
                (nl * self.expected_value(l) + nr * self.expected_value(r)) / (nl + nr)
            }
        }
    }

    fn count(&self, i: usize) -> f64 {
        self.nodes.get(i).map_or(0.0, |n| n.count as f64)
    }

    #[allow(clippy::too_many_arguments)]
    fn shap_recurse(
        &self,
        value: &dyn Fn(usize) -> f64,
        phi: &mut [f64],
        node: usize,
        mut depth: usize,
        parent: &mut [PathElement],
        zero_fraction: f64,
        one_fraction: f64,
        feature: usize,
    ) {
        // This node's path starts `depth` elements into the parent's and begins as a copy of it.
        let (from, path) = parent.split_at_mut(depth);
        path[..depth].copy_from_slice(&from[..depth]);
        extend_path(path, depth, zero_fraction, one_fraction, feature);
        let Some(n) = self.nodes.get(node) else {
            return;
        };
        let Some(split) = &n.split else {
            for i in 1..=depth {
                let w = unwound_path_sum(path, depth, i);
                let el = path[i];
                if let Some(p) = phi.get_mut(el.feature) {
                    *p += w * (el.one_fraction - el.zero_fraction) * n.value;
                }
            }
            return;
        };
        let f = split.feature as usize;
        let (hot, cold) = if split.rule.goes_left(value(f)) {
            (split.left as usize, split.right as usize)
        } else {
            (split.right as usize, split.left as usize)
        };
        let w = n.count.max(1) as f64;
        let hot_zero = self.count(hot) / w;
        let cold_zero = self.count(cold) / w;
        let (mut incoming_zero, mut incoming_one) = (1.0, 1.0);
        // A feature split on before is taken out of the path, to be put back for this node.
        if let Some(k) = (0..=depth).find(|&k| path[k].feature == f) {
            incoming_zero = path[k].zero_fraction;
            incoming_one = path[k].one_fraction;
            unwind_path(path, depth, k);
            depth -= 1;
        }
        self.shap_recurse(
            value,
            phi,
            hot,
            depth + 1,
            path,
            hot_zero * incoming_zero,
            incoming_one,
            f,
        );
        self.shap_recurse(
            value,
            phi,
            cold,
            depth + 1,
            path,
            cold_zero * incoming_zero,
            0.0,
            f,
        );
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct PathElement {
    feature: usize,
    zero_fraction: f64,
    one_fraction: f64,
    pweight: f64,
}

fn extend_path(path: &mut [PathElement], depth: usize, zero: f64, one: f64, feature: usize) {
    path[depth] = PathElement {
        feature,
        zero_fraction: zero,
        one_fraction: one,
        pweight: if depth == 0 { 1.0 } else { 0.0 },
    };
    let d1 = (depth + 1) as f64;
    for i in (0..depth).rev() {
        path[i + 1].pweight += one * path[i].pweight * (i + 1) as f64 / d1;
        path[i].pweight = zero * path[i].pweight * (depth - i) as f64 / d1;
    }
}

fn unwind_path(path: &mut [PathElement], depth: usize, index: usize) {
    let one = path[index].one_fraction;
    let zero = path[index].zero_fraction;
    let d1 = (depth + 1) as f64;
    let mut next_one = path[depth].pweight;
    for i in (0..depth).rev() {
        if one != 0.0 {
            let tmp = path[i].pweight;
            path[i].pweight = next_one * d1 / ((i + 1) as f64 * one);
            next_one = tmp - path[i].pweight * zero * (depth - i) as f64 / d1;
        } else {
            path[i].pweight = path[i].pweight * d1 / (zero * (depth - i) as f64);
        }
    }
    for i in index..depth {
        path[i].feature = path[i + 1].feature;
        path[i].zero_fraction = path[i + 1].zero_fraction;
        path[i].one_fraction = path[i + 1].one_fraction;
    }
}

fn unwound_path_sum(path: &[PathElement], depth: usize, index: usize) -> f64 {
    let one = path[index].one_fraction;
    let zero = path[index].zero_fraction;
    let d1 = (depth + 1) as f64;
    let mut next_one = path[depth].pweight;
    let mut total = 0.0;
    for i in (0..depth).rev() {
        if one != 0.0 {
            let tmp = next_one * d1 / ((i + 1) as f64 * one);
            total += tmp;
            next_one = path[i].pweight - tmp * zero * ((depth - i) as f64 / d1);
        } else if zero != 0.0 {
            total += (path[i].pweight / zero) / ((depth - i) as f64 / d1);
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(value: f64, count: u32, split: Option<(u32, f64, u32, u32)>) -> Node {
        Node {
            value,
            count,
            split: split.map(|(feature, threshold, left, right)| Split {
                feature,
                rule: SplitRule::Threshold {
                    threshold,
                    bin: 1,
                    missing_left: false,
                },
                gain: 1.0,
                left,
                right,
            }),
        }
    }

    /// x0 <= 0.5 ? (x1 <= 0.5 ? 1 : 3) : (x0 <= 1.5 ? 4 : (x2 <= 0.5 ? -2 : 8))
    fn example() -> Tree {
        Tree {
            nodes: vec![
                node(0.0, 100, Some((0, 0.5, 1, 2))),
                node(1.5, 40, Some((1, 0.5, 3, 4))),
                node(2.0, 60, Some((0, 1.5, 5, 6))),
                node(1.0, 30, None),
                node(3.0, 10, None),
                node(4.0, 20, None),
                node(0.5, 40, Some((2, 0.5, 7, 8))),
                node(-2.0, 10, None),
                node(8.0, 30, None),
            ],
        }
    }

    /// E[f | x_S] with absent features following the training counts.
    fn conditional(tree: &Tree, x: &[f64], present: &[bool], i: usize) -> f64 {
        let n = &tree.nodes[i];
        match &n.split {
            None => n.value,
            Some(s) => {
                if present[s.feature as usize] {
                    let next = if s.rule.goes_left(x[s.feature as usize]) {
                        s.left
                    } else {
                        s.right
                    };
                    conditional(tree, x, present, next as usize)
                } else {
                    let (l, r) = (s.left as usize, s.right as usize);
                    let (nl, nr) = (tree.nodes[l].count as f64, tree.nodes[r].count as f64);
                    (nl * conditional(tree, x, present, l) + nr * conditional(tree, x, present, r))
                        / (nl + nr)
                }
            }
        }
    }

    /// Shapley values by enumerating every coalition.
    fn brute_force_shap(tree: &Tree, x: &[f64]) -> Vec<f64> {
        let m = x.len();
        let fact = |k: usize| (1..=k).map(|v| v as f64).product::<f64>();
        let mut phi = vec![0.0; m];
        for j in 0..m {
            for mask in 0..(1u32 << m) {
                if mask & (1 << j) != 0 {
                    continue;
                }
                let present: Vec<bool> = (0..m).map(|k| mask & (1 << k) != 0).collect();
                let s = present.iter().filter(|&&p| p).count();
                let mut with = present.clone();
                with[j] = true;
                let weight = fact(s) * fact(m - s - 1) / fact(m);
                phi[j] +=
                    weight * (conditional(tree, x, &with, 0) - conditional(tree, x, &present, 0));
            }
        }
        phi
    }

    #[test]
    fn tree_shap_matches_brute_force_shapley_values() {
        let tree = example();
        for x in [
            [0.0, 0.0, 0.0],
            [1.0, 1.0, 1.0],
            [2.0, 0.0, 1.0],
            [2.0, 1.0, 0.0],
            [0.0, 1.0, 1.0],
        ] {
            let mut phi = vec![0.0; 3];
            let expected = tree.shap(&|j| x[j], &mut phi);
            let exact = brute_force_shap(&tree, &x);
            for j in 0..3 {
                assert!(
                    (phi[j] - exact[j]).abs() < 1e-12,
                    "{x:?}: {phi:?} vs {exact:?}"
                );
            }
            let prediction = tree.predict(|j| x[j]);
            assert!((expected + phi.iter().sum::<f64>() - prediction).abs() < 1e-12);
        }
    }

    #[test]
    fn saabas_contributions_add_up_to_the_leaf() {
        let tree = example();
        let x = [2.0, 0.0, 1.0];
        let mut phi = vec![0.0; 3];
        let root = tree.saabas(|j| x[j], &mut phi);
        assert_eq!(root, 0.0);
        assert_eq!(phi, vec![0.5, 0.0, 7.5]); // 0 -> 2 -> 0.5 on x0, 0.5 -> 8 on x2
        assert_eq!(tree.predict(|j| x[j]), 8.0);
        assert_eq!(tree.depth(), 3);
    }

    #[test]
    fn binned_and_raw_routing_agree_on_levels() {
        let mut left_bins = [0u64; 4];
        left_bins[0] = 0b101; // missing and level 1
        let rule = SplitRule::Levels {
            left_bins,
            levels: 3,
        };
        assert!(rule.goes_left(f64::NAN) && rule.bin_goes_left(0));
        assert!(!rule.goes_left(0.0) && !rule.bin_goes_left(1));
        assert!(rule.goes_left(1.0) && rule.bin_goes_left(2));
        assert!(rule.goes_left(7.0), "an unknown code is missing");
    }
}
