//! Drift since the last run: how subscribers moved between value segments and risk
//! bands from a previous scored table to this one, matched by `subscriber_id`.
//!
//! Risk bands are read from `risk_decile`: `high` is deciles 1–3, `medium` 4–7, `low`
//! 8–10. Subscribers in only one of the two tables are counted as `new` or `gone`.

use std::collections::HashMap;

use arrow::array::RecordBatch;
use serde::{Deserialize, Serialize};

use super::value::ValueSegment;
use crate::features::{column_f64, column_strings};

/// Risk band names, riskiest first.
pub const RISK_BANDS: [&str; 3] = ["high", "medium", "low"];

/// Segment and risk movement between two scored tables.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Movement {
    /// Subscribers in both tables.
    pub matched: usize,
    /// In this table only (new, or active again).
    pub new: usize,
    /// In the previous table only (churned or gone).
    pub gone: usize,
    /// `segments[previous][now]`, in the order top20, middle50, bottom30.
    pub segments: [[u64; 3]; 3],
    /// `risk_bands[previous][now]`, in the order high, medium, low.
    pub risk_bands: [[u64; 3]; 3],
    /// Mean change of `churn_probability` over the matched subscribers.
    pub mean_risk_change: f64,
    /// Matched subscribers who moved to a better segment, and to a worse one.
    pub segment_up: u64,
    pub segment_down: u64,
    /// Matched subscribers whose risk band rose, and fell.
    pub risk_up: u64,
    pub risk_down: u64,
}

/// The risk band of a `risk_decile` (index into [`RISK_BANDS`]); `None` when missing
/// or outside 1–10.
pub fn risk_band(decile: Option<f64>) -> Option<usize> {
    match decile? as i64 {
        1..=3 => Some(0),
        4..=7 => Some(1),
        8..=10 => Some(2),
        _ => None,
    }
}

/// Movement counted row by row: the previous table indexed by id, and the rows of this
/// one added in their order (a sharded run adds its scored rows chunk by chunk, in the
/// canonical order, so that the mean change sums as over the whole table).
pub struct MovementTally {
    index: HashMap<String, usize>,
    previous_rows: usize,
    seg_prev: Vec<String>,
    p_prev: Vec<Option<f64>>,
    d_prev: Vec<Option<f64>>,
    m: Movement,
    change: f64,
    changed: usize,
}

impl MovementTally {
    pub fn new(previous: &RecordBatch) -> MovementTally {
        let ids_prev = column_strings(previous, "subscriber_id");
        let previous_rows = ids_prev.len();
        let index: HashMap<String, usize> = ids_prev
            .into_iter()
            .enumerate()
            .map(|(i, id)| (id, i))
            .collect();
        MovementTally {
            index,
            previous_rows,
            seg_prev: column_strings(previous, "value_segment"),
            p_prev: column_f64(previous, "churn_probability"),
            d_prev: column_f64(previous, "risk_decile"),
            m: Movement::default(),
            change: 0.0,
            changed: 0,
        }
    }

    /// Adds rows of this table (`subscriber_id`, `value_segment`, `churn_probability`,
    /// `risk_decile`).
    pub fn add(&mut self, now: &RecordBatch) {
        let (ids, seg, p, d) = (
            column_strings(now, "subscriber_id"),
            column_strings(now, "value_segment"),
            column_f64(now, "churn_probability"),
            column_f64(now, "risk_decile"),
        );
        let m = &mut self.m;
        for i in 0..ids.len() {
            let Some(&j) = self.index.get(ids[i].as_str()) else {
                m.new += 1;
                continue;
            };
            m.matched += 1;
            if let (Some(a), Some(b)) = (
                ValueSegment::parse(&self.seg_prev[j]),
                ValueSegment::parse(&seg[i]),
            ) {
                m.segments[a.index()][b.index()] += 1;
                m.segment_up += (b.index() < a.index()) as u64;
                m.segment_down += (b.index() > a.index()) as u64;
            }
            if let (Some(a), Some(b)) = (risk_band(self.d_prev[j]), risk_band(d[i])) {
                m.risk_bands[a][b] += 1;
                m.risk_up += (b < a) as u64;
                m.risk_down += (b > a) as u64;
            }
            if let (Some(a), Some(b)) = (self.p_prev[j], p[i]) {
                self.change += b - a;
                self.changed += 1;
            }
        }
    }

    pub fn finish(self) -> Movement {
        let mut m = self.m;
        m.gone = self.previous_rows - m.matched.min(self.previous_rows);
        m.mean_risk_change = if self.changed > 0 {
            self.change / self.changed as f64
        } else {
            0.0
        };
        m
    }
}

impl Movement {
    /// Compares a previous scored table with this one.
    pub fn between(previous: &RecordBatch, now: &RecordBatch) -> Movement {
        let mut tally = MovementTally::new(previous);
        tally.add(now);
        tally.finish()
    }

    /// One line for the run summary.
    pub fn summary(&self) -> String {
        format!(
            "{} in both runs ({} new, {} gone): {} up and {} down a value segment, risk band up for {} and down for {}, mean churn probability {:+.4}",
            self.matched,
            self.new,
            self.gone,
            self.segment_up,
            self.segment_down,
            self.risk_up,
            self.risk_down,
            self.mean_risk_change
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, Float64Array, Int32Array, Int64Array, StringArray};
    use std::sync::Arc;

    fn table(ids: &[i64], seg: &[&str], p: &[f64], decile: &[i32]) -> RecordBatch {
        RecordBatch::try_from_iter([
            (
                "subscriber_id",
                Arc::new(Int64Array::from(ids.to_vec())) as ArrayRef,
            ),
            (
                "value_segment",
                Arc::new(StringArray::from(seg.to_vec())) as ArrayRef,
            ),
            (
                "churn_probability",
                Arc::new(Float64Array::from(p.to_vec())) as ArrayRef,
            ),
            (
                "risk_decile",
                Arc::new(Int32Array::from(decile.to_vec())) as ArrayRef,
            ),
        ])
        .unwrap()
    }

    #[test]
    fn counts_moves_between_segments_and_risk_bands() {
        let before = table(
            &[1, 2, 3],
            &["top20", "middle50", "bottom30"],
            &[0.1, 0.2, 0.3],
            &[9, 5, 1],
        );
        let now = table(
            &[2, 3, 4],
            &["top20", "bottom30", "middle50"],
            &[0.4, 0.2, 0.1],
            &[2, 1, 8],
        );
        let m = Movement::between(&before, &now);
        assert_eq!((m.matched, m.new, m.gone), (2, 1, 1));
        assert_eq!(m.segments[1][0], 1); // middle50 → top20
        assert_eq!(m.segments[2][2], 1);
        assert_eq!((m.segment_up, m.segment_down), (1, 0));
        assert_eq!(m.risk_bands[1][0], 1); // medium → high
        assert_eq!((m.risk_up, m.risk_down), (1, 0));
        assert!((m.mean_risk_change - 0.05).abs() < 1e-12);
    }
}
