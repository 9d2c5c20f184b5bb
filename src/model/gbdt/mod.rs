//! A histogram gradient-boosted tree classifier for log-loss, in the manner of LightGBM.
//!
//! - Features are binned once ([`super::binning`]): at most 255 bins, bin 0 for missing.
//! - Trees grow leaf-wise: the leaf whose best split gains most is split next, until
//!   `max_leaves` leaves (or `max_depth`, or no split gains anything).
//! - Only the smaller child of a split is histogrammed from rows; the larger is its
//!   parent's histogram minus the smaller ([`super::histogram`]).
//! - The first tree starts from the log-odds of the (weighted) churn rate, so class
//!   imbalance needs no resampling; `scale_pos_weight` is there for who wants it, and the
//!   churn model's calibration then fixes the probabilities.
//! - Optional per-tree feature and row subsampling and early stopping on a validation
//!   slice; all randomness comes from ChaCha8 streams seeded with `seed`.
//! - Gradients and hessians are summed in fixed point ([`super::histogram::Sums`]), so
//!   that histograms are exact integer sums.
//! - [`GbdtValidParams::bin`] and [`GbdtValidParams::fit_binned`] let several fits on
//!   rows of one matrix share its binning.
//!
//! Determinism: parallel work (histograms over chunks of rows, gradients and predictions
//! over rows) never reduces floats across threads, and integer sums do not depend on
//! their order, so a fit gives the same bits for any thread count.

mod boost;
mod grow;
mod model;
mod params;

pub use model::{BinnedFeatures, GbdtModel};
pub use params::{GbdtParams, GbdtValidParams};

#[cfg(test)]
mod tests {
    use linfa::Dataset;
    use linfa::ParamGuard;
    use ndarray::{Array1, Array2};

    use super::boost::exp_near;
    use super::*;
    use crate::model::design::ColumnType;
    use crate::model::error::ModelError;
    use crate::model::metrics::roc_auc;
    use crate::model::testdata::logistic_truth;
    use linfa::traits::Fit;

    fn small() -> GbdtValidParams {
        GbdtParams::new()
            .n_trees(50)
            .learning_rate(0.1)
            .check()
            .unwrap()
    }

    #[test]
    fn exp_near_matches_the_standard_exp() {
        for i in -70_000..=70_000 {
            let x = i as f64 / 100.0 + 0.003;
            let (got, want) = (exp_near(x), x.exp());
            assert!(
                ((got - want) / want).abs() < 4.0 * f64::EPSILON,
                "e^{x}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn learns_a_logistic_ground_truth() {
        let (x, y) = logistic_truth(2000, 10, 7);
        let (xt, yt) = logistic_truth(1000, 10, 8);
        let types = vec![ColumnType::Numeric; 10];
        let model = small().fit_matrix(x.view(), &y, &types, None).unwrap();
        let p = model.predict_proba(xt.view()).unwrap();
        let auc = roc_auc(&p, &yt).unwrap();
        assert!(auc > 0.8, "auc {auc}");
        assert_eq!(model.trees.len(), 50);
        assert!(model.trees.iter().all(|t| t.nodes.len() < 2 * 31));
    }

    #[test]
    fn identical_bits_for_any_thread_count_and_run() {
        let (x, y) = logistic_truth(2000, 10, 3);
        let types = vec![ColumnType::Numeric; 10];
        let params = GbdtParams::new()
            .n_trees(20)
            .feature_fraction(0.7)
            .bagging_fraction(0.8)
            .check()
            .unwrap();
        let fit = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let m = params.fit_matrix(x.view(), &y, &types, None).unwrap();
                serde_json::to_string(&m).unwrap()
            })
        };
        let one = fit(1);
        assert_eq!(one, fit(4));
        assert_eq!(one, fit(1));
    }

    #[test]
    fn contributions_sum_to_the_margin() {
        let (x, y) = logistic_truth(600, 4, 5);
        let types = vec![ColumnType::Numeric; 4];
        let model = GbdtParams::new()
            .n_trees(10)
            .check()
            .unwrap()
            .fit_matrix(x.view(), &y, &types, None)
            .unwrap();
        let margins = model.predict_margin(x.view()).unwrap();
        for shap in [false, true] {
            let c = model.contributions(x.view(), shap).unwrap();
            for (i, m) in margins.iter().enumerate().take(50) {
                assert!((c.row(i).sum() - m).abs() < 1e-9, "shap={shap}");
            }
        }
    }

    #[test]
    fn margins_from_the_bins_match_margins_from_the_values() {
        let (mut x, y) = logistic_truth(1500, 6, 9);
        x[[3, 2]] = f64::NAN;
        x[[7, 4]] = f64::INFINITY;
        x[[5, 2]] = f64::NAN;
        x[[10, 4]] = f64::NEG_INFINITY;
        let types = vec![ColumnType::Numeric; 6];
        let params = GbdtParams::new().n_trees(20).check().unwrap();
        let binned = params.bin(x.view(), &types).unwrap();
        let train: Vec<usize> = (0..1500).filter(|r| r % 5 != 0).collect();
        let held: Vec<usize> = (0..1500).filter(|r| r % 5 == 0).collect();
        let y_train: Vec<bool> = train.iter().map(|&r| y[r]).collect();
        let (model, fitted) = params
            .fit_binned_margins(&binned, Some(&train), &y_train, None)
            .unwrap();
        let from_values = model.predict_margin(x.view()).unwrap();
        let from_bins = model.predict_margin_binned(&binned, &held).unwrap();
        for (k, &r) in held.iter().enumerate() {
            assert_eq!(from_bins[k], from_values[r], "row {r}");
        }
        // the boosting's own margins of its rows are their predictions, bit for bit
        for (k, &r) in train.iter().enumerate() {
            assert_eq!(fitted[k], from_values[r], "row {r}");
        }
        assert!(model.predict_margin_binned(&binned, &[1500]).is_err());
        assert!(
            params
                .fit_binned(&binned, Some(&[1500]), &[true], None)
                .is_err()
        );
    }

    #[test]
    fn early_stopping_keeps_the_best_trees() {
        let (x, y) = logistic_truth(1000, 5, 11);
        let (vx, vy) = logistic_truth(500, 5, 12);
        let types = vec![ColumnType::Numeric; 5];
        let params = GbdtParams::new()
            .n_trees(400)
            .learning_rate(0.3)
            .early_stopping_rounds(Some(10))
            .check()
            .unwrap();
        let binned = params.bin(x.view(), &types).unwrap();
        let (model, fitted) = params
            .fit_binned_margins(&binned, None, &y, Some((vx.view(), &vy)))
            .unwrap();
        let kept = model.best_iteration.unwrap();
        assert!(kept < 400 && model.trees.len() == kept, "kept {kept}");
        // the margins are those of the kept trees
        assert_eq!(fitted, model.predict_margin(x.view()).unwrap());
    }

    #[test]
    fn categorical_codes_and_missing_values_are_learned() {
        // churn iff level 1 or 3, or the numeric value is missing
        let n = 1200;
        let mut x = Array2::zeros((n, 2));
        let mut y = vec![false; n];
        for i in 0..n {
            let level = (i * 7 % 6) as f64;
            x[[i, 0]] = level;
            x[[i, 1]] = if i % 5 == 0 {
                f64::NAN
            } else {
                (i % 13) as f64
            };
            y[i] = level == 1.0 || level == 3.0 || i % 5 == 0;
        }
        let types = [ColumnType::Categorical { levels: 6 }, ColumnType::Numeric];
        let model = GbdtParams::new()
            .n_trees(30)
            .learning_rate(0.3)
            .check()
            .unwrap()
            .fit_matrix(x.view(), &y, &types, None)
            .unwrap();
        let p = model.predict_proba(x.view()).unwrap();
        assert_eq!(roc_auc(&p, &y), Some(1.0));
    }

    #[test]
    fn one_class_and_bad_params_are_refused() {
        let x = Array2::zeros((3, 1));
        let err = small()
            .fit_matrix(x.view(), &[false; 3], &[ColumnType::Numeric], None)
            .unwrap_err();
        assert!(matches!(
            err,
            ModelError::OneClass {
                positives: 0,
                rows: 3
            }
        ));
        let err = GbdtParams::new().learning_rate(0.0).check().unwrap_err();
        assert_eq!(err.to_string(), "`learning_rate` must be in (0, 1], got 0");
    }

    #[test]
    fn tiny_and_constant_inputs_fit_without_splits() {
        let x = Array2::from_elem((2, 3), 1.0);
        let model = small()
            .fit_matrix(x.view(), &[true, false], &[ColumnType::Numeric; 3], None)
            .unwrap();
        assert!(model.trees.iter().all(|t| t.nodes.len() == 1));
        let p = model.predict_proba(x.view()).unwrap();
        assert!((p[0] - 0.5).abs() < 1e-12);
    }

    #[test]
    fn fits_through_linfa() {
        let (x, y) = logistic_truth(300, 3, 1);
        let dataset = Dataset::new(x, Array1::from(y));
        let model = GbdtParams::new()
            .n_trees(5)
            .check()
            .unwrap()
            .fit(&dataset)
            .unwrap();
        assert_eq!(model.trees.len(), 5);
    }
}
