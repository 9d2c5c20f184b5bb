//! Small numeric helpers the models share: the logistic function, median and mode.

/// Median of non-NaN values (`NaN` when empty); reorders `values`.
pub fn median(values: &mut [f64]) -> f64 {
    let n = values.len();
    if n == 0 {
        return f64::NAN;
    }
    // the middle value in sorted order, without sorting the rest
    let (below, &mut middle, _) = values.select_nth_unstable_by(n / 2, |a, b| a.total_cmp(b));
    if n % 2 == 1 {
        middle
    } else {
        let lower = below.iter().copied().max_by(|a, b| a.total_cmp(b));
        (lower.unwrap_or(middle) + middle) / 2.0
    }
}

/// Most frequent value (ties to the smaller); sorts `values`.
pub fn mode(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    let mut best = (f64::NAN, 0usize);
    let mut i = 0;
    while i < values.len() {
        let mut k = i;
        while k < values.len() && values[k] == values[i] {
            k += 1;
        }
        if k - i > best.1 {
            best = (values[i], k - i);
        }
        i = k;
    }
    best.0
}

/// The logistic function: a margin (log-odds) as a probability.
#[inline]
pub fn sigmoid(m: f64) -> f64 {
    1.0 / (1.0 + (-m).exp())
}
