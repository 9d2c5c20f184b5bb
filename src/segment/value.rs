//! Value segments by the 80/20/30 rule: subscribers ranked by `profit_90d`, the top 20%
//! are `top20`, the next 50% `middle50`, the last 30% `bottom30`. Shares are exact
//! (rounded to whole subscribers); ties keep input order, and unknown profit (null or
//! NaN, from a missing `monthly_revenue`) ranks last.

use serde::{Deserialize, Serialize};

/// A value segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueSegment {
    Top20,
    Middle50,
    Bottom30,
}

impl ValueSegment {
    pub const ALL: [ValueSegment; 3] = [
        ValueSegment::Top20,
        ValueSegment::Middle50,
        ValueSegment::Bottom30,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ValueSegment::Top20 => "top20",
            ValueSegment::Middle50 => "middle50",
            ValueSegment::Bottom30 => "bottom30",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn parse(text: &str) -> Option<ValueSegment> {
        ValueSegment::ALL.into_iter().find(|s| s.name() == text)
    }
}

/// Positions of `profit` sorted from most to least profitable; ties keep input order and
/// null/NaN come last.
pub fn profit_ranking(profit: &[Option<f64>]) -> Vec<usize> {
    let key = |i: usize| profit[i].filter(|p| !p.is_nan());
    let mut order: Vec<usize> = (0..profit.len()).collect();
    order.sort_by(|&a, &b| match (key(a), key(b)) {
        (Some(x), Some(y)) => y.total_cmp(&x),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    order
}

/// Segment sizes for `n` subscribers: 20% and 30% rounded, the middle takes the rest.
pub fn segment_sizes(n: usize) -> [usize; 3] {
    let top = (n as f64 * 0.2).round() as usize;
    let bottom = ((n as f64 * 0.3).round() as usize).min(n - top);
    [top, n - top - bottom, bottom]
}

/// The segment of every subscriber by trailing profit.
pub fn assign(profit: &[Option<f64>]) -> Vec<ValueSegment> {
    let order = profit_ranking(profit);
    let [top, middle, _] = segment_sizes(order.len());
    let mut out = vec![ValueSegment::Bottom30; profit.len()];
    for (rank, &i) in order.iter().enumerate() {
        out[i] = if rank < top {
            ValueSegment::Top20
        } else if rank < top + middle {
            ValueSegment::Middle50
        } else {
            ValueSegment::Bottom30
        };
    }
    out
}

/// The whale curve in numbers: how profit is shared across the ranked customers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WhaleCurve {
    pub subscribers: usize,
    pub total_profit: f64,
    /// Profit of `top20` ÷ total profit.
    pub top20_profit_share: f64,
    /// Loss of `bottom30` (minus their profit) ÷ total profit.
    pub bottom30_loss_share: f64,
    /// Share of subscribers with negative profit.
    pub unprofitable_share: f64,
    /// Highest cumulative profit ÷ total profit, and the customer share where it peaks.
    pub peak_profit_share: f64,
    pub peak_customer_share: f64,
    /// Cumulative profit share at 1%, 2%, …, 100% of customers (for plots).
    pub curve: Vec<f64>,
}

impl WhaleCurve {
    /// Computes the curve from trailing profits (unknown profits count as 0).
    pub fn from_profit(profit: &[Option<f64>]) -> WhaleCurve {
        let order = profit_ranking(profit);
        let n = order.len();
        if n == 0 {
            return WhaleCurve::default();
        }
        let value = |i: usize| profit[i].filter(|p| p.is_finite()).unwrap_or(0.0);
        let total: f64 = order.iter().map(|&i| value(i)).sum();
        let [top, middle, _] = segment_sizes(n);
        let top_sum: f64 = order[..top].iter().map(|&i| value(i)).sum();
        let bottom_sum: f64 = order[top + middle..].iter().map(|&i| value(i)).sum();
        let mut cumulative = 0.0;
        let (mut peak, mut peak_at) = (f64::MIN, 0);
        let mut curve = Vec::with_capacity(100);
        for (rank, &i) in order.iter().enumerate() {
            cumulative += value(i);
            if cumulative > peak {
                peak = cumulative;
                peak_at = rank + 1;
            }
            let pct = (rank + 1) * 100 / n;
            while curve.len() < pct {
                curve.push(cumulative);
            }
        }
        let share = |x: f64| if total.abs() > 0.0 { x / total } else { 0.0 };
        WhaleCurve {
            subscribers: n,
            total_profit: total,
            top20_profit_share: share(top_sum),
            bottom30_loss_share: share(-bottom_sum),
            unprofitable_share: order.iter().filter(|&&i| value(i) < 0.0).count() as f64 / n as f64,
            peak_profit_share: share(peak),
            peak_customer_share: peak_at as f64 / n as f64,
            curve: curve.into_iter().map(share).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ties_and_unknowns_are_deterministic() {
        let p = [Some(1.0), None, Some(5.0), Some(1.0), Some(f64::NAN)];
        assert_eq!(profit_ranking(&p), vec![2, 0, 3, 1, 4]);
    }

    #[test]
    fn whale_curve_of_a_textbook_base() {
        // 10 customers: 2 make 80, 5 make 40, 3 lose 20 → total 100.
        let p: Vec<Option<f64>> = [40.0, 40.0, 8.0, 8.0, 8.0, 8.0, 8.0, -5.0, -5.0, -10.0]
            .iter()
            .map(|&v| Some(v))
            .collect();
        let w = WhaleCurve::from_profit(&p);
        assert!((w.top20_profit_share - 0.8).abs() < 1e-12);
        assert!((w.bottom30_loss_share - 0.2).abs() < 1e-12);
        assert!((w.peak_profit_share - 1.2).abs() < 1e-12);
        assert!((w.peak_customer_share - 0.7).abs() < 1e-12);
        assert_eq!(w.curve.len(), 100);
    }

    proptest! {
        #[test]
        fn shares_are_exact_and_ordered_by_profit(profit in prop::collection::vec(prop::option::of(-100.0..100.0f64), 1..300)) {
            let seg = assign(&profit);
            let sizes = segment_sizes(profit.len());
            for s in ValueSegment::ALL {
                prop_assert_eq!(seg.iter().filter(|&&x| x == s).count(), sizes[s.index()]);
            }
            // every known profit in a better segment is >= every known profit in a worse one
            for a in 0..profit.len() {
                for b in 0..profit.len() {
                    if let (Some(pa), Some(pb)) = (profit[a], profit[b]) {
                        if seg[a] < seg[b] { prop_assert!(pa >= pb); }
                    }
                }
            }
        }
    }
}
