//! Quantile binning: each feature becomes at most 255 small integers, so that a tree
//! learner works on histograms instead of sorted values.
//!
//! Bin 0 always holds missing values (and infinities, which trees read as missing). A
//! numeric feature with few distinct values gives each its own bin (thresholds halfway
//! between neighbours); one with many gets equal-frequency bins, where a value frequent
//! enough keeps a bin of its own. A categorical feature's code `c` goes to bin `c + 1`.

use ndarray::ArrayView2;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::design::ColumnType;

/// Most bins per feature, the missing bin included.
pub const MAX_BINS: usize = 255;

/// Rows sampled to place the bin boundaries (LightGBM's `bin_construct_sample_cnt`).
const BIN_SAMPLE_ROWS: usize = 200_000;

/// How one feature's values map to bins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum BinMapper {
    /// Bin `1 + #{bounds < x}` for a value `x`, 0 for missing.
    Numeric {
        /// Sorted upper bounds of the value bins but the last.
        bounds: Vec<f64>,
    },
    /// Bin `code + 1`, 0 for missing or a code out of range.
    Categorical {
        /// Number of levels.
        levels: usize,
    },
}

impl BinMapper {
    /// Fits the boundaries of a numeric feature on its values (`NaN` = missing).
    pub fn numeric(values: &[f64], max_bins: usize) -> BinMapper {
        let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        sorted.sort_unstable_by(|a, b| a.total_cmp(b));
        // distinct values with their counts
        let mut distinct: Vec<(f64, usize)> = Vec::new();
        for v in sorted {
            match distinct.last_mut() {
                Some((last, n)) if *last == v => *n += 1,
                _ => distinct.push((v, 1)),
            }
        }
        let value_bins = max_bins.clamp(2, MAX_BINS) - 1;
        let bounds = if distinct.len() <= value_bins {
            distinct
                .windows(2)
                .map(|w| midpoint(w[0].0, w[1].0))
                .collect()
        } else {
            equal_frequency_bounds(&distinct, value_bins)
        };
        BinMapper::Numeric { bounds }
    }

    /// Number of bins, the missing bin included.
    pub fn n_bins(&self) -> usize {
        match self {
            BinMapper::Numeric { bounds } => bounds.len() + 2,
            BinMapper::Categorical { levels } => levels + 1,
        }
    }

    /// The bin of a value; non-finite values are missing, as [`super::tree::SplitRule`]
    /// reads them.
    #[inline]
    pub fn bin(&self, v: f64) -> u8 {
        if !v.is_finite() {
            return 0;
        }
        match self {
            BinMapper::Numeric { bounds } => (1 + below(bounds, v)) as u8,
            BinMapper::Categorical { levels } => {
                if v >= 0.0 && (v as usize) < *levels && v == v.trunc() {
                    (v as usize + 1) as u8
                } else {
                    0
                }
            }
        }
    }

    /// The largest value that falls in value bin `bin` (`bin >= 1`), for thresholds.
    pub fn upper_bound(&self, bin: usize) -> f64 {
        match self {
            BinMapper::Numeric { bounds } => bounds.get(bin - 1).copied().unwrap_or(f64::INFINITY),
            BinMapper::Categorical { .. } => bin as f64 - 1.0,
        }
    }
}

/// How many of the ascending `bounds` are below `v`: a binary search whose steps are
/// data moves rather than branches (which would be mispredicted half the time).
#[inline]
fn below(bounds: &[f64], v: f64) -> usize {
    let (mut base, mut size) = (0usize, bounds.len());
    while size > 1 {
        let half = size / 2;
        if bounds[base + half] < v {
            base += half;
        }
        size -= half;
    }
    base + bounds.get(base).is_some_and(|&b| b < v) as usize
}

/// A point `m` with `a <= m < b`, halfway when floating point allows.
fn midpoint(a: f64, b: f64) -> f64 {
    let m = a + (b - a) / 2.0;
    if m >= b || !m.is_finite() { a } else { m }
}

/// Boundaries giving about equal counts per bin over `distinct` (value, count) pairs,
/// never splitting a value; after a heavy value the rest is re-spread over the bins left.
fn equal_frequency_bounds(distinct: &[(f64, usize)], value_bins: usize) -> Vec<f64> {
    let total: usize = distinct.iter().map(|d| d.1).sum();
    let mut bounds = Vec::with_capacity(value_bins - 1);
    let mut done = 0usize; // rows in closed bins
    let mut in_bin = 0usize;
    for (i, &(v, n)) in distinct.iter().enumerate() {
        in_bin += n;
        let Some(&(next, _)) = distinct.get(i + 1) else {
            break;
        };
        let bins_left = value_bins - bounds.len();
        if bins_left <= 1 {
            break;
        }
        let target = (total - done) as f64 / bins_left as f64;
        // close the bin when it is full, or when the next value alone would overfill it
        let next_n = distinct[i + 1].1 as f64;
        if in_bin as f64 >= target || (in_bin as f64 + next_n / 2.0) > target {
            bounds.push(midpoint(v, next));
            done += in_bin;
            in_bin = 0;
        }
    }
    bounds
}

/// A feature matrix turned into bins, stored one feature after another.
#[derive(Debug, Clone)]
pub struct BinnedMatrix {
    /// Rows.
    pub rows: usize,
    /// `bins[f]` has the bin of every row for feature `f`.
    pub bins: Vec<Vec<u8>>,
}

impl BinnedMatrix {
    /// The rows `rows`, in that order; `None` when one is out of range.
    pub fn select(&self, rows: &[usize]) -> Option<BinnedMatrix> {
        let bins = self
            .bins
            .par_iter()
            .map(|column| rows.iter().map(|&r| column.get(r).copied()).collect())
            .collect::<Option<Vec<Vec<u8>>>>()?;
        Some(BinnedMatrix {
            rows: rows.len(),
            bins,
        })
    }
}

/// Fits one mapper per column on the rows of `x`; boundaries come from at most 200 000
/// rows drawn with `rng`.
pub fn fit_mappers(
    x: ArrayView2<'_, f64>,
    types: &[ColumnType],
    max_bins: usize,
    rng: &mut ChaCha8Rng,
) -> Vec<BinMapper> {
    let rows = x.nrows();
    let sample: Option<Vec<usize>> = (rows > BIN_SAMPLE_ROWS).then(|| {
        // Bernoulli draw in row order: deterministic and cache friendly.
        let p = BIN_SAMPLE_ROWS as f64 / rows as f64;
        (0..rows).filter(|_| rng.random::<f64>() < p).collect()
    });
    types
        .par_iter()
        .enumerate()
        .map(|(j, t)| match *t {
            ColumnType::Categorical { levels } => BinMapper::Categorical {
                levels: levels.min(MAX_BINS - 1),
            },
            ColumnType::Numeric => {
                let column = x.column(j);
                let values: Vec<f64> = match &sample {
                    Some(rows) => rows.iter().map(|&i| column[i]).collect(),
                    None => column.iter().copied().collect(),
                };
                BinMapper::numeric(&values, max_bins)
            }
        })
        .collect()
}

/// Bins every column of `x`.
pub fn bin_matrix(x: ArrayView2<'_, f64>, mappers: &[BinMapper]) -> BinnedMatrix {
    let bins = mappers
        .par_iter()
        .enumerate()
        .map(|(j, mapper)| x.column(j).iter().map(|&v| mapper.bin(v)).collect())
        .collect();
    BinnedMatrix {
        rows: x.nrows(),
        bins,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn few_distinct_values_get_a_bin_each() {
        let m = BinMapper::numeric(&[3.0, 1.0, f64::NAN, 2.0, 2.0], 255);
        assert_eq!(
            m,
            BinMapper::Numeric {
                bounds: vec![1.5, 2.5]
            }
        );
        assert_eq!(m.n_bins(), 4);
        let bins: Vec<u8> = [f64::NAN, 0.0, 1.0, 1.5, 1.6, 2.0, 3.0, 9.0]
            .iter()
            .map(|&v| m.bin(v))
            .collect();
        assert_eq!(bins, [0, 1, 1, 1, 2, 2, 3, 3]);
        // a value is in bin b exactly when it is <= upper_bound(b)
        assert_eq!(m.upper_bound(1), 1.5);
    }

    #[test]
    fn many_values_get_equal_frequency_bins_and_heavy_values_their_own() {
        let mut values: Vec<f64> = (0..1000).map(|i| i as f64).collect();
        values.extend(std::iter::repeat_n(0.0, 1000)); // half the rows are zero
        let m = BinMapper::numeric(&values, 11); // 10 value bins
        let BinMapper::Numeric { bounds } = &m else {
            panic!()
        };
        assert_eq!(bounds[0], 0.5, "zero alone in the first bin");
        assert!(bounds.len() <= 9);
        let mut counts = vec![0usize; m.n_bins()];
        for &v in &values {
            counts[m.bin(v) as usize] += 1;
        }
        assert_eq!(counts[1], 1001);
        for &c in &counts[2..] {
            assert!((100..=140).contains(&c), "{counts:?}");
        }
    }

    #[test]
    fn all_missing_and_constant_columns_bin_safely() {
        let m = BinMapper::numeric(&[f64::NAN, f64::NAN], 255);
        assert_eq!(m.n_bins(), 2);
        assert_eq!((m.bin(f64::NAN), m.bin(7.0)), (0, 1));
        let c = BinMapper::Categorical { levels: 2 };
        assert_eq!(
            [
                c.bin(0.0),
                c.bin(1.0),
                c.bin(2.0),
                c.bin(-1.0),
                c.bin(f64::NAN)
            ],
            [1, 2, 0, 0, 0]
        );
    }
}
