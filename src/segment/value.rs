//! Value segments by the 80/20/30 rule: subscribers ranked by `profit_90d`, the top 20%
//! are `top20`, the next 50% `middle50`, the last 30% `bottom30`. Shares are exact
//! (rounded to whole subscribers); ties keep input order here (scoring breaks them by
//! `subscriber_id`), and unknown profit (null or
//! NaN, from a missing `monthly_revenue`) ranks last.
//!
//! Where the ranking rests on little — a constant or nearly constant profit, or a cut
//! that runs through many subscribers of equal profit, so that the tie-break decides
//! their segment — [`ProfitSpread`] (inside the [`WhaleCurve`]) says so, and the
//! forecast of next period's segment ([`super::forecast`]) declines to learn from it.

use serde::{Deserialize, Serialize};

crate::names::named_enum!(
    /// A value segment.
    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "lowercase")]
    ValueSegment { Top20 => "top20", Middle50 => "middle50", Bottom30 => "bottom30" }
);

/// The ranking key of a profit: unknown (null or NaN) is `None`, and `-0.0` is `0.0`
/// (so that the two tie, as in Spark's comparison of doubles).
pub fn profit_key(profit: Option<f64>) -> Option<f64> {
    profit.filter(|p| !p.is_nan()).map(|p| p + 0.0)
}

/// The profit order: the more profitable first (by `f64::total_cmp`), unknown last.
/// Equal keys are left to the tie-break (input position).
pub fn cmp_profit(a: Option<f64>, b: Option<f64>) -> std::cmp::Ordering {
    match (profit_key(a), profit_key(b)) {
        (Some(x), Some(y)) => y.total_cmp(&x),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    }
}

/// Positions of `profit` sorted from most to least profitable; ties keep input order and
/// null/NaN come last.
pub fn profit_ranking(profit: &[Option<f64>]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..profit.len()).collect();
    order.sort_by(|&a, &b| cmp_profit(profit[a], profit[b]));
    order
}

/// The known profits of a population, most profitable first, and how many are unknown:
/// enough to give any subscriber their profit percentile in the population (a
/// population step; the forecast's [`super::forecast::PROFIT_RANK`]).
#[derive(Debug, Clone, Default)]
pub struct ProfitRanks {
    known: Vec<f64>,
    unknown: usize,
}

impl ProfitRanks {
    pub fn of(profit: &[Option<f64>]) -> ProfitRanks {
        let mut known: Vec<f64> = profit.iter().filter_map(|p| profit_key(*p)).collect();
        known.sort_by(|a, b| b.total_cmp(a));
        ProfitRanks {
            unknown: profit.len() - known.len(),
            known,
        }
    }

    /// The mean rank of the subscribers whose profit equals `profit` (ranks from 0, plus
    /// a half), divided by the population: near 0 for the most profitable. Tied profits
    /// share it, so input order never decides it.
    pub fn percentile(&self, profit: Option<f64>) -> f64 {
        let n = self.known.len() + self.unknown;
        let (start, end) = match profit_key(profit) {
            // `==` groups 0.0 with -0.0, as equal keys of the ranking
            Some(p) => (
                self.known.partition_point(|&v| v > p),
                self.known.partition_point(|&v| v >= p),
            ),
            None => (self.known.len(), n),
        };
        Self::percentile_of_span(start, end, n)
    }

    /// The percentile of the subscribers at ranks `start..end` (from 0, most profitable
    /// first) of a population of `n`: for an engine that ranks on its own, with `start`
    /// and `end` those of the subscriber's tie (unknown profits: from the known count to
    /// `n`).
    pub fn percentile_of_span(start: usize, end: usize, n: usize) -> f64 {
        (start + end) as f64 / 2.0 / n as f64
    }
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
    /// Loss of `bottom30` (minus their profit) ÷ total profit: negative when `bottom30`
    /// makes money. Read it through [`WhaleCurve::shares_phrase`], which words the sign.
    pub bottom30_loss_share: f64,
    /// Share of subscribers with negative profit.
    pub unprofitable_share: f64,
    /// Highest cumulative profit ÷ total profit, and the customer share where it peaks.
    pub peak_profit_share: f64,
    pub peak_customer_share: f64,
    /// Cumulative profit share at 1%, 2%, …, 100% of customers (for plots).
    pub curve: Vec<f64>,
    /// Whether the ranking behind the segments rests on real differences in profit.
    #[serde(default)]
    pub spread: ProfitSpread,
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
            spread: ProfitSpread::from_ranking(profit, &order),
        }
    }

    /// [`Self::shares_phrase`], then the spread's warning when the segments rest on
    /// nothing: the words of the score summary and the report.
    pub fn summary(&self) -> String {
        match &self.spread.warning {
            Some(w) => format!("{}; warning: {w}", self.shares_phrase()),
            None => self.shares_phrase(),
        }
    }

    /// The profit shares in words, with the sign as it is: `top20 makes 62% of profit,
    /// bottom30 loses 11%` when the bottom30 lose money, `… bottom30 makes 30%` when they
    /// make it, and the amounts themselves when total profit is not positive (a share of
    /// a loss reads backwards).
    pub fn shares_phrase(&self) -> String {
        let total = self.total_profit;
        if total.is_nan() || total <= 0.0 {
            return format!(
                "total profit {total:.0} (not positive): top20 make {:+.0}, bottom30 {:+.0}",
                self.top20_profit_share * total,
                -self.bottom30_loss_share * total
            );
        }
        let bottom = if self.bottom30_loss_share > 0.0 {
            format!("bottom30 loses {:.0}%", 100.0 * self.bottom30_loss_share)
        } else {
            format!("bottom30 makes {:.0}%", -100.0 * self.bottom30_loss_share)
        };
        format!(
            "top20 makes {:.0}% of profit, {bottom}",
            100.0 * self.top20_profit_share
        )
    }
}

/// A cut running through a tie that holds at least this share of the subscribers means
/// the segments rest on the tie-break (input order), not on profit. 1%: on data whose
/// profits differ (the generated data has none) a tie that large is a plan price or a
/// default value, not a coincidence.
pub const TIE_SHARE_LIMIT: f64 = 0.01;

/// Profit is nearly constant when the middle 90% of subscribers (5th to 95th
/// percentile) lie within this share of the median profit of each other: the segments
/// then separate subscribers by noise.
pub const NEARLY_CONSTANT_SPREAD: f64 = 0.01;

/// Whether the 20/50/30 cut rests on real differences in `profit_90d`: how many
/// distinct values there are, how widely they spread, and how many subscribers share
/// the profit at each cut, where input order decides who falls on which side.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProfitSpread {
    /// Subscribers with a known profit (not null or NaN).
    pub known: usize,
    /// Distinct known profit values.
    pub distinct: usize,
    /// Median of the finite profits, and their 95th minus 5th percentile.
    pub median: Option<f64>,
    pub central_spread: Option<f64>,
    /// Subscribers sharing the profit at the 20% cut (`top20` | `middle50`) and at the
    /// 70% cut (`middle50` | `bottom30`) when the cut runs through a tie (unknown
    /// profits tie with each other); 0 when it does not.
    pub tied_at_top_cut: usize,
    pub tied_at_bottom_cut: usize,
    /// Subscribers in those ties, each counted once: input order, not profit, decides
    /// their segment.
    pub decided_by_tie_break: usize,
    /// Why the segments rest on nothing, when they do: constant or nearly constant
    /// profit, or a tie of at least [`TIE_SHARE_LIMIT`] of the subscribers at a cut.
    pub warning: Option<String>,
}

impl ProfitSpread {
    /// Measures `profit`, ranked by [`profit_ranking`] into `order`.
    fn from_ranking(profit: &[Option<f64>], order: &[usize]) -> ProfitSpread {
        let n = order.len();
        let key = |rank: usize| profit[order[rank]].filter(|p| !p.is_nan());
        let known = order
            .iter()
            .filter(|&&i| profit[i].is_some_and(|p| !p.is_nan()))
            .count();
        let distinct = (0..known)
            .filter(|&r| r == 0 || key(r) != key(r - 1))
            .count();
        // The finite profits, most profitable first (the ranking puts unknowns last).
        let finite: Vec<f64> = (0..known)
            .filter_map(key)
            .filter(|p| p.is_finite())
            .collect();
        let quantile = |q: f64| finite[((1.0 - q) * (finite.len() - 1) as f64).round() as usize];
        let (median, central_spread) = if finite.is_empty() {
            (None, None)
        } else {
            (Some(quantile(0.5)), Some(quantile(0.95) - quantile(0.05)))
        };
        // The run of equal keys around each cut (ranks `start..end`), when the cut splits it.
        let tie_at = |cut: usize| -> Option<(usize, usize)> {
            if cut == 0 || cut >= n || key(cut - 1) != key(cut) {
                return None;
            }
            let start = (0..cut).rev().take_while(|&r| key(r) == key(cut)).last()?;
            let end = (cut..n).take_while(|&r| key(r) == key(cut)).last()? + 1;
            Some((start, end))
        };
        let [top, middle, _] = segment_sizes(n);
        let (upper, lower) = (tie_at(top), tie_at(top + middle));
        let size = |t: Option<(usize, usize)>| t.map_or(0, |(a, b)| b - a);
        let decided = match (upper, lower) {
            (Some(u), Some(l)) if u == l => size(upper),
            _ => size(upper) + size(lower),
        };
        let mut spread = ProfitSpread {
            known,
            distinct,
            median,
            central_spread,
            tied_at_top_cut: size(upper),
            tied_at_bottom_cut: size(lower),
            decided_by_tie_break: decided,
            warning: None,
        };
        let describe = |t: Option<(usize, usize)>, cut: &str| {
            t.map(|(a, b)| {
                let value = key(a).map_or("unknown".to_string(), |v| format!("{v:.2}"));
                format!("{} at profit {value} at the {cut} cut", b - a)
            })
        };
        spread.warning = if n == 0 {
            None
        } else if known == 0 {
            Some("profit_90d is unknown for every subscriber: the 20/50/30 split follows the order ties are broken in, not value".into())
        } else if distinct == 1 && known == n {
            Some(format!(
                "profit_90d is {:.2} for every subscriber: the 20/50/30 split follows the order ties are broken in, not value",
                key(0).unwrap_or(0.0)
            ))
        } else if let (Some(m), Some(s)) = (median, central_spread)
            && s <= NEARLY_CONSTANT_SPREAD * m.abs()
        {
            Some(format!(
                "profit_90d is nearly constant: the middle 90% of subscribers lie within {s:.2} of each other ({:.2}% of the median {m:.2}), so the segments separate them by noise",
                if m != 0.0 { 100.0 * s / m.abs() } else { 0.0 }
            ))
        } else if decided as f64 >= TIE_SHARE_LIMIT * n as f64 {
            let ties: Vec<String> = if upper == lower {
                describe(upper, "20% and the 70%").into_iter().collect()
            } else {
                [describe(upper, "20%"), describe(lower, "70%")]
                    .into_iter()
                    .flatten()
                    .collect()
            };
            Some(format!(
                "{decided} of {n} subscribers ({:.1}%) share the profit at a segment cut ({}): the tie-break, not profit, decides their segment",
                100.0 * decided as f64 / n as f64,
                ties.join("; ")
            ))
        } else {
            None
        };
        spread
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

    fn known(values: &[f64]) -> Vec<Option<f64>> {
        values.iter().map(|&v| Some(v)).collect()
    }

    #[test]
    fn constant_profit_is_called_what_it_is() {
        // Every subscriber pays the same plan: the split follows input order.
        let w = WhaleCurve::from_profit(&known(&[90.0; 50]));
        let s = &w.spread;
        assert_eq!((s.known, s.distinct), (50, 1));
        assert_eq!((s.tied_at_top_cut, s.tied_at_bottom_cut), (50, 50));
        assert_eq!(s.decided_by_tie_break, 50);
        let warning = s.warning.as_deref().unwrap();
        assert!(warning.contains("90.00 for every subscriber"), "{warning}");
        // bottom30 make 30% of a positive profit: they do not "lose -30%"
        assert_eq!(
            w.shares_phrase(),
            "top20 makes 20% of profit, bottom30 makes 30%"
        );
        let unknown = WhaleCurve::from_profit(&[None, None, None]);
        assert!(
            unknown
                .spread
                .warning
                .unwrap()
                .contains("unknown for every")
        );
    }

    #[test]
    fn a_cut_through_a_tie_is_reported_with_its_size() {
        // 100 subscribers: 50 distinct high profits, 40 at 10.0 (ranks 50..90, through
        // the 70% cut), 10 below.
        let mut p: Vec<f64> = (0..50).map(|i| 1000.0 - i as f64).collect();
        p.extend([10.0; 40]);
        p.extend((0..10).map(|i| -(i as f64)));
        let s = WhaleCurve::from_profit(&known(&p)).spread;
        assert_eq!((s.tied_at_top_cut, s.tied_at_bottom_cut), (0, 40));
        assert_eq!(s.decided_by_tie_break, 40);
        let warning = s.warning.unwrap();
        assert!(
            warning.starts_with("40 of 100 subscribers (40.0%)")
                && warning.contains("40 at profit 10.00 at the 70% cut"),
            "{warning}"
        );
        // a tie that no cut runs through decides nothing
        let mut q: Vec<f64> = (0..100).map(|i| 1000.0 - i as f64).collect();
        q[40..50].fill(500.0);
        let s = WhaleCurve::from_profit(&known(&q)).spread;
        assert_eq!((s.decided_by_tie_break, s.warning), (0, None));
    }

    #[test]
    fn nearly_constant_profit_is_flagged_but_a_real_spread_is_not() {
        // 90.00 to 90.49: the middle 90% within 0.45 of each other, 0.5% of the median
        let p: Vec<f64> = (0..50).map(|i| 90.0 + i as f64 / 100.0).collect();
        let s = WhaleCurve::from_profit(&known(&p)).spread;
        assert_eq!(s.decided_by_tie_break, 0);
        assert!(s.warning.unwrap().contains("nearly constant"));
        let base = [40.0, 40.0, 8.0, 8.0, 8.0, 8.0, 8.0, -5.0, -5.0, -10.0];
        let w = WhaleCurve::from_profit(&known(&base));
        assert_eq!(w.spread.warning, None, "{:?}", w.spread);
        assert_eq!(
            w.shares_phrase(),
            "top20 makes 80% of profit, bottom30 loses 20%"
        );
    }

    #[test]
    fn shares_of_a_loss_are_given_as_amounts() {
        let w = WhaleCurve::from_profit(&known(&[10.0, 5.0, -20.0, -30.0, -40.0]));
        assert_eq!(w.total_profit, -75.0);
        assert_eq!(
            w.shares_phrase(),
            "total profit -75 (not positive): top20 make +10, bottom30 -70"
        );
    }

    proptest! {
        #[test]
        fn distinct_profits_are_never_decided_by_the_tie_break(n in 1usize..300, seed in 0u64..1000) {
            let p: Vec<Option<f64>> = (0..n).map(|i| Some(((i as u64 * 7919 + seed) % 100_003) as f64)).collect();
            let s = WhaleCurve::from_profit(&p).spread;
            prop_assert_eq!(s.decided_by_tie_break, 0);
        }

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
                    if let (Some(pa), Some(pb)) = (profit[a], profit[b])
                        && seg[a] < seg[b]
                    {
                        prop_assert!(pa >= pb);
                    }
                }
            }
        }
    }
}
