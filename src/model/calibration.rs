//! Turning boosted-tree margins into probabilities that mean what they say.
//!
//! Two calibrators are fitted on a slice of training rows the trees never saw:
//! - **Platt**: `p = σ(a·margin + b)`, two parameters, by Newton's method on the log-loss
//!   with Platt's smoothed targets; smooth and safe on small slices.
//! - **Isotonic**: pool-adjacent-violators on the margins; the fitted steps are joined by
//!   straight lines between the blocks' mean margins, so the map stays strictly
//!   increasing inside the data's range and preserves the ranking there.
//!
//! [`choose`] compares them by 5-fold cross-validated Brier score on the slice (an
//! isotonic fit always wins on the rows it was fitted on, so the comparison has to be
//! out of fold) and refits the winner on the whole slice. Isotonic is only a candidate
//! when each class has at least 25 rows in the slice.
//!
//! **Never reorders.** Every calibrator is monotone non-decreasing in the margin by
//! construction, so calibration can never invert the model's ranking:
//! - a Platt fit whose slope comes out `<= 0` (the slice's margins look uninformative or
//!   inverted, as happens with a handful of churners) and a slice with fewer than
//!   [`MIN_CLASS_FOR_PLATT`] rows of a class fall back to *shift* calibration: slope 1
//!   (the margins are log-odds of a log-loss fit already) and only the intercept fitted,
//!   so that the mean probability matches the slice; the report's `note` says so;
//! - isotonic block rates are shrunk toward the slice's churn rate by one pseudo-row
//!   (so a block of three newcomers who all churned says about 0.77, not 1.0) and then
//!   made non-decreasing again by a running maximum.
//!
//! Probabilities stay strictly inside (0, 1): every map is clamped to
//! `[P_MIN, 1 − P_MIN]`.

use serde::{Deserialize, Serialize};

use super::metrics::{brier, log_loss};
use super::stats::sigmoid;

/// A monotone map from margin (log-odds) to probability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Calibrator {
    /// `σ(margin)`, used when there is no slice to calibrate on.
    Sigmoid,
    /// `σ(a·margin + b)`.
    Platt {
        /// Slope.
        a: f64,
        /// Intercept.
        b: f64,
    },
    /// Linear interpolation through (`margins[k]`, `probs[k]`), flat outside.
    Isotonic {
        /// Mean margin of each block, strictly increasing.
        margins: Vec<f64>,
        /// Smoothed churn rate of each block, non-decreasing.
        probs: Vec<f64>,
    },
}

/// Smallest probability any calibrator gives (and `1 − P_MIN` the largest).
pub const P_MIN: f64 = 1e-6;
/// Fewest rows of each class for a two-parameter Platt fit; below it only the intercept
/// is fitted.
pub const MIN_CLASS_FOR_PLATT: usize = 5;

/// Folds of the cross-validation in [`choose`] (at most [`MIN_CLASS_FOR_PLATT`], so that
/// every fold holds a row of each class).
const FOLDS: usize = 5;
/// Fewest rows of each class for isotonic to be a candidate.
const MIN_CLASS_FOR_ISOTONIC: usize = 25;

impl Calibrator {
    /// Probability for a margin, in `[P_MIN, 1 − P_MIN]`, non-decreasing in the margin.
    pub fn apply(&self, margin: f64) -> f64 {
        let p = match self {
            Calibrator::Sigmoid => sigmoid(margin),
            Calibrator::Platt { a, b } => sigmoid(a * margin + b),
            Calibrator::Isotonic { margins, probs } => interpolate(margins, probs, margin),
        };
        if p.is_nan() {
            0.5
        } else {
            p.clamp(P_MIN, 1.0 - P_MIN)
        }
    }

    /// The method's name: `sigmoid`, `platt` or `isotonic`.
    pub fn name(&self) -> &'static str {
        match self {
            Calibrator::Sigmoid => "sigmoid",
            Calibrator::Platt { .. } => "platt",
            Calibrator::Isotonic { .. } => "isotonic",
        }
    }
}

fn interpolate(xs: &[f64], ys: &[f64], x: f64) -> f64 {
    let (Some(&first), Some(&last)) = (xs.first(), xs.last()) else {
        return sigmoid(x);
    };
    if x.is_nan() {
        return f64::NAN;
    }
    if x <= first {
        return ys[0];
    }
    if x >= last {
        return ys[ys.len() - 1];
    }
    let k = xs.partition_point(|&v| v <= x); // xs[k-1] <= x < xs[k]
    let (x0, x1, y0, y1) = (xs[k - 1], xs[k], ys[k - 1], ys[k]);
    y0 + (y1 - y0) * (x - x0) / (x1 - x0)
}

/// Fits Platt scaling: minimises the log-loss of `σ(a·m + b)` against the targets
/// (N₊ + 1)/(N₊ + 2) and 1/(N₋ + 2), by Newton's method with backtracking.
pub fn fit_platt(margins: &[f64], labels: &[bool]) -> Calibrator {
    let positives = labels.iter().filter(|&&l| l).count() as f64;
    let negatives = labels.len() as f64 - positives;
    let hi = (positives + 1.0) / (positives + 2.0);
    let lo = 1.0 / (negatives + 2.0);
    let targets: Vec<f64> = labels.iter().map(|&l| if l { hi } else { lo }).collect();
    let objective = |a: f64, b: f64| -> f64 {
        margins
            .iter()
            .zip(&targets)
            .map(|(&m, &t)| {
                let z = a * m + b;
                // t·log(1+e^-z) + (1-t)·log(1+e^z), stably
                let softplus = |v: f64| v.max(0.0) + (-v.abs()).exp().ln_1p();
                t * softplus(-z) + (1.0 - t) * softplus(z)
            })
            .sum()
    };
    let (mut a, mut b) = (1.0, 0.0);
    let mut f = objective(a, b);
    for _ in 0..100 {
        let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (0.0, 0.0, 1e-12, 0.0, 1e-12);
        for (&m, &t) in margins.iter().zip(&targets) {
            let p = sigmoid(a * m + b);
            let w = (p * (1.0 - p)).max(1e-12);
            ga += (p - t) * m;
            gb += p - t;
            haa += w * m * m;
            hab += w * m;
            hbb += w;
        }
        if ga.abs() < 1e-9 && gb.abs() < 1e-9 {
            break;
        }
        let det = haa * hbb - hab * hab;
        let (da, db) = if det > 0.0 && det.is_finite() {
            (-(hbb * ga - hab * gb) / det, -(haa * gb - hab * ga) / det)
        } else {
            (-ga / haa, -gb / hbb)
        };
        let mut step = 1.0;
        let mut improved = false;
        while step >= 1e-10 {
            let (na, nb) = (a + step * da, b + step * db);
            let nf = objective(na, nb);
            if nf.is_finite() && nf < f + 1e-4 * step * (ga * da + gb * db) {
                a = na;
                b = nb;
                f = nf;
                improved = true;
                break;
            }
            step /= 2.0;
        }
        if !improved || (step * da).abs().max((step * db).abs()) < 1e-10 {
            break;
        }
    }
    if a.is_finite() && b.is_finite() {
        Calibrator::Platt { a, b }
    } else {
        Calibrator::Sigmoid
    }
}

/// Shift calibration: `σ(margin + b)` with `b` fitted (Newton's method on the log-loss
/// of Platt's smoothed targets), the slope kept at 1. Monotone whatever the slice says.
pub fn fit_shift(margins: &[f64], labels: &[bool]) -> Calibrator {
    let positives = labels.iter().filter(|&&l| l).count() as f64;
    let negatives = labels.len() as f64 - positives;
    let hi = (positives + 1.0) / (positives + 2.0);
    let lo = 1.0 / (negatives + 2.0);
    let mut b = 0.0;
    for _ in 0..100 {
        let (mut g, mut h) = (0.0, 1e-12);
        for (&m, &l) in margins.iter().zip(labels) {
            let p = sigmoid(m + b);
            g += p - if l { hi } else { lo };
            h += (p * (1.0 - p)).max(1e-12);
        }
        let step = (g / h).clamp(-5.0, 5.0);
        b -= step;
        if step.abs() < 1e-10 {
            break;
        }
    }
    if b.is_finite() {
        Calibrator::Platt { a: 1.0, b }
    } else {
        Calibrator::Sigmoid
    }
}

/// A Platt fit, or the shift fallback when its slope is not positive; with a note
/// saying why when it fell back.
fn fit_platt_monotone(margins: &[f64], labels: &[bool]) -> (Calibrator, Option<String>) {
    match fit_platt(margins, labels) {
        Calibrator::Platt { a, .. } if a <= 0.0 => (
            fit_shift(margins, labels),
            Some(format!(
                "Platt slope {a:.3} <= 0 on {} calibration rows: kept the model's ranking (slope 1), intercept fitted",
                labels.len()
            )),
        ),
        platt => (platt, None),
    }
}

/// Fits isotonic regression of the labels on the margins (pool adjacent violators).
pub fn fit_isotonic(margins: &[f64], labels: &[bool]) -> Calibrator {
    let mut order: Vec<usize> = (0..margins.len())
        .filter(|&i| margins[i].is_finite())
        .collect();
    order.sort_by(|&i, &j| margins[i].total_cmp(&margins[j]));
    // blocks of (sum of margins, sum of labels, rows); equal margins start in one block
    let mut blocks: Vec<(f64, f64, f64)> = Vec::new();
    let mut last_margin = f64::NAN;
    for &i in &order {
        let y = if labels[i] { 1.0 } else { 0.0 };
        match blocks.last_mut() {
            Some(b) if margins[i] == last_margin => {
                b.0 += margins[i];
                b.1 += y;
                b.2 += 1.0;
            }
            _ => blocks.push((margins[i], y, 1.0)),
        }
        last_margin = margins[i];
        // merge while the previous block's rate is not below this one's
        while blocks.len() >= 2 {
            let (cur, prev) = (blocks[blocks.len() - 1], blocks[blocks.len() - 2]);
            if prev.1 / prev.2 >= cur.1 / cur.2 {
                blocks.pop();
                if let Some(p) = blocks.last_mut() {
                    p.0 += cur.0;
                    p.1 += cur.1;
                    p.2 += cur.2;
                }
            } else {
                break;
            }
        }
    }
    if blocks.is_empty() {
        return Calibrator::Sigmoid;
    }
    // one pseudo-row at the slice's churn rate per block, then non-decreasing again
    let rows: f64 = blocks.iter().map(|b| b.2).sum();
    let rate = blocks.iter().map(|b| b.1).sum::<f64>() / rows;
    let mut floor = 0.0f64;
    let probs = blocks
        .iter()
        .map(|b| {
            floor = floor.max((b.1 + rate) / (b.2 + 1.0));
            floor
        })
        .collect();
    Calibrator::Isotonic {
        margins: blocks.iter().map(|b| b.0 / b.2).collect(),
        probs,
    }
}

/// How the calibrator was chosen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationReport {
    /// The method kept.
    pub method: String,
    /// Rows of the calibration slice.
    pub rows: usize,
    /// Churners among them.
    pub positives: usize,
    /// Brier score of `σ(margin)` on the slice.
    pub uncalibrated_brier: Option<f64>,
    /// Out-of-fold Brier score of Platt scaling.
    pub platt_brier: Option<f64>,
    /// Out-of-fold Brier score of isotonic regression, when it was a candidate.
    pub isotonic_brier: Option<f64>,
    /// Out-of-fold log-loss of the method kept.
    pub log_loss: Option<f64>,
    /// Why a safer mapping than the best fit was used, when one was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Fits Platt and isotonic calibrators on a slice, keeps the one with the lower
/// cross-validated Brier score (ties to Platt), refitted on the whole slice.
pub fn choose(margins: &[f64], labels: &[bool], seed: u64) -> (Calibrator, CalibrationReport) {
    let positives = labels.iter().filter(|&&l| l).count();
    let negatives = labels.len() - positives;
    let uncalibrated: Vec<f64> = margins.iter().map(|&m| sigmoid(m)).collect();
    let mut report = CalibrationReport {
        method: Calibrator::Sigmoid.name().to_string(),
        rows: labels.len(),
        positives,
        uncalibrated_brier: brier(&uncalibrated, labels),
        platt_brier: None,
        isotonic_brier: None,
        log_loss: None,
        note: None,
    };
    if positives == 0 || negatives == 0 {
        return (Calibrator::Sigmoid, report);
    }
    if positives.min(negatives) < MIN_CLASS_FOR_PLATT {
        let shift = fit_shift(margins, labels);
        report.method = shift.name().to_string();
        report.note = Some(format!(
            "{} churners and {} non-churners on the calibration slice: too few for a Platt slope, intercept fitted",
            positives, negatives
        ));
        return (shift, report);
    }

    let fold = super::sample::stratified_folds(labels, FOLDS, seed);
    let with_isotonic = positives.min(negatives) >= MIN_CLASS_FOR_ISOTONIC;
    let mut platt_oof = vec![0.0; labels.len()];
    let mut isotonic_oof = vec![0.0; labels.len()];
    for k in 0..FOLDS {
        let (train_m, train_y): (Vec<f64>, Vec<bool>) = (0..labels.len())
            .filter(|&i| fold[i] != k)
            .map(|i| (margins[i], labels[i]))
            .unzip();
        let (platt, _) = fit_platt_monotone(&train_m, &train_y);
        let isotonic = with_isotonic.then(|| fit_isotonic(&train_m, &train_y));
        for i in (0..labels.len()).filter(|&i| fold[i] == k) {
            platt_oof[i] = platt.apply(margins[i]);
            if let Some(iso) = &isotonic {
                isotonic_oof[i] = iso.apply(margins[i]);
            }
        }
    }
    report.platt_brier = brier(&platt_oof, labels);
    if with_isotonic {
        report.isotonic_brier = brier(&isotonic_oof, labels);
    }
    let isotonic_wins = matches!(
        (report.isotonic_brier, report.platt_brier),
        (Some(i), Some(p)) if i < p
    );
    let (chosen, oof) = if isotonic_wins {
        (fit_isotonic(margins, labels), &isotonic_oof)
    } else {
        let (platt, note) = fit_platt_monotone(margins, labels);
        report.note = note;
        (platt, &platt_oof)
    };
    report.method = chosen.name().to_string();
    report.log_loss = log_loss(oof, labels);
    (chosen, report)
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    /// Margins that are twice too confident and shifted: truth is σ(m/2 − 1).
    fn miscalibrated(n: usize, seed: u64) -> (Vec<f64>, Vec<bool>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let margins: Vec<f64> = (0..n).map(|_| rng.random_range(-6.0..6.0)).collect();
        let labels = margins
            .iter()
            .map(|&m| rng.random::<f64>() < sigmoid(m / 2.0 - 1.0))
            .collect();
        (margins, labels)
    }

    #[test]
    fn platt_recovers_slope_and_intercept() {
        let (m, y) = miscalibrated(20_000, 1);
        let Calibrator::Platt { a, b } = fit_platt(&m, &y) else {
            panic!()
        };
        assert!(
            (a - 0.5).abs() < 0.05 && (b + 1.0).abs() < 0.08,
            "a {a} b {b}"
        );
    }

    #[test]
    fn isotonic_pools_violators_and_interpolates() {
        let m = [0.0, 1.0, 2.0, 3.0, 3.0, 4.0];
        let y = [false, true, false, true, true, true];
        let Calibrator::Isotonic { margins, probs } = fit_isotonic(&m, &y) else {
            panic!()
        };
        // blocks: {0} rate 0, {1,2} rate .5 at 1.5, {3,3,4} rate 1 at 10/3; each shrunk
        // by one pseudo-row at the slice's rate 4/6
        let r = 4.0 / 6.0;
        let expected = [r / 2.0, (1.0 + r) / 3.0, (3.0 + r) / 4.0];
        for (p, e) in probs.iter().zip(expected) {
            assert!((p - e).abs() < 1e-12, "{probs:?}");
        }
        assert_eq!(margins, vec![0.0, 1.5, 10.0 / 3.0]);
        let iso = fit_isotonic(&m, &y);
        assert!((iso.apply(-5.0) - expected[0]).abs() < 1e-12);
        assert!((iso.apply(0.75) - (expected[0] + expected[1]) / 2.0).abs() < 1e-12);
        assert!((iso.apply(9.0) - expected[2]).abs() < 1e-12);
        // nothing is certain: strictly inside (0, 1)
        let all_churn = fit_isotonic(&[5.0, 6.0], &[true, true]);
        assert!(all_churn.apply(7.0) < 1.0);
    }

    #[test]
    fn choose_improves_brier_and_is_deterministic() {
        let (m, y) = miscalibrated(3000, 2);
        let (cal, report) = choose(&m, &y, 7);
        assert!(report.platt_brier.unwrap() < report.uncalibrated_brier.unwrap());
        assert!(report.isotonic_brier.is_some());
        assert_eq!(choose(&m, &y, 7).0, cal);
        let p: Vec<f64> = m.iter().map(|&v| cal.apply(v)).collect();
        assert!(crate::model::metrics::expected_calibration_error(&p, &y, 10).unwrap() < 0.03);
    }

    #[test]
    fn small_or_one_class_slices_fall_back() {
        let (cal, _) = choose(&[0.1, 0.2], &[false, false], 1);
        assert_eq!(cal, Calibrator::Sigmoid);
        let (cal, report) = choose(&[0.1, 0.2, 3.0], &[false, false, true], 1);
        assert_eq!(cal.name(), "platt");
        assert_eq!(report.isotonic_brier, None);
        assert!(
            report.note.is_some(),
            "one churner: intercept only, said so"
        );
        let top = cal.apply(f64::INFINITY);
        assert!(top > 0.0 && top < 1.0, "{top}");
        assert!(Calibrator::Sigmoid.apply(-1e9) > 0.0);
        assert_eq!(Calibrator::Sigmoid.apply(f64::NAN), 0.5);
    }

    /// Regression: on 240 training rows with 3 churners the Platt fit got slope −0.239,
    /// which turned the model's ranking upside down (in-sample ROC AUC 0.000).
    #[test]
    fn calibration_never_inverts_the_ranking() {
        // margins that rank churners last: an anti-informative slice
        let mut margins: Vec<f64> = (0..200).map(|i| i as f64 / 50.0).collect();
        let mut labels = vec![false; 200];
        for i in 0..8 {
            labels[i * 3] = true;
        }
        margins.push(-2.0);
        labels.push(true);
        let (platt, note) = fit_platt_monotone(&margins, &labels);
        let Calibrator::Platt { a, .. } = platt else {
            panic!()
        };
        assert!(a > 0.0 && note.is_some(), "slope {a}");
        for seed in 0..5 {
            let (cal, _) = choose(&margins, &labels, seed);
            let p: Vec<f64> = margins.iter().map(|&m| cal.apply(m)).collect();
            for i in 0..margins.len() {
                for j in 0..margins.len() {
                    if margins[i] < margins[j] {
                        assert!(p[i] <= p[j], "{} reordered", cal.name());
                    }
                }
            }
            assert!(p.iter().all(|&v| v > 0.0 && v < 1.0));
        }
    }
}
