//! How good churn probabilities are: ranking (ROC AUC, PR AUC, top-decile lift) and
//! calibration (Brier score, expected calibration error, log-loss).
//!
//! Every measure is exact and tie-aware: rows with equal scores count as one threshold
//! (ROC AUC gives a tied pair ½; the top decile takes its share of a tied group that
//! straddles the cut), so the result does not depend on row order. A measure that is
//! undefined (no rows; no churners; no non-churners for ROC AUC) is `NaN`, written as
//! `null` in JSON and read back as `NaN`.

use serde::{Deserialize, Serialize};

use super::error::ModelError;

/// The churn model's metrics on one set of rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChurnMetrics {
    /// Rows evaluated.
    pub rows: usize,
    /// Churners among them.
    pub positives: usize,
    /// Area under the ROC curve; `NaN` without both classes.
    #[serde(with = "super::serde_nan::scalar")]
    pub roc_auc: f64,
    /// Area under the precision-recall curve, as average precision; `NaN` without churners.
    #[serde(with = "super::serde_nan::scalar")]
    pub pr_auc: f64,
    /// Churn rate in the riskiest 10% of rows over the overall churn rate; `NaN` without
    /// churners.
    #[serde(with = "super::serde_nan::scalar")]
    pub lift_top_decile: f64,
    /// Mean squared error of the probabilities; `NaN` without rows.
    #[serde(with = "super::serde_nan::scalar")]
    pub brier: f64,
    /// Expected calibration error over 10 equal-width probability bins; `NaN` without rows.
    #[serde(with = "super::serde_nan::scalar")]
    pub ece: f64,
    /// Mean log-loss, probabilities clipped to [1e-15, 1 − 1e-15]; `NaN` without rows.
    #[serde(with = "super::serde_nan::scalar")]
    pub log_loss: f64,
}

impl ChurnMetrics {
    /// Evaluates probabilities against labels. Never fails: when the lengths differ or a
    /// value is not a probability in [0, 1] every measure is `NaN` (use
    /// [`ChurnMetrics::try_evaluate`] to be told why).
    pub fn evaluate(probs: &[f64], labels: &[bool]) -> ChurnMetrics {
        Self::try_evaluate(probs, labels).unwrap_or_else(|_| ChurnMetrics {
            rows: labels.len(),
            positives: labels.iter().filter(|&&l| l).count(),
            roc_auc: f64::NAN,
            pr_auc: f64::NAN,
            lift_top_decile: f64::NAN,
            brier: f64::NAN,
            ece: f64::NAN,
            log_loss: f64::NAN,
        })
    }

    /// Evaluates probabilities against labels; refuses lengths that differ and values
    /// outside [0, 1].
    pub fn try_evaluate(probs: &[f64], labels: &[bool]) -> Result<ChurnMetrics, ModelError> {
        if probs.len() != labels.len() {
            return Err(ModelError::MetricsLength {
                probs: probs.len(),
                labels: labels.len(),
            });
        }
        if let Some((row, &value)) = probs
            .iter()
            .enumerate()
            .find(|(_, p)| !(0.0..=1.0).contains(*p))
        {
            return Err(ModelError::NotAProbability { row, value });
        }
        let nan = f64::NAN;
        Ok(ChurnMetrics {
            rows: probs.len(),
            positives: labels.iter().filter(|&&l| l).count(),
            roc_auc: roc_auc(probs, labels).unwrap_or(nan),
            pr_auc: average_precision(probs, labels).unwrap_or(nan),
            lift_top_decile: lift(probs, labels, 0.1).unwrap_or(nan),
            brier: brier(probs, labels).unwrap_or(nan),
            ece: expected_calibration_error(probs, labels, 10).unwrap_or(nan),
            log_loss: log_loss(probs, labels).unwrap_or(nan),
        })
    }
}

/// Row indices sorted by descending score, then the end of each group of equal scores.
fn ranked_groups(scores: &[f64]) -> (Vec<usize>, Vec<usize>) {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut ends = Vec::new();
    for k in 1..=order.len() {
        if k == order.len() || scores[order[k]] != scores[order[k - 1]] {
            ends.push(k);
        }
    }
    (order, ends)
}

/// ROC AUC of any scores (higher = more likely to churn): the probability that a random
/// churner scores above a random non-churner, ties counting ½.
pub fn roc_auc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    let positives = labels.iter().filter(|&&l| l).count();
    let negatives = labels.len().checked_sub(positives)?;
    if positives == 0 || negatives == 0 || scores.len() != labels.len() {
        return None;
    }
    let (order, ends) = ranked_groups(scores);
    // walk from the top; each churner beats the non-churners below it, ties half
    let mut negatives_above = 0usize;
    let mut wins = 0.0f64;
    let mut start = 0;
    for end in ends {
        let group = &order[start..end];
        let pos = group.iter().filter(|&&i| labels[i]).count();
        let neg = group.len() - pos;
        wins += pos as f64 * ((negatives - negatives_above - neg) as f64 + neg as f64 / 2.0);
        negatives_above += neg;
        start = end;
    }
    Some(wins / (positives as f64 * negatives as f64))
}

/// Average precision: Σ over thresholds of (recall gained) × precision.
pub fn average_precision(scores: &[f64], labels: &[bool]) -> Option<f64> {
    let positives = labels.iter().filter(|&&l| l).count();
    if positives == 0 || scores.len() != labels.len() {
        return None;
    }
    let (order, ends) = ranked_groups(scores);
    let (mut tp, mut seen, mut ap) = (0usize, 0usize, 0.0);
    let mut start = 0;
    for end in ends {
        let pos = order[start..end].iter().filter(|&&i| labels[i]).count();
        tp += pos;
        seen += end - start;
        if pos > 0 {
            ap += (pos as f64 / positives as f64) * (tp as f64 / seen as f64);
        }
        start = end;
    }
    Some(ap)
}

/// Churn rate among the top `fraction` of rows by score (at least one row, rounded up)
/// over the overall rate; a tied group straddling the cut contributes pro rata.
pub fn lift(scores: &[f64], labels: &[bool], fraction: f64) -> Option<f64> {
    let n = scores.len();
    let positives = labels.iter().filter(|&&l| l).count();
    if positives == 0 || n != labels.len() {
        return None;
    }
    // ceil(n × fraction) without floating-point surprises for tenths
    let k = (((n as f64 * fraction) - 1e-9).ceil() as usize).clamp(1, n);
    let (order, ends) = ranked_groups(scores);
    let mut taken = 0usize;
    let mut hits = 0.0;
    let mut start = 0;
    for end in ends {
        if taken >= k {
            break;
        }
        let pos = order[start..end].iter().filter(|&&i| labels[i]).count();
        let size = end - start;
        let share = (k - taken).min(size);
        hits += pos as f64 * share as f64 / size as f64;
        taken += share;
        start = end;
    }
    Some((hits / k as f64) / (positives as f64 / n as f64))
}

/// Mean of (p − y)².
pub fn brier(probs: &[f64], labels: &[bool]) -> Option<f64> {
    if probs.is_empty() {
        return None;
    }
    let sum: f64 = probs
        .iter()
        .zip(labels)
        .map(|(&p, &l)| (p - if l { 1.0 } else { 0.0 }).powi(2))
        .sum();
    Some(sum / probs.len() as f64)
}

/// Expected calibration error: over `bins` equal-width probability bins, the row-weighted
/// mean of |mean probability − churn rate|.
pub fn expected_calibration_error(probs: &[f64], labels: &[bool], bins: usize) -> Option<f64> {
    if probs.is_empty() || bins == 0 {
        return None;
    }
    let mut sum_p = vec![0.0; bins];
    let mut sum_y = vec![0.0; bins];
    let mut count = vec![0usize; bins];
    for (&p, &l) in probs.iter().zip(labels) {
        let b = ((p * bins as f64).floor().max(0.0) as usize).min(bins - 1);
        sum_p[b] += p;
        sum_y[b] += if l { 1.0 } else { 0.0 };
        count[b] += 1;
    }
    let n = probs.len() as f64;
    Some(
        (0..bins)
            .filter(|&b| count[b] > 0)
            .map(|b| (sum_p[b] - sum_y[b]).abs() / n)
            .sum(),
    )
}

/// Mean log-loss with probabilities clipped to [1e-15, 1 − 1e-15].
pub fn log_loss(probs: &[f64], labels: &[bool]) -> Option<f64> {
    if probs.is_empty() {
        return None;
    }
    let sum: f64 = probs
        .iter()
        .zip(labels)
        .map(|(&p, &l)| {
            let p = p.clamp(1e-15, 1.0 - 1e-15);
            -if l { p.ln() } else { (1.0 - p).ln() }
        })
        .sum();
    Some(sum / probs.len() as f64)
}

/// Risk deciles: 1 for the riskiest 10%, ties in input order.
pub fn risk_deciles(probs: &[f64]) -> Vec<i32> {
    let mut order: Vec<usize> = (0..probs.len()).collect();
    order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
    let n = probs.len().max(1);
    let mut deciles = vec![10; probs.len()];
    for (rank, &i) in order.iter().enumerate() {
        deciles[i] = (rank * 10 / n) as i32 + 1;
    }
    deciles
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: impl Into<Option<f64>>, b: f64) -> bool {
        a.into().is_some_and(|a| (a - b).abs() < 1e-12)
    }

    #[test]
    fn hand_computed_example() {
        let p = [0.1, 0.4, 0.35, 0.8];
        let y = [false, false, true, true];
        let m = ChurnMetrics::evaluate(&p, &y);
        assert_eq!((m.rows, m.positives), (4, 2));
        assert!(close(m.roc_auc, 0.75)); // 3 of 4 pairs ordered
        assert!(close(m.pr_auc, 0.5 * 1.0 + 0.5 * (2.0 / 3.0)));
        assert!(close(m.lift_top_decile, 2.0)); // top row churns, base rate ½
        assert!(close(m.brier, (0.01 + 0.16 + 0.4225 + 0.04) / 4.0));
        assert!(close(m.ece, (0.1 + 0.4 + 0.65 + 0.2) / 4.0)); // one row per bin
        let ll = -(0.9f64.ln() + 0.6f64.ln() + 0.35f64.ln() + 0.8f64.ln()) / 4.0;
        assert!(close(m.log_loss, ll));
    }

    #[test]
    fn ties_count_half_and_share_the_cut() {
        let p = [0.2, 0.6, 0.6, 0.9];
        let y = [false, true, false, true];
        assert!(close(roc_auc(&p, &y), 3.5 / 4.0));
        assert!(close(average_precision(&p, &y), 0.5 + 0.5 * 2.0 / 3.0));
        let flat = [0.5; 4];
        let y = [true, false, true, false];
        assert!(close(roc_auc(&flat, &y), 0.5));
        assert!(close(average_precision(&flat, &y), 0.5));
        assert!(close(lift(&flat, &y, 0.1), 1.0));
        // 20 rows: the top decile is 2 rows, 3 tied at the top with 1 churner
        let mut p = vec![0.1; 20];
        let mut y = vec![false; 20];
        p[..3].fill(0.9);
        y[0] = true;
        y[10] = true;
        // 2/3 of a churner in 2 rows = 1/3 rate, base rate 1/10
        assert!(close(lift(&p, &y, 0.1), (2.0 / 3.0 / 2.0) / 0.1));
    }

    #[test]
    fn ece_bins_rows_by_probability() {
        let p = [0.05, 0.05, 0.95, 0.95, 1.0];
        let y = [false, true, true, true, true];
        // bin 0: mean p .05, rate .5, 2 rows; bin 9: mean p (0.95+0.95+1)/3, rate 1, 3 rows
        let expected = 2.0 / 5.0 * 0.45 + 3.0 / 5.0 * (1.0 - 2.9 / 3.0);
        assert!(close(expected_calibration_error(&p, &y, 10), expected));
    }

    #[test]
    fn undefined_measures_are_none_and_bad_input_is_refused() {
        let m = ChurnMetrics::evaluate(&[0.3, 0.4], &[false, false]);
        assert!(m.roc_auc.is_nan() && m.pr_auc.is_nan() && m.lift_top_decile.is_nan());
        assert!(m.brier.is_finite());
        let json = serde_json::to_string(&m).unwrap();
        assert!(json.contains(r#""roc_auc":null"#), "{json}");
        let back: ChurnMetrics = serde_json::from_str(&json).unwrap();
        assert!(back.roc_auc.is_nan() && back.brier == m.brier);
        let empty = ChurnMetrics::evaluate(&[], &[]);
        assert!(empty.brier.is_nan());
        assert!(matches!(
            ChurnMetrics::try_evaluate(&[0.3], &[true, false]),
            Err(ModelError::MetricsLength {
                probs: 1,
                labels: 2
            })
        ));
        assert!(
            ChurnMetrics::evaluate(&[0.3], &[true, false])
                .roc_auc
                .is_nan()
        );
        let err = ChurnMetrics::try_evaluate(&[0.3, f64::NAN], &[true, false]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`probs` has NaN at row 1, expected a probability in [0, 1]"
        );
    }

    #[test]
    fn auc_is_order_independent() {
        let p = [0.3, 0.3, 0.7, 0.1, 0.7, 0.5];
        let y = [true, false, true, false, false, true];
        let a = roc_auc(&p, &y);
        let mut idx: Vec<usize> = (0..6).rev().collect();
        idx.swap(0, 3);
        let p2: Vec<f64> = idx.iter().map(|&i| p[i]).collect();
        let y2: Vec<bool> = idx.iter().map(|&i| y[i]).collect();
        assert_eq!(a, roc_auc(&p2, &y2));
    }
}
