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
}

/// Rows per chunk of a histogram, about: each chunk is summed apart (in parallel when it
/// pays), then the chunks are added up in order. The chunks depend on the number of rows
/// only, never on the threads.
const CHUNK_ROWS: usize = 8192;

/// Below this many row × feature additions a histogram is built on the calling thread;
/// either way gives the same bits.
const PARALLEL_WORK: usize = 64 * 1024;

/// From this many bins in a histogram, the split search runs in parallel over features;
/// below, it is over before a sleeping thread would wake up.
const PARALLEL_SEARCH: usize = 32 * 1024;

/// Rows of a leaf looked up together.
const BATCH: usize = 16;

/// The binned matrix again, for histograms: stored row by row, so that a pass reads one
/// short run per row and adds the row to every feature at once (which keeps the
/// processor busy where one feature alone would wait on its previous addition to the
/// same bin).
///
/// A row lists only the bins that are not its feature's most frequent one, as their
/// index in the histogram; the most frequent bin of each feature is then the leaf's total
/// minus the feature's other bins. This skips about half the additions on typical churn
/// features (zero counts, flags, missing values). Indexes are 16 bits, counted from the
/// first bin of a group of features with at most 2^16 bins (one group, unless there are
/// hundreds of features).
#[derive(Debug, Clone)]
pub struct RowBins {
    /// Group `k` holds features `starts[k]..starts[k + 1]`.
    starts: Vec<usize>,
    /// Most frequent bin of each feature.
    skipped: Vec<u8>,
    /// The rows of each group.
    groups: Vec<Group>,
}

/// The rows of one group of features.
#[derive(Debug, Clone)]
struct Group {
    /// Row `r`'s entries are `entries[ends[r]..ends[r + 1]]`.
    ends: Vec<usize>,
    /// Histogram index, counted from the group's first bin, of each listed bin.
    entries: Vec<u16>,
}

impl RowBins {
    /// Stores the columns `bins` (one per feature, as laid out by `layout`) row by row.
    pub fn new(bins: &[Vec<u8>], rows: usize, layout: &Layout) -> RowBins {
        let n = bins.len();
        let mut starts = vec![0];
        for f in 0..n {
            let first = starts[starts.len() - 1];
            if f > first && layout.offsets[f + 1] - layout.offsets[first] > 1 << 16 {
                starts.push(f);
            }
        }
        if n > 0 {
            starts.push(n);
        }
        let skipped: Vec<u8> = bins
            .par_iter()
            .map(|column| {
                let mut counts = [0usize; 256];
                for &b in column {
                    counts[b as usize] += 1;
                }
                // the most frequent bin, the lowest on a tie
                let top = counts.iter().max().copied().unwrap_or(0);
                counts.iter().position(|&c| c == top).unwrap_or(0) as u8
            })
            .collect();
        let groups = starts
            .windows(2)
            .map(|w| {
                let (first, last) = (w[0], w[1]);
                let mut ends = Vec::with_capacity(rows + 1);
                let mut entries = Vec::new();
                ends.push(0);
                for r in 0..rows {
                    for f in first..last {
                        let b = bins[f][r];
                        if b != skipped[f] {
                            let at = layout.offsets[f] - layout.offsets[first] + b as usize;
                            entries.push(at as u16);
                        }
                    }
                    ends.push(entries.len());
                }
                Group { ends, entries }
            })
            .collect();
        RowBins {
            starts,
            skipped,
            groups,
        }
    }
}

/// Adds one row's gradient and hessian to the bins `at` of a histogram.
#[inline(always)]
fn add_row(h: &mut [Stats], at: &[u16], g: f64, hh: f64) {
    let mut add = |b: u16| {
        if let Some(e) = h.get_mut(b as usize) {
            e.g += g;
            e.h += hh;
            e.n += 1;
        }
    };
    let mut quads = at.chunks_exact(4);
    for q in &mut quads {
        add(q[0]);
        add(q[1]);
        add(q[2]);
        add(q[3]);
    }
    for &b in quads.remainder() {
        add(b);
    }
}

/// Adds rows to the histogram `h` of one group: `rows[i]` with `gh[i]`, or row `start + i`
/// with `gh[i]` when `rows` is `None`.
fn add_rows(h: &mut [Stats], group: &Group, rows: Option<&[u32]>, start: usize, gh: &[(f64, f64)]) {
    let Group { ends, entries } = group;
    match rows {
        Some(rows) => {
            // A leaf's rows lie far apart: look a batch of them up first, so that their
            // cache misses overlap instead of coming one after the other.
            let mut spans = [(0usize, 0usize); BATCH];
            for (batch, gh) in rows.chunks(BATCH).zip(gh.chunks(BATCH)) {
                let mut touch = 0u16;
                for (span, &r) in spans.iter_mut().zip(batch) {
                    let r = r as usize;
                    *span = ends.get(r..r + 2).map_or((0, 0), |e| (e[0], e[1]));
                    touch ^= entries.get(span.0).copied().unwrap_or(0);
                }
                std::hint::black_box(touch);
                for (&(a, b), &(g, hh)) in spans.iter().zip(gh) {
                    if let Some(at) = entries.get(a..b) {
                        add_row(h, at, g, hh);
                    }
                }
            }
        }
        None => {
            let ends = ends.get(start..start + gh.len() + 1).unwrap_or(&[]);
            for (e, &(g, hh)) in ends.windows(2).zip(gh) {
                if let Some(at) = entries.get(e[0]..e[1]) {
                    add_row(h, at, g, hh);
                }
            }
        }
    }
}

/// Builds the histogram of the rows `rows` into `hist`, for at least the features in
/// `active`. `gh[i]` is the (gradient, hessian) of the `i`-th row of `rows` (already
/// gathered), or of row `i` when `rows` is `None` (all rows, in order). `spare` lends
/// and takes back buffers for the chunks. The sums depend on the rows only, never on the
/// threads.
pub fn build(
    hist: &mut [Stats],
    spare: &mut Vec<Vec<Stats>>,
    layout: &Layout,
    bins: &RowBins,
    rows: Option<&[u32]>,
    gh: &[(f64, f64)],
    active: &[bool],
) {
    let m = gh.len();
    let chunks = m.div_ceil(CHUNK_ROWS).max(1);
    let bounds = |c: usize| (c * m / chunks, (c + 1) * m / chunks);
    let mut parts: Vec<Vec<Stats>> = (1..chunks)
        .map(|_| {
            let mut h = spare.pop().unwrap_or_default();
            h.resize(hist.len(), Stats::default());
            h
        })
        .collect();
    let fill = |(c, h): (usize, &mut [Stats])| {
        h.fill(Stats::default());
        let (start, end) = bounds(c);
        for (k, group) in bins.groups.iter().enumerate() {
            let (first, last) = (bins.starts[k], bins.starts[k + 1]);
            if !active[first..last].iter().any(|&a| a) {
                continue;
            }
            let h = &mut h[layout.offsets[first]..layout.offsets[last]];
            let rows = rows.map(|r| &r[start..end]);
            add_rows(h, group, rows, start, &gh[start..end]);
        }
    };
    let mut slices: Vec<&mut [Stats]> = Vec::with_capacity(chunks);
    slices.push(&mut *hist);
    slices.extend(parts.iter_mut().map(|h| &mut h[..]));
    let work = m * active.iter().filter(|&&a| a).count();
    if chunks > 1 && work >= PARALLEL_WORK {
        slices.into_par_iter().enumerate().for_each(fill);
    } else {
        slices.into_iter().enumerate().for_each(fill);
    }
    // the chunks, in order
    for part in &parts {
        for (t, s) in hist.iter_mut().zip(part) {
            t.add(s);
        }
    }
    spare.append(&mut parts);
    // the skipped bins: the total of every row minus the feature's other bins
    let mut total = Stats::default();
    for &(g, h) in gh {
        total.g += g;
        total.h += h;
    }
    total.n = m as u32;
    for (f, w) in layout.offsets.windows(2).enumerate() {
        let bins_f = &mut hist[w[0]..w[1]];
        let skip = bins.skipped[f] as usize;
        let mut others = Stats::default();
        for (b, s) in bins_f.iter().enumerate() {
            if b != skip {
                others.add(s);
            }
        }
        if let Some(s) = bins_f.get_mut(skip) {
            *s = total.minus(&others);
        }
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
    let per_feature: Vec<Option<Candidate>> = if hist.len() >= PARALLEL_SEARCH {
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
    let lambda = config.lambda;
    let parent = score(total, lambda);
    // the gain of a left side; minus infinity when a side is too small or it overflows
    let gain = |left: &Stats| {
        let right = total.minus(left);
        if !config.admissible(left) || !config.admissible(&right) {
            return f64::NEG_INFINITY;
        }
        let gain = score(left, lambda) + score(&right, lambda) - parent;
        if gain.is_finite() {
            gain
        } else {
            f64::NEG_INFINITY
        }
    };
    // the first best (threshold bin, missing left), gaining more than `min_gain`
    let mut best_gain = config.min_gain;
    let mut best: Option<(usize, bool)> = None;
    let mut acc = Stats::default();
    for t in 1..n_bins {
        acc.add(&h[t]);
        // too few rows on the right, now and from here on
        if total.n.saturating_sub(acc.n) < config.min_data_in_leaf {
            break;
        }
        // too few rows on the left, with or without the missing ones
        if acc.n + missing.n < config.min_data_in_leaf {
            continue;
        }
        let last = t == n_bins - 1;
        // missing right; the last threshold only splits missing from the rest
        if !last || missing.n > 0 {
            let g = gain(&acc);
            if g > best_gain {
                (best_gain, best) = (g, Some((t, false)));
            }
        }
        if missing.n > 0 && !last {
            let mut left = acc;
            left.add(&missing);
            let g = gain(&left);
            if g > best_gain {
                (best_gain, best) = (g, Some((t, true)));
            }
        }
    }
    let (t, missing_left) = best?;
    // the winner's sides, summed again in the same order
    let mut left = Stats::default();
    for s in &h[1..=t] {
        left.add(s);
    }
    if missing_left {
        left.add(&missing);
    }
    let right = total.minus(&left);
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
        gain: best_gain,
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

    /// `features` columns of `rows` bins each with `n_bins` bins (mostly bin 1), their
    /// layout, and gradients.
    fn binned(
        rows: usize,
        features: usize,
        n_bins: usize,
    ) -> (Vec<Vec<u8>>, Layout, Vec<(f64, f64)>) {
        let mut state = 7u64;
        let mut next = move || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
            (state >> 33) as usize
        };
        let bins: Vec<Vec<u8>> = (0..features)
            .map(|_| {
                (0..rows)
                    .map(|_| {
                        if next() % 3 == 0 {
                            (next() % n_bins) as u8
                        } else {
                            1
                        }
                    })
                    .collect()
            })
            .collect();
        let mappers = vec![
            BinMapper::Numeric {
                bounds: (0..n_bins - 2).map(|b| b as f64).collect()
            };
            features
        ];
        let gh = (0..rows)
            .map(|_| {
                let p = (next() % 1000) as f64 / 1000.0;
                (p - 0.3, p * (1.0 - p) + 0.01)
            })
            .collect();
        (bins, Layout::new(&mappers), gh)
    }

    /// The histogram of `rows`, feature by feature.
    fn naive(bins: &[Vec<u8>], layout: &Layout, rows: &[u32], gh: &[(f64, f64)]) -> Vec<Stats> {
        let mut hist = vec![Stats::default(); layout.total()];
        for (f, column) in bins.iter().enumerate() {
            for &r in rows {
                let (g, h) = gh[r as usize];
                hist[layout.offsets[f] + column[r as usize] as usize].add(&Stats { g, h, n: 1 });
            }
        }
        hist
    }

    #[test]
    fn histograms_match_a_plain_count_and_do_not_depend_on_threads() {
        // 300 features of 255 bins need two groups of 16-bit indexes; 20 000 rows, three
        // chunks
        let (bins, layout, gh) = binned(20_000, 300, 255);
        let row_bins = RowBins::new(&bins, 20_000, &layout);
        assert_eq!(row_bins.groups.len(), 2);
        let active = vec![true; 300];
        let leaf: Vec<u32> = (0..20_000).filter(|r| r % 7 != 3).collect();
        let gathered: Vec<(f64, f64)> = leaf.iter().map(|&r| gh[r as usize]).collect();
        let all: Vec<u32> = (0..20_000).collect();
        for (rows, grads, expected) in [
            (None, &gh, naive(&bins, &layout, &all, &gh)),
            (
                Some(&leaf[..]),
                &gathered,
                naive(&bins, &layout, &leaf, &gh),
            ),
        ] {
            let build_on = |threads: usize| {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                let mut hist = vec![Stats::default(); layout.total()];
                pool.install(|| {
                    build(
                        &mut hist,
                        &mut Vec::new(),
                        &layout,
                        &row_bins,
                        rows,
                        grads,
                        &active,
                    )
                });
                hist
            };
            let hist = build_on(1);
            assert_eq!(hist, build_on(4), "same bits on 1 and 4 threads");
            for (got, want) in hist.iter().zip(&expected) {
                assert_eq!(got.n, want.n);
                assert!((got.g - want.g).abs() < 1e-9 && (got.h - want.h).abs() < 1e-9);
            }
        }
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
