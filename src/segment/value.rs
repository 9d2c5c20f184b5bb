//! Value segments by the 80/20/30 rule: subscribers ranked by `profit_90d`, the top 20%
//! are `top20`, the next 50% `middle50`, the last 30% `bottom30`. Shares are exact
//! (rounded to whole subscribers); ties keep input order, and unknown profit (null or
//! NaN, from a missing `monthly_revenue`) ranks last.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, RecordBatch};
use arrow::datatypes::{DataType, Field};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::features::{FeatureTable, column_f64};
use crate::model::{ChurnModel, ChurnParams, ModelError};

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

/// Name of the extra feature the value model sees: the subscriber's current profit
/// percentile (1 = most profitable), which is what persistence uses.
pub const PROFIT_RANK: &str = "profit_rank_pct";

/// How well the segment forecast did, next to persistence ("next period = this period").
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ValueModelReport {
    /// `holdout` (a seeded 20% of the subscriber pairs), or `none` for persistence.
    pub method: String,
    pub note: Option<String>,
    pub rows: usize,
    pub accuracy: f64,
    pub persistence_accuracy: f64,
    /// `confusion[actual][predicted]`, segments in order top20, middle50, bottom30.
    pub confusion: [[u64; 3]; 3],
    pub persistence_confusion: [[u64; 3]; 3],
    /// Accuracy among subscribers with under 180 days of tenure, where forecasting matters most.
    pub newcomer_accuracy: Option<f64>,
    pub newcomer_persistence_accuracy: Option<f64>,
}

impl ValueModelReport {
    pub fn summary(&self) -> String {
        if self.method == "none" {
            return format!(
                "value-segment model: persistence ({})",
                self.note.as_deref().unwrap_or("")
            );
        }
        format!(
            "value-segment model: accuracy {:.3} vs persistence {:.3} on {} held-out subscribers",
            self.accuracy, self.persistence_accuracy, self.rows
        )
    }
}

/// The forecast of next period's value segment: one calibrated one-vs-rest classifier
/// per segment, or persistence when there was no history to learn from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ValueModel {
    Persistence { note: String },
    OneVsRest { models: Vec<ChurnModel> },
}

/// The feature batch with the current profit percentile appended.
fn with_profit_rank(batch: &RecordBatch) -> Result<RecordBatch, ModelError> {
    let profit = column_f64(batch, "profit_90d");
    let order = profit_ranking(&profit);
    let n = order.len().max(1) as f64;
    let mut pct = vec![0.0; order.len()];
    for (rank, &i) in order.iter().enumerate() {
        pct[i] = (rank as f64 + 0.5) / n;
    }
    let mut fields: Vec<Field> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    fields.push(Field::new(PROFIT_RANK, DataType::Float64, false));
    columns.push(Arc::new(Float64Array::from(pct)));
    RecordBatch::try_new(Arc::new(arrow::datatypes::Schema::new(fields)), columns)
        .map_err(|e| ModelError::Data(e.to_string()))
}

impl ValueModel {
    /// A model that forecasts no change.
    pub fn persistence(note: &str) -> (ValueModel, ValueModelReport) {
        let report = ValueModelReport {
            method: "none".into(),
            note: Some(note.into()),
            ..Default::default()
        };
        (ValueModel::Persistence { note: note.into() }, report)
    }

    /// Learns segment moves from the subscribers in both snapshots: features at
    /// `earlier`, target their segment at `current`. Judged on a seeded 20% holdout
    /// against persistence, then refit on all pairs.
    pub fn train(
        earlier: &FeatureTable,
        current: &FeatureTable,
        params: &ChurnParams,
        seed: u64,
    ) -> Result<(ValueModel, ValueModelReport), ModelError> {
        let now = assign(&column_f64(&current.batch, "profit_90d"));
        let before = assign(&column_f64(&earlier.batch, "profit_90d"));
        let position_now: std::collections::HashMap<u32, usize> = current
            .rows
            .iter()
            .enumerate()
            .map(|(i, &r)| (r, i))
            .collect();
        let pairs: Vec<(usize, ValueSegment)> = earlier
            .rows
            .iter()
            .enumerate()
            .filter_map(|(i, r)| position_now.get(r).map(|&j| (i, now[j])))
            .collect();
        let targets: Vec<ValueSegment> = pairs.iter().map(|p| p.1).collect();
        let has_all = ValueSegment::ALL
            .iter()
            .all(|s| targets.iter().filter(|t| *t == s).count() >= 10);
        if pairs.len() < 100 || !has_all {
            return Ok(ValueModel::persistence(
                "too few subscribers in both snapshots to learn segment moves",
            ));
        }
        let batch = with_profit_rank(&earlier.batch)?;
        let rows: Vec<usize> = pairs.iter().map(|p| p.0).collect();
        let pair_batch = crate::train::take_rows(&batch, &rows)?;
        let any_change: Vec<bool> = targets
            .iter()
            .enumerate()
            .map(|(i, t)| *t != before[rows[i]])
            .collect();
        let (fit, test) = crate::train::stratified_split(&any_change, 0.2, seed);
        let fit_model = ValueModel::fit(
            &crate::train::take_rows(&pair_batch, &fit)?,
            &pick(&targets, &fit),
            params,
        )?;
        let test_batch = crate::train::take_rows(&pair_batch, &test)?;
        let predicted = fit_model.predict_with_rank(&test_batch)?;
        let actual = pick(&targets, &test);
        let persisted: Vec<ValueSegment> = test.iter().map(|&i| before[rows[i]]).collect();
        let tenure = column_f64(&test_batch, "tenure_days");
        let newcomer: Vec<bool> = tenure
            .iter()
            .map(|t| t.is_some_and(|t| t < 180.0))
            .collect();
        let report = ValueModelReport {
            method: "holdout".into(),
            note: None,
            rows: test.len(),
            accuracy: accuracy(&predicted, &actual, None),
            persistence_accuracy: accuracy(&persisted, &actual, None),
            confusion: confusion(&predicted, &actual),
            persistence_confusion: confusion(&persisted, &actual),
            newcomer_accuracy: newcomer
                .contains(&true)
                .then(|| accuracy(&predicted, &actual, Some(&newcomer))),
            newcomer_persistence_accuracy: newcomer
                .contains(&true)
                .then(|| accuracy(&persisted, &actual, Some(&newcomer))),
        };
        let model = ValueModel::fit(&pair_batch, &targets, params)?;
        Ok((model, report))
    }

    fn fit(
        batch: &RecordBatch,
        targets: &[ValueSegment],
        params: &ChurnParams,
    ) -> Result<ValueModel, ModelError> {
        // Three one-vs-rest models, fitted side by side: fewer rounds and no baselines
        // keep this cheap.
        let params = ChurnParams {
            n_trees: params.n_trees.min(100),
            baselines: false,
            ..params.clone()
        };
        let checked = params.check()?;
        let models = ValueSegment::ALL
            .par_iter()
            .map(|s| {
                let labels: Vec<bool> = targets.iter().map(|t| t == s).collect();
                ChurnModel::fit(batch, &labels, &checked)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ValueModel::OneVsRest { models })
    }

    fn predict_with_rank(&self, batch: &RecordBatch) -> Result<Vec<ValueSegment>, ModelError> {
        match self {
            ValueModel::Persistence { .. } => Ok(assign(&column_f64(batch, "profit_90d"))),
            ValueModel::OneVsRest { models } => {
                let probs = models
                    .iter()
                    .map(|m| m.predict_proba(batch))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok((0..batch.num_rows())
                    .map(|i| {
                        let best = (0..3)
                            .max_by(|&a, &b| probs[a][i].total_cmp(&probs[b][i]).then(b.cmp(&a)));
                        ValueSegment::ALL[best.unwrap_or(1)]
                    })
                    .collect())
            }
        }
    }

    /// Forecasts next period's segment for every row of a feature batch.
    pub fn predict(&self, batch: &RecordBatch) -> Result<Vec<ValueSegment>, ModelError> {
        self.predict_with_rank(&with_profit_rank(batch)?)
    }
}

fn pick<T: Copy>(values: &[T], positions: &[usize]) -> Vec<T> {
    positions.iter().map(|&p| values[p]).collect()
}

fn accuracy(predicted: &[ValueSegment], actual: &[ValueSegment], mask: Option<&[bool]>) -> f64 {
    let rows: Vec<usize> = (0..actual.len())
        .filter(|&i| mask.is_none_or(|m| m[i]))
        .collect();
    if rows.is_empty() {
        return 0.0;
    }
    rows.iter().filter(|&&i| predicted[i] == actual[i]).count() as f64 / rows.len() as f64
}

fn confusion(predicted: &[ValueSegment], actual: &[ValueSegment]) -> [[u64; 3]; 3] {
    let mut m = [[0u64; 3]; 3];
    for (p, a) in predicted.iter().zip(actual) {
        m[a.index()][p.index()] += 1;
    }
    m
}
