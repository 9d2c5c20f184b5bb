//! Growing one tree leaf-wise: the leaf whose best split gains most is split next;
//! only the smaller child is histogrammed from rows, the larger is the parent's minus it.

use super::params::GbdtValidParams;
use crate::model::binning::{BinMapper, BinnedMatrix};
use crate::model::histogram::{self, Layout, RowBins, Scale, Sums};
use crate::model::split::{self, Candidate, SplitConfig};

use crate::model::tree::{Node, Split, Tree};

/// Buffers reused from leaf to leaf and tree to tree: histograms and the right-hand rows
/// of a partition.
#[derive(Default)]
pub(super) struct HistPool {
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
pub(super) struct Leaf {
    node: usize,
    start: usize,
    end: usize,
    depth: usize,
    stats: Sums,
    hist: Vec<Sums>,
    best: Option<Candidate>,
}

pub(super) struct Grown {
    pub(super) tree: Tree,
    /// (start, end, output) of each leaf's rows in the row buffer.
    pub(super) leaves: Vec<(usize, usize, f64)>,
}

pub(super) struct Grower<'a> {
    pub(super) data: &'a BinnedMatrix,
    pub(super) row_bins: &'a RowBins,
    pub(super) mappers: &'a [BinMapper],
    pub(super) layout: &'a Layout,
    pub(super) scale: Scale,
    pub(super) config: SplitConfig,
    pub(super) params: &'a GbdtValidParams,
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
            split::best_split(
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
    pub(super) fn grow(
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
