//! Gradient histograms and the search for the best split of a leaf: the hot path of
//! the boosted trees.
//!
//! A leaf's histogram holds, for every feature and bin, the sums of the gradients and
//! hessians of its rows and their count. Histograms are built feature by feature, in
//! parallel over features; within a feature rows are added in their order in the leaf, so
//! every sum is the same for any number of threads. A child's histogram is its parent's
//! minus its sibling's, so only the smaller child is ever built from rows.

use rayon::prelude::*;

use super::binning::BinMapper;
use super::tree::SplitRule;

/// Sums over the rows of a bin, or of a leaf.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Stats {
    /// Sum of gradients.
    pub g: f64,
    /// Sum of hessians.
    pub h: f64,
    /// Rows.
    pub n: u32,
}

impl Stats {
    #[inline]
    fn add(&mut self, o: &Stats) {
        self.g += o.g;
        self.h += o.h;
        self.n += o.n;
    }

    #[inline]
    fn minus(&self, o: &Stats) -> Stats {
        Stats {
            g: self.g - o.g,
            h: self.h - o.h,
            n: self.n.saturating_sub(o.n),
        }
    }
}

/// Where each feature's bins lie in a flat histogram.
#[derive(Debug, Clone)]
pub struct Layout {
    /// `offsets[f]..offsets[f + 1]` are the bins of feature `f`.
    pub offsets: Vec<usize>,
}

impl Layout {
    /// The layout for these mappers.
    pub fn new(mappers: &[BinMapper]) -> Layout {
        let mut offsets = Vec::with_capacity(mappers.len() + 1);
        let mut at = 0;
        offsets.push(0);
        for m in mappers {
            at += m.n_bins();
            offsets.push(at);
        }
        Layout { offsets }
    }

    /// Bins over all features.
    pub fn total(&self) -> usize {
        self.offsets.last().copied().unwrap_or(0)
    }

    /// Splits a flat histogram into one slice per feature.
    fn per_feature<'h>(&self, hist: &'h mut [Stats]) -> Vec<&'h mut [Stats]> {
        let mut out = Vec::with_capacity(self.offsets.len());
        let mut rest = hist;
        for w in self.offsets.windows(2) {
            let (head, tail) = rest.split_at_mut(w[1] - w[0]);
            out.push(head);
            rest = tail;
        }
        out
    }
}

/// Below this many row × feature additions a histogram is built on the calling thread;
/// either way gives the same bits.
const PARALLEL_WORK: usize = 64 * 1024;

/// Builds the histogram of the rows `rows` into `hist` for the features in `active`.
/// `gh[i]` is the (gradient, hessian) of the `i`-th row of `rows` (already gathered),
/// or of row `i` when `rows` is `None` (all rows, in order).
pub fn build(
    hist: &mut [Stats],
    layout: &Layout,
    bins: &[Vec<u8>],
    rows: Option<&[u32]>,
    gh: &[(f64, f64)],
    active: &[bool],
) {
    let work = gh.len() * active.iter().filter(|&&a| a).count();
    let fill = |(f, h): (usize, &mut [Stats])| {
        if !active[f] {
            return;
        }
        h.fill(Stats::default());
        let column = &bins[f];
        match rows {
            Some(rows) => {
                for (&r, &(g, hh)) in rows.iter().zip(gh) {
                    if let Some(e) = h.get_mut(column[r as usize] as usize) {
                        e.g += g;
                        e.h += hh;
                        e.n += 1;
                    }
                }
            }
            None => {
                for (&b, &(g, hh)) in column.iter().zip(gh) {
                    if let Some(e) = h.get_mut(b as usize) {
                        e.g += g;
                        e.h += hh;
                        e.n += 1;
                    }
                }
            }
        }
    };
    let slices = layout.per_feature(hist);
    if work >= PARALLEL_WORK {
        slices.into_par_iter().enumerate().for_each(fill);
    } else {
        slices.into_iter().enumerate().for_each(fill);
    }
}

/// `parent -= child` for the active features: the parent's histogram becomes the sibling's.
pub fn subtract(parent: &mut [Stats], child: &[Stats], layout: &Layout, active: &[bool]) {
    for (f, w) in layout.offsets.windows(2).enumerate() {
        if active[f] {
            for (p, c) in parent[w[0]..w[1]].iter_mut().zip(&child[w[0]..w[1]]) {
                *p = p.minus(c);
            }
        }
    }
}

/// Constraints and regularisation of the split search.
#[derive(Debug, Clone, Copy)]
pub struct SplitConfig {
    /// L2 penalty on leaf outputs.
    pub lambda: f64,
    /// Fewest rows in a child.
    pub min_data_in_leaf: u32,
    /// Smallest hessian sum in a child.
    pub min_sum_hessian: f64,
    /// Smallest gain worth a split.
    pub min_gain: f64,
}

/// LightGBM's categorical defaults: up to this many levels are split one-vs-rest.
const MAX_CAT_TO_ONEHOT: usize = 4;
/// Levels are ordered by `g / (h + CAT_SMOOTH)` before a sorted scan.
const CAT_SMOOTH: f64 = 10.0;
/// Extra L2 penalty on sorted categorical splits.
const CAT_L2: f64 = 10.0;
/// At most this many levels on the smaller side of a sorted categorical split.
const MAX_CAT_THRESHOLD: usize = 32;
/// Levels with fewer rows than this in the leaf stay on the right ("other") side.
const MIN_DATA_PER_GROUP: u32 = 100;

/// The best split of a leaf on one feature.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// Loss reduction.
    pub gain: f64,
    /// Feature.
    pub feature: usize,
    /// Rule.
    pub rule: SplitRule,
    /// Sums of the rows going left.
    pub left: Stats,
    /// Sums of the rows going right.
    pub right: Stats,
}

#[inline]
fn score(s: &Stats, lambda: f64) -> f64 {
    s.g * s.g / (s.h + lambda)
}

impl SplitConfig {
    #[inline]
    fn admissible(&self, s: &Stats) -> bool {
        s.n >= self.min_data_in_leaf && s.h >= self.min_sum_hessian
    }

    /// Gain of splitting `total` into `left` and `total - left`, if both sides are admissible.
    #[inline]
    fn gain(&self, total: &Stats, left: &Stats, lambda: f64) -> Option<(f64, Stats)> {
        let right = total.minus(left);
        if !self.admissible(left) || !self.admissible(&right) {
            return None;
        }
        let gain = score(left, lambda) + score(&right, lambda) - score(total, lambda);
        (gain > self.min_gain && gain.is_finite()).then_some((gain, right))
    }
}

/// The best split over the active features, ties to the lower feature; `None` when no
/// split gains anything.
pub fn best_split(
    hist: &[Stats],
    layout: &Layout,
    mappers: &[BinMapper],
    total: &Stats,
    active: &[bool],
    config: &SplitConfig,
) -> Option<Candidate> {
    let search = |f: usize| -> Option<Candidate> {
        if !active[f] {
            return None;
        }
        let h = &hist[layout.offsets[f]..layout.offsets[f + 1]];
        match &mappers[f] {
            BinMapper::Numeric { .. } => best_threshold(f, h, &mappers[f], total, config),
            BinMapper::Categorical { levels } => best_levels(f, h, *levels, total, config),
        }
    };
    let per_feature: Vec<Option<Candidate>> = if mappers.len() >= 16 {
        (0..mappers.len()).into_par_iter().map(search).collect()
    } else {
        (0..mappers.len()).map(search).collect()
    };
    let mut best: Option<Candidate> = None;
    for c in per_feature.into_iter().flatten() {
        if best.as_ref().is_none_or(|b| c.gain > b.gain) {
            best = Some(c);
        }
    }
    best
}

/// Best threshold of a numeric feature, trying missing values on either side.
fn best_threshold(
    f: usize,
    h: &[Stats],
    mapper: &BinMapper,
    total: &Stats,
    config: &SplitConfig,
) -> Option<Candidate> {
    let n_bins = h.len();
    let missing = h[0];
    let mut best: Option<(f64, usize, bool, Stats, Stats)> = None;
    let mut consider = |gain: f64, t: usize, missing_left: bool, left: Stats, right: Stats| {
        if best.as_ref().is_none_or(|b| gain > b.0) {
            best = Some((gain, t, missing_left, left, right));
        }
    };
    let mut acc = Stats::default();
    for t in 1..n_bins {
        acc.add(&h[t]);
        let last = t == n_bins - 1;
        // missing right; the last threshold only splits missing from the rest
        if !last || missing.n > 0 {
            if let Some((gain, right)) = config.gain(total, &acc, config.lambda) {
                consider(gain, t, false, acc, right);
            }
        }
        if missing.n > 0 && !last {
            let mut left = acc;
            left.add(&missing);
            if let Some((gain, right)) = config.gain(total, &left, config.lambda) {
                consider(gain, t, true, left, right);
            }
        }
    }
    let (gain, t, missing_left, left, right) = best?;
    // With no missing value in training, unseen missing values follow the majority.
    let missing_left = if missing.n > 0 {
        missing_left
    } else {
        left.n >= right.n
    };
    let threshold = match mapper.upper_bound(t) {
        v if v.is_finite() => v,
        _ => f64::MAX,
    };
    Some(Candidate {
        gain,
        feature: f,
        rule: SplitRule::Threshold {
            threshold,
            bin: t as u8,
            missing_left,
        },
        left,
        right,
    })
}

/// Best subset of levels of a categorical feature (missing is a level of its own):
/// one-vs-rest for few levels, else LightGBM's scan over levels sorted by mean gradient.
fn best_levels(
    f: usize,
    h: &[Stats],
    levels: usize,
    total: &Stats,
    config: &SplitConfig,
) -> Option<Candidate> {
    let used: Vec<usize> = (0..h.len()).filter(|&b| h[b].n > 0).collect();
    if used.len() < 2 {
        return None;
    }
    let mut best: Option<(f64, Vec<usize>, Stats, Stats)> = None;
    if h.len() <= MAX_CAT_TO_ONEHOT + 1 {
        for &b in &used {
            if let Some((gain, right)) = config.gain(total, &h[b], config.lambda) {
                if best.as_ref().is_none_or(|x| gain > x.0) {
                    best = Some((gain, vec![b], h[b], right));
                }
            }
        }
    } else {
        let mut sorted: Vec<usize> = used
            .iter()
            .copied()
            .filter(|&b| h[b].n >= MIN_DATA_PER_GROUP)
            .collect();
        let key = |b: usize| h[b].g / (h[b].h + CAT_SMOOTH);
        sorted.sort_by(|&a, &b| key(a).total_cmp(&key(b)).then(a.cmp(&b)));
        let max_take = MAX_CAT_THRESHOLD.min(sorted.len().div_ceil(2));
        let lambda = config.lambda + CAT_L2;
        for reverse in [false, true] {
            let mut acc = Stats::default();
            let mut taken = Vec::new();
            for i in 0..sorted.len().min(max_take) {
                let b = if reverse {
                    sorted[sorted.len() - 1 - i]
                } else {
                    sorted[i]
                };
                acc.add(&h[b]);
                taken.push(b);
                if let Some((gain, right)) = config.gain(total, &acc, lambda) {
                    if best.as_ref().is_none_or(|x| gain > x.0) {
                        best = Some((gain, taken.clone(), acc, right));
                    }
                }
            }
        }
    }
    let (gain, bins, left, right) = best?;
    let mut left_bins = [0u64; 4];
    for b in bins {
        left_bins[b / 64] |= 1 << (b % 64);
    }
    Some(Candidate {
        gain,
        feature: f,
        rule: SplitRule::Levels {
            left_bins,
            levels: levels as u32,
        },
        left,
        right,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> SplitConfig {
        SplitConfig {
            lambda: 0.0,
            min_data_in_leaf: 1,
            min_sum_hessian: 0.0,
            min_gain: 0.0,
        }
    }

    fn stats(g: f64, n: u32) -> Stats {
        Stats { g, h: n as f64, n }
    }

    #[test]
    fn threshold_search_finds_the_sign_change_and_sends_missing_where_it_fits() {
        // bins: missing, 1, 2, 3 ; gradients negative in bin 1 and missing, positive after
        let h = [stats(-4.0, 4), stats(-3.0, 3), stats(2.0, 2), stats(5.0, 5)];
        let mapper = BinMapper::Numeric {
            bounds: vec![1.5, 2.5],
        };
        let total = h.iter().fold(Stats::default(), |mut a, s| {
            a.add(s);
            a
        });
        let c = best_threshold(0, &h, &mapper, &total, &config()).unwrap();
        assert_eq!(
            c.rule,
            SplitRule::Threshold {
                threshold: 1.5,
                bin: 1,
                missing_left: true
            }
        );
        assert_eq!((c.left.n, c.right.n), (7, 7));
        // gain = 49/7 + 49/7 - 0
        assert!((c.gain - 14.0).abs() < 1e-12);
    }

    #[test]
    fn level_search_groups_levels_by_gradient() {
        // 6 levels + missing, so the sorted scan is used; min group 100 rows
        let g = [0.0, -50.0, 40.0, -60.0, 45.0, -55.0, 50.0];
        let h: Vec<Stats> = g.iter().map(|&g| stats(g, 100)).collect();
        let total = h.iter().fold(Stats::default(), |mut a, s| {
            a.add(s);
            a
        });
        let c = best_levels(0, &h, 6, &total, &config()).unwrap();
        let SplitRule::Levels { left_bins, .. } = c.rule else {
            panic!()
        };
        assert_eq!(
            left_bins[0], 0b0010_1010,
            "levels 0, 2 and 4 (bins 1, 3, 5) go left"
        );
    }

    #[test]
    fn min_data_in_leaf_is_respected() {
        let h = [stats(0.0, 0), stats(-3.0, 3), stats(2.0, 2)];
        let mapper = BinMapper::Numeric { bounds: vec![1.5] };
        let total = Stats {
            g: -1.0,
            h: 5.0,
            n: 5,
        };
        let strict = SplitConfig {
            min_data_in_leaf: 3,
            ..config()
        };
        assert!(best_threshold(0, &h, &mapper, &total, &strict).is_none());
        assert!(best_threshold(0, &h, &mapper, &total, &config()).is_some());
    }
}
