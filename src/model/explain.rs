//! Why a subscriber is at risk: per-row reason codes, and the features that matter most
//! overall.
//!
//! A reason is a feature whose contribution pushes this row's churn log-odds *up*, with
//! the row's value and the training-typical value beside it:
//! `complaints_unresolved_90d = 3 (typical 0)`. Contributions come from the model's
//! attribution ([`Attribution`]): Saabas path contributions or TreeSHAP for the boosted
//! trees, coefficient × standardised value for the logistic baseline.

use std::fmt;

use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};

use super::design::FeatureSchema;
use super::display::FeatureValue;

/// How tree contributions are computed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Attribution {
    /// Saabas path contributions: each split's feature gets the change in node output
    /// along the row's path. O(depth) per tree: fast enough for every subscriber nightly.
    #[default]
    Saabas,
    /// Path-dependent TreeSHAP: exact Shapley values, consistent across features, about
    /// `leaves × depth` times slower.
    TreeShap,
}

/// One reason a row is at risk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    /// The feature.
    pub feature: String,
    /// Its value for this row.
    pub value: FeatureValue,
    /// Its typical value in training (median, or most frequent level or flag).
    pub typical: FeatureValue,
    /// How much it raises the churn log-odds.
    pub contribution: f64,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} = {} (typical {})",
            self.feature, self.value, self.typical
        )
    }
}

/// The `k` features raising each row's risk most (positive contributions only, largest
/// first, ties to the earlier feature). `contributions` is `rows × features` (a trailing
/// bias column is ignored); `typical` has one value per feature.
pub fn top_reasons(
    schema: &FeatureSchema,
    x: ArrayView2<'_, f64>,
    contributions: ArrayView2<'_, f64>,
    typical: &[f64],
    k: usize,
) -> Vec<Vec<Reason>> {
    let f = schema.len();
    contributions
        .rows()
        .into_iter()
        .zip(x.rows())
        .map(|(c, row)| {
            let mut up: Vec<(usize, f64)> = c
                .iter()
                .take(f)
                .copied()
                .enumerate()
                .filter(|&(_, v)| v > 0.0 && v.is_finite())
                .collect();
            up.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            up.into_iter()
                .take(k)
                .map(|(j, contribution)| Reason {
                    feature: schema.columns[j].name.clone(),
                    value: schema.display_value(j, row.get(j).copied().unwrap_or(f64::NAN)),
                    typical: schema.display_value(j, typical.get(j).copied().unwrap_or(f64::NAN)),
                    contribution,
                })
                .collect()
        })
        .collect()
}

/// Each feature's share of the total split gain, largest first (ties by name); all zero
/// when the model never split.
pub fn gain_importance(names: &[String], gain: &[f64]) -> Vec<(String, f64)> {
    let total: f64 = gain.iter().filter(|g| g.is_finite()).sum();
    let mut out: Vec<(String, f64)> = names
        .iter()
        .zip(gain)
        .map(|(n, &g)| {
            let share = if total > 0.0 && g.is_finite() {
                g / total
            } else {
                0.0
            };
            (n.clone(), share)
        })
        .collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Int64Array, StringArray};

    use super::*;
    use crate::model::testdata::batch;

    #[test]
    fn reasons_pick_the_largest_upward_pushes_and_read_well() {
        let b = batch(vec![
            (
                "complaints_unresolved_90d",
                Arc::new(Int64Array::from(vec![3, 0, 0, 0, 0, 0])) as ArrayRef,
            ),
            ("plan", Arc::new(StringArray::from(vec!["prepaid"; 6]))),
            (
                "tenure_days",
                Arc::new(Int64Array::from(vec![
                    Some(40),
                    None,
                    Some(900),
                    Some(900),
                    Some(900),
                    Some(900),
                ])),
            ),
        ]);
        let schema = FeatureSchema::fit(&b, &[]).unwrap();
        let x = schema.matrix(&b).unwrap();
        let typical = schema.typical_values(&x);
        let c = ndarray::array![[0.8, -0.1, 0.3, -2.0], [0.0, 0.0, 0.5, -2.0]];
        let reasons = top_reasons(&schema, x.view(), c.view(), &typical, 2);
        let text: Vec<Vec<String>> = reasons
            .iter()
            .map(|r| r.iter().map(|r| r.to_string()).collect())
            .collect();
        assert_eq!(
            text,
            vec![
                vec![
                    "complaints_unresolved_90d = 3 (typical 0)",
                    "tenure_days = 40 (typical 900)"
                ],
                vec!["tenure_days = missing (typical 900)"],
            ]
        );
        assert_eq!(reasons[0][0].contribution, 0.8);
    }

    #[test]
    fn importance_is_shares_sorted_descending() {
        let names = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        let imp = gain_importance(&names, &[1.0, 3.0, 0.0]);
        assert_eq!(
            imp,
            vec![("b".into(), 0.75), ("a".into(), 0.25), ("c".into(), 0.0)]
        );
        let none = gain_importance(&names, &[0.0; 3]);
        assert!(none.iter().all(|(_, s)| *s == 0.0));
    }
}
