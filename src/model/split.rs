//! The search for the best split of a leaf over its histogram ([`super::histogram`]):
//! thresholds for numeric features, one-vs-rest or sorted groups of levels for
//! categorical ones, in LightGBM's manner.

use rayon::prelude::*;

use super::binning::BinMapper;
use super::histogram::{Layout, Scale, Stats, Sums};
use super::tree::SplitRule;

/// From this many bins in a histogram, the split search runs in parallel over features;
/// below, it is over before a sleeping thread would wake up.
const PARALLEL_SEARCH: usize = 32 * 1024;

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
    pub left: Sums,
    /// Sums of the rows going right.
    pub right: Sums,
}

#[inline]
fn score(s: &Stats, lambda: f64) -> f64 {
    s.g * s.g / (s.h + lambda)
}

/// The leaf being searched: its sums, their scale, and the constraints.
struct Search<'a> {
    total: Sums,
    scale: &'a Scale,
    config: &'a SplitConfig,
    /// `score` of the leaf with the penalty of numeric splits.
    parent: f64,
}

impl<'a> Search<'a> {
    fn new(total: &Sums, scale: &'a Scale, config: &'a SplitConfig) -> Search<'a> {
        Search {
            total: *total,
            scale,
            config,
            parent: score(&scale.stats(total), config.lambda),
        }
    }

    #[inline]
    fn admissible(&self, s: &Stats) -> bool {
        s.n >= self.config.min_data_in_leaf && s.h >= self.config.min_sum_hessian
    }

    /// Gain of splitting the leaf into `left` and the rest, with penalty `lambda` and the
    /// leaf's score `parent` under it; minus infinity when a side is too small or the
    /// gain is not finite.
    fn gain(&self, left: &Sums, lambda: f64, parent: f64) -> f64 {
        let l = self.scale.stats(left);
        let r = self.scale.stats(&self.total.minus(left));
        if !self.admissible(&l) || !self.admissible(&r) {
            return f64::NEG_INFINITY;
        }
        let gain = score(&l, lambda) + score(&r, lambda) - parent;
        if gain.is_finite() {
            gain
        } else {
            f64::NEG_INFINITY
        }
    }
}

/// The best split over the active features, ties to the lower feature; `None` when no
/// split gains anything. `total` is the leaf's sums, `scale` their fixed point.
pub fn best_split(
    hist: &[Sums],
    layout: &Layout,
    mappers: &[BinMapper],
    total: &Sums,
    scale: &Scale,
    active: &[bool],
    config: &SplitConfig,
) -> Option<Candidate> {
    let leaf = Search::new(total, scale, config);
    let search = |f: usize| -> Option<Candidate> {
        if !active[f] {
            return None;
        }
        let h = &hist[layout.offsets[f]..layout.offsets[f + 1]];
        match &mappers[f] {
            BinMapper::Numeric { .. } => best_threshold(f, h, &mappers[f], &leaf),
            BinMapper::Categorical { levels } => best_levels(f, h, *levels, &leaf),
        }
    };
    let better = |best: Option<Candidate>, c: Option<Candidate>| match (best, c) {
        (Some(b), Some(c)) if c.gain > b.gain => Some(c),
        (None, c) => c,
        (b, _) => b,
    };
    if hist.len() >= PARALLEL_SEARCH {
        let per_feature: Vec<Option<Candidate>> =
            (0..mappers.len()).into_par_iter().map(search).collect();
        per_feature.into_iter().fold(None, better)
    } else {
        (0..mappers.len()).map(search).fold(None, better)
    }
}

/// Best threshold of a numeric feature, trying missing values on either side.
fn best_threshold(f: usize, h: &[Sums], mapper: &BinMapper, leaf: &Search) -> Option<Candidate> {
    let (missing, _) = h.split_first()?;
    let scale = leaf.scale;
    let min_n = leaf.config.min_data_in_leaf;
    let (lambda, parent) = (leaf.config.lambda, leaf.parent);
    let min_h = leaf.config.min_sum_hessian;
    let total_n = scale.count(&leaf.total);
    let (total_g, total_h) = scale.gh(&leaf.total);
    let missing_n = scale.count(missing);
    // the first best (threshold bin, missing left, left sums), gaining more than
    // `min_gain`: its children's scores sum to more than `bar`, which then rises to them
    let mut bar = leaf.config.min_gain + parent;
    let mut best: Option<(usize, bool, Sums)> = None;
    // Whether left sums `left` (of `n` rows) beat the best so far, when `allowed`. The
    // scores of the two sides are compared as a fraction, without a division, and the
    // checks are combined without branches, whose outcome would be anyone's guess.
    let mut consider = |left: &Sums, n: u32, t: usize, missing_left: bool, allowed: bool| {
        let (g, h) = scale.gh(left);
        let (rg, rh) = (total_g - g, total_h - h);
        let (dl, dr) = (h + lambda, rh + lambda);
        let (num, den) = (g * g * dr + rg * rg * dl, dl * dr);
        let admissible = (n >= min_n)
            & (total_n.saturating_sub(n) >= min_n)
            & (h >= min_h)
            & (rh >= min_h)
            & (den > 0.0);
        if allowed & admissible & (num > bar * den) {
            (bar, best) = (num / den, Some((t, missing_left, *left)));
        }
    };
    let mut acc = Sums::default();
    for (t, s) in h.iter().enumerate().skip(1) {
        acc.add(s);
        // too few rows on the right, now and from here on
        let n = scale.count(&acc);
        if total_n.saturating_sub(n) < min_n {
            break;
        }
        // missing right; the last threshold only splits missing from the rest (an empty
        // bin repeats the split before it, which keeps the tie)
        let last = t == h.len() - 1;
        consider(&acc, n, t, false, !last || missing_n > 0);
        if missing_n > 0 {
            let mut left = acc;
            left.add(missing);
            consider(&left, n.saturating_add(missing_n), t, true, !last);
        }
    }
    let (t, missing_left, left) = best?;
    let gain = bar - parent;
    if !(gain > leaf.config.min_gain && gain.is_finite()) {
        return None;
    }
    let right = leaf.total.minus(&left);
    // With no missing value in training, unseen missing values follow the majority.
    let missing_left = if missing_n > 0 {
        missing_left
    } else {
        scale.count(&left) >= scale.count(&right)
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
fn best_levels(f: usize, h: &[Sums], levels: usize, leaf: &Search) -> Option<Candidate> {
    let scale = leaf.scale;
    let stats: Vec<Stats> = h.iter().map(|s| scale.stats(s)).collect();
    let used: Vec<usize> = (0..h.len()).filter(|&b| stats[b].n > 0).collect();
    if used.len() < 2 {
        return None;
    }
    let min_gain = leaf.config.min_gain;
    let mut best: Option<(f64, Vec<usize>, Sums)> = None;
    if h.len() <= MAX_CAT_TO_ONEHOT + 1 {
        for &b in &used {
            let gain = leaf.gain(&h[b], leaf.config.lambda, leaf.parent);
            if gain > min_gain && best.as_ref().is_none_or(|x| gain > x.0) {
                best = Some((gain, vec![b], h[b]));
            }
        }
    } else {
        let mut sorted: Vec<usize> = used
            .iter()
            .copied()
            .filter(|&b| stats[b].n >= MIN_DATA_PER_GROUP)
            .collect();
        let key = |b: usize| stats[b].g / (stats[b].h + CAT_SMOOTH);
        sorted.sort_by(|&a, &b| key(a).total_cmp(&key(b)).then(a.cmp(&b)));
        let max_take = MAX_CAT_THRESHOLD.min(sorted.len().div_ceil(2));
        let lambda = leaf.config.lambda + CAT_L2;
        let parent = score(&scale.stats(&leaf.total), lambda);
        for reverse in [false, true] {
            let mut acc = Sums::default();
            let mut taken = Vec::new();
            for i in 0..sorted.len().min(max_take) {
                let b = if reverse {
                    sorted[sorted.len() - 1 - i]
                } else {
                    sorted[i]
                };
                acc.add(&h[b]);
                taken.push(b);
                let gain = leaf.gain(&acc, lambda, parent);
                if gain > min_gain && best.as_ref().is_none_or(|x| gain > x.0) {
                    best = Some((gain, taken.clone(), acc));
                }
            }
        }
    }
    let (gain, bins, left) = best?;
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
        right: leaf.total.minus(&left),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::histogram::tests::{scale, sums};
    use crate::model::histogram::total;

    fn config() -> SplitConfig {
        SplitConfig {
            lambda: 0.0,
            min_data_in_leaf: 1,
            min_sum_hessian: 0.0,
            min_gain: 0.0,
        }
    }

    #[test]
    fn threshold_search_finds_the_sign_change_and_sends_missing_where_it_fits() {
        // bins: missing, 1, 2, 3 ; gradients negative in bin 1 and missing, positive after
        let h = [sums(-4.0, 4), sums(-3.0, 3), sums(2.0, 2), sums(5.0, 5)];
        let mapper = BinMapper::Numeric {
            bounds: vec![1.5, 2.5],
        };
        let (scale, config) = (scale(), config());
        let leaf = Search::new(&total(&h), &scale, &config);
        let c = best_threshold(0, &h, &mapper, &leaf).unwrap();
        assert_eq!(
            c.rule,
            SplitRule::Threshold {
                threshold: 1.5,
                bin: 1,
                missing_left: true
            }
        );
        assert_eq!((scale.count(&c.left), scale.count(&c.right)), (7, 7));
        // gain = 49/7 + 49/7 - 0
        assert!((c.gain - 14.0).abs() < 1e-9);
    }

    #[test]
    fn level_search_groups_levels_by_gradient() {
        // 6 levels + missing, so the sorted scan is used; min group 100 rows
        let g = [0.0, -50.0, 40.0, -60.0, 45.0, -55.0, 50.0];
        let h: Vec<Sums> = g.iter().map(|&g| sums(g, 100)).collect();
        let (scale, config) = (scale(), config());
        let c = best_levels(0, &h, 6, &Search::new(&total(&h), &scale, &config)).unwrap();
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
        let h = [sums(0.0, 0), sums(-3.0, 3), sums(2.0, 2)];
        let mapper = BinMapper::Numeric { bounds: vec![1.5] };
        let strict = SplitConfig {
            min_data_in_leaf: 3,
            ..config()
        };
        let (scale, config) = (scale(), config());
        let total = total(&h);
        assert!(best_threshold(0, &h, &mapper, &Search::new(&total, &scale, &strict)).is_none());
        assert!(best_threshold(0, &h, &mapper, &Search::new(&total, &scale, &config)).is_some());
    }
}
