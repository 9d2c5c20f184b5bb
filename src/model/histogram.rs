//! Gradient histograms, the hot path of the boosted trees (the split search that reads
//! them is [`super::split`]).
//!
//! A leaf's histogram holds, for every feature and bin, the sums of the gradients and
//! hessians of its rows and their count, in fixed point ([`Sums`]). Histograms are built
//! row by row ([`RowBins`]), in parallel over chunks of rows; integer sums are exact, so
//! every sum is the same for any order of the rows and any number of threads. A child's
//! histogram is its parent's minus its sibling's, so only the smaller child is ever built
//! from rows.

use rayon::prelude::*;

use super::binning::BinMapper;

/// Sums over the rows of a bin or a leaf, decoded from [`Sums`] for the split search.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Stats {
    /// Sum of gradients.
    pub g: f64,
    /// Sum of hessians.
    pub h: f64,
    /// Rows.
    pub n: u32,
}

/// Sums over the rows of a bin or a leaf, in fixed point (see [`Scale`]): the gradients'
/// sum in `g` (two's complement), and in `hn` the row count above the hessians' sum.
///
/// Integer sums are exact, so they do not depend on the order of the additions (nor on
/// the threads), a histogram minus a child's is exactly the sibling's, and one row adds
/// to a histogram entry with two integer additions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sums {
    g: u64,
    hn: u64,
}

impl Sums {
    /// `self += o`.
    #[inline]
    pub fn add(&mut self, o: &Sums) {
        self.g = self.g.wrapping_add(o.g);
        self.hn = self.hn.wrapping_add(o.hn);
    }

    /// `self - o`.
    #[inline]
    pub fn minus(&self, o: &Sums) -> Sums {
        Sums {
            g: self.g.wrapping_sub(o.g),
            hn: self.hn.wrapping_sub(o.hn),
        }
    }
}

/// Sums of these rows.
pub fn total(rows: &[Sums]) -> Sums {
    let mut t = Sums::default();
    for s in rows {
        t.add(s);
    }
    t
}

/// The fixed point of [`Sums`], chosen so that sums over up to `rows` rows never overflow:
/// the count takes the bits from `shift` up (as many as `rows` needs), the hessians the
/// `shift` bits below, and the gradients all 64 bits of their own. A row's hessian is at
/// most `2^shift / rows` units: about 2^29 levels at 100 000 rows, 2^23 at a million,
/// 2^11 at 67 million (and none near 2^31 rows). Gradients get 2^62 / rows levels. Both
/// stay below 2^50 units (which matters only under 4 096 rows).
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    shift: u32,
    /// Largest units of one row's |gradient| and hessian.
    g_max: u64,
    h_max: u64,
    /// Units per gradient (hessian) of 1, and back.
    g_scale: f64,
    h_scale: f64,
    g_unit: f64,
    h_unit: f64,
}

impl Scale {
    /// The scale for sums over at most `rows` rows of gradients `|g| <= max_g` and
    /// hessians `0 <= h <= max_h` (larger values are clamped).
    pub fn new(rows: usize, max_g: f64, max_h: f64) -> Scale {
        let rows = rows.clamp(1, u32::MAX as usize) as u64;
        let count_bits = u64::BITS - rows.leading_zeros();
        let shift = 63 - count_bits;
        // at most 2^50 units a row, for the rounding of `row`
        let g_max = ((1u64 << 62) / rows).min(1 << 50);
        let h_max = (((1u64 << shift) - 1) / rows).min(1 << 50);
        let per_unit = |units: u64, max: f64| {
            let s = units as f64 / max;
            if s.is_finite() && s > 0.0 { s } else { 1.0 }
        };
        let (g_scale, h_scale) = (per_unit(g_max, max_g), per_unit(h_max, max_h));
        Scale {
            shift,
            g_max,
            h_max,
            g_scale,
            h_scale,
            g_unit: 1.0 / g_scale,
            h_unit: 1.0 / h_scale,
        }
    }

    /// One row's sums, rounded to the nearest unit (ties to even).
    #[inline]
    pub fn row(&self, g: f64, h: f64) -> Sums {
        // Clamped, so that sums cannot overflow, and below 2^50: adding 1.5 * 2^52 then
        // rounds to an integer held in the low bits, which converts without a branch (a
        // NaN clamps to the lower end).
        const ROUND: f64 = 6_755_399_441_055_744.0;
        let (g_max, h_max) = (self.g_max as f64, self.h_max as f64);
        let g = (g * self.g_scale).max(-g_max).min(g_max) + ROUND;
        let h = (h * self.h_scale).max(0.0).min(h_max) + ROUND;
        Sums {
            g: g.to_bits().wrapping_sub(ROUND.to_bits()),
            hn: (1 << self.shift) | h.to_bits().wrapping_sub(ROUND.to_bits()),
        }
    }

    /// Rows in `s`.
    #[inline]
    pub fn count(&self, s: &Sums) -> u32 {
        (s.hn >> self.shift) as u32
    }

    /// The gradient and hessian sums of `s`.
    #[inline]
    pub(crate) fn gh(&self, s: &Sums) -> (f64, f64) {
        // signed conversions are one instruction; the hessian bits are below 2^62
        let h = (s.hn & ((1 << self.shift) - 1)) as i64;
        (s.g as i64 as f64 * self.g_unit, h as f64 * self.h_unit)
    }

    /// `s` decoded.
    #[inline]
    pub fn stats(&self, s: &Sums) -> Stats {
        let (g, h) = self.gh(s);
        Stats {
            g,
            h,
            n: self.count(s),
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

/// Fewest rows in a chunk of a histogram: a leaf's rows are cut into one chunk per thread,
/// each summed apart, then the chunks are added up. Integer sums are the same for any
/// chunks.
const CHUNK_ROWS: usize = 4096;

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
    /// The row of each four entries, so that a pass over consecutive rows is one loop.
    quad_rows: Vec<u32>,
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
                // pads fill rows up to a multiple of 4 entries; they add to the first
                // feature's skipped bin, which is overwritten once the rows are added
                let pad = skipped[first] as u16;
                for r in 0..rows {
                    for f in first..last {
                        let b = bins[f][r];
                        if b != skipped[f] {
                            let at = layout.offsets[f] - layout.offsets[first] + b as usize;
                            entries.push(at as u16);
                        }
                    }
                    while (entries.len() - ends[r]) % 4 != 0 {
                        entries.push(pad);
                    }
                    ends.push(entries.len());
                }
                let mut quad_rows = Vec::with_capacity(entries.len() / 4);
                for (r, w) in ends.windows(2).enumerate() {
                    quad_rows.extend(std::iter::repeat_n(r as u32, (w[1] - w[0]) / 4));
                }
                Group {
                    ends,
                    entries,
                    quad_rows,
                }
            })
            .collect();
        RowBins {
            starts,
            skipped,
            groups,
        }
    }
}

/// Adds one row's sums to the bins `at` of a histogram, four at a time (a row has a
/// multiple of four entries, so that no loop over the rest has to guess its length).
#[inline(always)]
fn add_row(h: &mut [Sums], at: &[u16], v: Sums) {
    let mut add = |b: u16| {
        if let Some(e) = h.get_mut(b as usize) {
            e.add(&v);
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

/// Adds rows to the histogram `h` of one group: the rows `rows` with `gh[row]`, or row
/// `start + i` with `gh[i]` when `rows` is `None`.
fn add_rows(h: &mut [Sums], group: &Group, rows: Option<&[u32]>, start: usize, gh: &[Sums]) {
    let Group {
        ends,
        entries,
        quad_rows,
    } = group;
    match rows {
        Some(rows) => {
            // A leaf's rows lie far apart: look a batch of them up first, so that their
            // cache misses overlap instead of coming one after the other.
            let mut spans = [(0usize, 0usize, Sums::default()); BATCH];
            for batch in rows.chunks(BATCH) {
                let mut touch = 0u16;
                for (span, &r) in spans.iter_mut().zip(batch) {
                    let r = r as usize;
                    let (a, b) = ends.get(r..r + 2).map_or((0, 0), |e| (e[0], e[1]));
                    *span = (a, b, gh.get(r).copied().unwrap_or_default());
                    touch ^= entries.get(a).copied().unwrap_or(0);
                }
                std::hint::black_box(touch);
                for &(a, b, v) in spans.iter().take(batch.len()) {
                    if let Some(at) = entries.get(a..b) {
                        add_row(h, at, v);
                    }
                }
            }
        }
        None => {
            // one loop over the rows' entries, four at a time, without a branch at each
            // row's end (whose place is anyone's guess)
            let (a, b) = match ends.get(start..start + gh.len() + 1) {
                Some([a, .., b]) => (a / 4, b / 4),
                _ => (0, 0),
            };
            let quads = entries.get(4 * a..4 * b).unwrap_or(&[]).chunks_exact(4);
            for (q, &r) in quads.zip(quad_rows.get(a..b).unwrap_or(&[])) {
                if let Some(&v) = gh.get((r as usize).wrapping_sub(start)) {
                    add_row(h, q, v);
                }
            }
        }
    }
}

/// Builds the histogram of the rows `rows` (all rows, in order, when `None`) into `hist`,
/// for at least the features in `active`. `gh[r]` is the sums of row `r`; `total` is
/// the sum over the rows. `spare` lends and takes back buffers for the chunks.
#[allow(clippy::too_many_arguments)]
pub fn build(
    hist: &mut [Sums],
    spare: &mut Vec<Vec<Sums>>,
    layout: &Layout,
    bins: &RowBins,
    rows: Option<&[u32]>,
    gh: &[Sums],
    total: &Sums,
    active: &[bool],
) {
    let m = rows.map_or(gh.len(), <[u32]>::len);
    let chunks = rayon::current_num_threads().min(m / CHUNK_ROWS).max(1);
    let bounds = |c: usize| (c * m / chunks, (c + 1) * m / chunks);
    let mut parts: Vec<Vec<Sums>> = (1..chunks)
        .map(|_| {
            let mut h = spare.pop().unwrap_or_default();
            h.resize(hist.len(), Sums::default());
            h
        })
        .collect();
    let fill = |(c, h): (usize, &mut [Sums])| {
        h.fill(Sums::default());
        let (start, end) = bounds(c);
        for (k, group) in bins.groups.iter().enumerate() {
            let (first, last) = (bins.starts[k], bins.starts[k + 1]);
            if !active[first..last].iter().any(|&a| a) {
                continue;
            }
            let h = &mut h[layout.offsets[first]..layout.offsets[last]];
            match rows {
                Some(rows) => add_rows(h, group, Some(&rows[start..end]), start, gh),
                None => add_rows(h, group, None, start, &gh[start..end]),
            }
        }
    };
    let mut slices: Vec<&mut [Sums]> = Vec::with_capacity(chunks);
    slices.push(&mut *hist);
    slices.extend(parts.iter_mut().map(|h| &mut h[..]));
    if chunks > 1 {
        slices.into_par_iter().enumerate().for_each(fill);
    } else {
        slices.into_iter().enumerate().for_each(fill);
    }
    for part in &parts {
        for (t, s) in hist.iter_mut().zip(part) {
            t.add(s);
        }
    }
    spare.append(&mut parts);
    // the skipped bins: the total of every row minus the feature's other bins
    for (f, w) in layout.offsets.windows(2).enumerate() {
        let bins_f = &mut hist[w[0]..w[1]];
        let skip = bins.skipped[f] as usize;
        let mut others = Sums::default();
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
pub fn subtract(parent: &mut [Sums], child: &[Sums], layout: &Layout, active: &[bool]) {
    for (f, w) in layout.offsets.windows(2).enumerate() {
        if active[f] {
            for (p, c) in parent[w[0]..w[1]].iter_mut().zip(&child[w[0]..w[1]]) {
                *p = p.minus(c);
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A scale for up to 1000 rows of gradients and hessians up to 1.
    pub(crate) fn scale() -> Scale {
        Scale::new(1000, 1.0, 1.0)
    }

    /// `n` rows of hessian 1 whose gradients sum to `g`.
    pub(crate) fn sums(g: f64, n: u32) -> Sums {
        let one = scale().row(g / n.max(1) as f64, 1.0);
        (0..n).fold(Sums::default(), |mut a, _| {
            a.add(&one);
            a
        })
    }

    #[test]
    fn sums_round_trip_and_subtract_exactly() {
        let scale = Scale::new(74_076, 1.0, 0.25);
        let rows: Vec<Sums> = (0..1000)
            .map(|i| {
                let p = i as f64 / 1000.0;
                scale.row(p - 0.3, p * (1.0 - p))
            })
            .collect();
        let all = total(&rows);
        let part = total(&rows[..400]);
        assert_eq!(all.minus(&part), total(&rows[400..]));
        let s = scale.stats(&all);
        assert_eq!(s.n, 1000);
        let (g, h) = (0..1000).fold((0.0, 0.0), |(g, h), i| {
            let p = i as f64 / 1000.0;
            (g + p - 0.3, h + p * (1.0 - p))
        });
        assert!((s.g - g).abs() < 1e-9 && (s.h - h).abs() < 1e-6, "{s:?}");
        // the largest hessians of the most rows do not carry into the count
        let big = Scale::new(5, 1.0, 0.25);
        let five = total(&[big.row(1.0, 0.25); 5]);
        assert_eq!(big.count(&five), 5);
        assert!((big.stats(&five).h - 1.25).abs() < 1e-9);
        assert!((big.stats(&five).g - 5.0).abs() < 1e-9);
    }

    /// `features` columns of `rows` bins each with `n_bins` bins (mostly bin 1), their
    /// layout, and each row's sums.
    fn binned(rows: usize, features: usize, n_bins: usize) -> (Vec<Vec<u8>>, Layout, Vec<Sums>) {
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
        let scale = Scale::new(rows, 1.0, 0.5);
        let gh = (0..rows)
            .map(|_| {
                let p = (next() % 1000) as f64 / 1000.0;
                scale.row(p - 0.3, p * (1.0 - p) + 0.01)
            })
            .collect();
        (bins, Layout::new(&mappers), gh)
    }

    /// The histogram of `rows`, feature by feature.
    fn naive(bins: &[Vec<u8>], layout: &Layout, rows: &[u32], gh: &[Sums]) -> Vec<Sums> {
        let mut hist = vec![Sums::default(); layout.total()];
        for (f, column) in bins.iter().enumerate() {
            for &r in rows {
                hist[layout.offsets[f] + column[r as usize] as usize].add(&gh[r as usize]);
            }
        }
        hist
    }

    #[test]
    fn histograms_match_a_plain_count_and_do_not_depend_on_threads() {
        // 300 features of 255 bins need two groups of 16-bit indexes; 20 000 rows, one
        // chunk on one thread and four on four
        let (bins, layout, gh) = binned(20_000, 300, 255);
        let row_bins = RowBins::new(&bins, 20_000, &layout);
        assert_eq!(row_bins.groups.len(), 2);
        let active = vec![true; 300];
        let leaf: Vec<u32> = (0..20_000).filter(|r| r % 7 != 3).collect();
        let gathered: Vec<Sums> = leaf.iter().map(|&r| gh[r as usize]).collect();
        let all: Vec<u32> = (0..20_000).collect();
        for (rows, sums, expected) in [
            (None, total(&gh), naive(&bins, &layout, &all, &gh)),
            (
                Some(&leaf[..]),
                total(&gathered),
                naive(&bins, &layout, &leaf, &gh),
            ),
        ] {
            let build_on = |threads: usize| {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                let mut hist = vec![Sums::default(); layout.total()];
                pool.install(|| {
                    build(
                        &mut hist,
                        &mut Vec::new(),
                        &layout,
                        &row_bins,
                        rows,
                        &gh,
                        &sums,
                        &active,
                    )
                });
                hist
            };
            let hist = build_on(1);
            assert_eq!(hist, build_on(4), "same bits on 1 and 4 threads");
            assert_eq!(hist, expected);
        }
    }
}
