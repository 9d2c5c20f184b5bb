//! The forecast of next period's value segment (`predicted_value_segment`), and the
//! check that it earns its place against persistence ("next period = this period").
//!
//! **Learning.** The subscribers active in both snapshots `as_of − H` and `as_of` give
//! pairs: features then (with their profit percentile then, [`PROFIT_RANK`]), segment
//! now. Three one-vs-rest boosted classifiers (at most 100 trees each, calibrated) give
//! every subscriber a probability of each segment next period. The forecast moves a
//! subscriber away from their current segment only when the most likely other segment
//! is more probable than the current one by more than a *margin*: 0 is the plain
//! most-likely segment, larger margins move fewer, more certain subscribers.
//!
//! **Judging.** The pairs are split (seeded, stratified by whether the segment changed)
//! into 60% to fit on, 20% of validation rows that choose the margin (the most accurate
//! of a fixed grid; ties go to the larger margin, fewer moves), and 20% of test rows
//! that only judge. The forecast ships only when it beats persistence on the test rows
//! by McNemar's one-sided test at 5% (on the rows where exactly one of the two is
//! right); otherwise `predicted_value_segment` is persistence and the report says why,
//! with the figures. The model that ships is the one judged, not a refit on every pair:
//! the verdict is about the very model that scores (a refit on all pairs gained about
//! 0.001 of accuracy on generated data).
//!
//! **Nothing to learn.** When the earlier snapshot has less history before it than the
//! longest feature window (90 days), its features (and its profit) are not what they
//! are at scoring: a forecast learnt there wins the holdout and loses the next period
//! (generated data, earlier snapshot 2 days into the history: holdout 0.812 vs 0.794,
//! realised 0.728 vs 0.744), so persistence ships. When the segments of either snapshot
//! rest on nothing — profit constant or nearly so, or a cut through a tie (see
//! [`ProfitSpread`]) — the targets follow input order, a model would learn row order
//! and "beat" persistence on it, so persistence ships with the reason. The profit
//! percentile gives tied subscribers their mean rank for the same reason: input order
//! must not be a feature.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, RecordBatch};
use arrow::datatypes::{DataType, Field};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::value::{ProfitRanks, ProfitSpread, ValueSegment, WhaleCurve, assign};
use crate::asof::{AsOf, MICROS_PER_DAY};
use crate::features::accumulate::WINDOWS;
use crate::features::{FeatureTable, column_f64};
use crate::model::{ChurnModel, ChurnParams, ModelError};

/// Name of the extra feature the value model sees: the subscriber's current profit
/// percentile (near 0 = most profitable; ties share their mean rank), which is what
/// persistence uses.
pub const PROFIT_RANK: &str = "profit_rank_pct";

/// The margins tried on the validation rows.
const MARGINS: [f64; 13] = [
    0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8,
];

/// One-sided 5% critical value of McNemar's test (normal approximation).
const SHIP_Z: f64 = 1.645;

/// Fewest pairs, and fewest of each segment among the rows fit on, to learn from.
const MIN_PAIRS: usize = 100;
const MIN_SEGMENT_ROWS: usize = 10;

/// How well the segment forecast did, next to persistence ("next period = this period").
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ValueModelReport {
    /// `holdout` (fit, validation and test rows out of the subscriber pairs), or `none`
    /// when no model was fit.
    pub method: String,
    /// What `predicted_value_segment` is: `model` or `persistence`.
    pub shipped: String,
    /// Why persistence ships, when it does.
    pub note: Option<String>,
    /// Pairs the model was fit on, and validation rows that chose the margin.
    pub fit_rows: usize,
    pub validation_rows: usize,
    /// The chosen margin: a subscriber moves when another segment is this much more
    /// probable than their current one.
    pub move_margin: Option<f64>,
    /// Accuracy on the validation rows, of the forecast and of persistence.
    pub validation_accuracy: f64,
    pub validation_persistence_accuracy: f64,
    /// Test rows, and accuracy on them.
    pub rows: usize,
    pub accuracy: f64,
    pub persistence_accuracy: f64,
    /// Test rows whose segment changed (persistence is wrong on every one), and the
    /// forecast's accuracy on them; its accuracy on the others (persistence: 1).
    pub movers: usize,
    pub mover_accuracy: f64,
    pub stayer_accuracy: f64,
    /// Test rows the forecast moved away from their current segment.
    pub predicted_moves: usize,
    /// Test rows where only the forecast is right, and where only persistence is.
    pub wins: usize,
    pub losses: usize,
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
        let judged = format!(
            "accuracy {:.3} vs persistence {:.3} on {} held-out subscribers (movers {:.3} of {}, stayers {:.3})",
            self.accuracy,
            self.persistence_accuracy,
            self.rows,
            self.mover_accuracy,
            self.movers,
            self.stayer_accuracy
        );
        if self.shipped == "persistence" {
            return format!(
                "value-segment model: persistence ships ({}); the model had {judged}",
                self.note.as_deref().unwrap_or("")
            );
        }
        let rule = match self.move_margin {
            Some(m) if m > 0.0 => {
                format!("moves a subscriber when another segment is {m:.2} more probable")
            }
            _ => "moves a subscriber to the most probable segment".into(),
        };
        format!("value-segment model: {judged}; {rule}")
    }
}

/// The forecast of next period's value segment: one calibrated one-vs-rest classifier
/// per segment with the margin a move needs, or persistence.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ValueModel {
    Persistence {
        note: String,
    },
    OneVsRest {
        models: Vec<ChurnModel>,
        /// Probability by which another segment must beat the current one for a move
        /// (0 in artifacts from before the margin: the most likely segment).
        #[serde(default)]
        move_margin: f64,
    },
}

/// The parts of a snapshot the forecast learns from.
struct SegmentSnapshot<'a> {
    as_of: AsOf,
    batch: &'a RecordBatch,
    /// Rows of the subscriber table behind each row of `batch`: the key of a pair.
    rows: &'a [u32],
    /// Days from the oldest event to `as_of`, when there are events.
    history_days: Option<i64>,
}

impl<'a> SegmentSnapshot<'a> {
    fn of(table: &'a FeatureTable) -> Self {
        SegmentSnapshot {
            as_of: table.as_of,
            batch: &table.batch,
            rows: &table.rows,
            history_days: table
                .events
                .oldest_ts
                .map(|ts| table.as_of.days() as i64 - ts.div_euclid(MICROS_PER_DAY)),
        }
    }
}

/// The feature batch with the current profit percentile appended; tied profits share
/// their mean rank, so that input order never becomes a feature.
fn with_profit_rank(batch: &RecordBatch) -> Result<RecordBatch, ModelError> {
    let profit = column_f64(batch, "profit_90d");
    let ranks = ProfitRanks::of(&profit);
    let pct: Vec<f64> = profit.iter().map(|p| ranks.percentile(*p)).collect();
    with_rank_column(batch, pct)
}

/// `batch` with [`PROFIT_RANK`] appended.
fn with_rank_column(batch: &RecordBatch, pct: Vec<f64>) -> Result<RecordBatch, ModelError> {
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

/// Each row's probability of each segment next period, in the order of
/// [`ValueSegment::ALL`].
type SegmentProbs = Vec<[f64; 3]>;

/// The forecast: the current segment, unless another is more probable by more than
/// `margin` (the most probable other segment; the first of equals).
fn forecast(probs: &[[f64; 3]], current: &[ValueSegment], margin: f64) -> Vec<ValueSegment> {
    probs
        .iter()
        .zip(current)
        .map(|(p, &c)| {
            let best = ValueSegment::ALL.into_iter().filter(|&s| s != c).fold(
                None,
                |best: Option<ValueSegment>, s| match best {
                    Some(b) if p[b.index()] >= p[s.index()] => Some(b),
                    _ => Some(s),
                },
            );
            match best {
                Some(b) if p[b.index()] - p[c.index()] > margin => b,
                _ => c,
            }
        })
        .collect()
}

/// The most accurate margin on validation rows and its accuracy; the larger margin of
/// equals (fewer moves).
fn choose_margin(
    probs: &[[f64; 3]],
    current: &[ValueSegment],
    actual: &[ValueSegment],
) -> (f64, f64) {
    let mut best = (MARGINS[0], f64::NEG_INFINITY);
    for m in MARGINS {
        let a = accuracy(&forecast(probs, current, m), actual, None);
        if a >= best.1 {
            best = (m, a);
        }
    }
    best
}

/// McNemar's statistic for "the forecast beats persistence" from the rows where only
/// the forecast is right (`wins`) and only persistence is (`losses`).
fn mcnemar_z(wins: usize, losses: usize) -> f64 {
    if wins + losses == 0 {
        return 0.0;
    }
    (wins as f64 - losses as f64) / ((wins + losses) as f64).sqrt()
}

impl ValueModel {
    /// A model that forecasts no change, because none was fit.
    pub fn persistence(note: &str) -> (ValueModel, ValueModelReport) {
        let report = ValueModelReport {
            method: "none".into(),
            shipped: "persistence".into(),
            note: Some(note.into()),
            ..Default::default()
        };
        (ValueModel::Persistence { note: note.into() }, report)
    }

    /// Learns segment moves from the subscribers in both snapshots: features at
    /// `earlier`, target their segment at `current`; ships the forecast only when it
    /// beats persistence on held-out pairs (see the module documentation).
    pub fn train(
        earlier: &FeatureTable,
        current: &FeatureTable,
        params: &ChurnParams,
        seed: u64,
    ) -> Result<(ValueModel, ValueModelReport), ModelError> {
        Self::learn(
            &SegmentSnapshot::of(earlier),
            &SegmentSnapshot::of(current),
            params,
            seed,
        )
    }

    fn learn(
        earlier: &SegmentSnapshot,
        current: &SegmentSnapshot,
        params: &ChurnParams,
        seed: u64,
    ) -> Result<(ValueModel, ValueModelReport), ModelError> {
        let longest = WINDOWS.iter().copied().max().unwrap_or(0);
        if let Some(days) = earlier.history_days
            && days < longest
        {
            return Ok(ValueModel::persistence(&format!(
                "only {days} days of events before the snapshot at {}, fewer than the {longest} its features read: moves learnt there would not hold at scoring",
                earlier.as_of
            )));
        }
        let profit_before = column_f64(earlier.batch, "profit_90d");
        let profit_now = column_f64(current.batch, "profit_90d");
        for (snapshot, profit) in [(earlier, &profit_before), (current, &profit_now)] {
            if let Some(warning) = spread_of(profit).warning {
                return Ok(ValueModel::persistence(&format!(
                    "no segment moves to learn: at {}, {warning}",
                    snapshot.as_of
                )));
            }
        }
        let now = assign(&profit_now);
        let before = assign(&profit_before);
        // looked up by key only, never iterated: the pairs keep the order of `earlier`
        let position_now: HashMap<u32, usize> = current
            .rows
            .iter()
            .enumerate()
            .map(|(i, &r)| (r, i))
            .collect();
        let (rows, targets): (Vec<usize>, Vec<ValueSegment>) = earlier
            .rows
            .iter()
            .enumerate()
            .filter_map(|(i, r)| position_now.get(r).map(|&j| (i, now[j])))
            .unzip();
        let too_few =
            ValueModel::persistence("too few subscribers in both snapshots to learn segment moves");
        if rows.len() < MIN_PAIRS {
            return Ok(too_few);
        }
        let persisted: Vec<ValueSegment> = rows.iter().map(|&r| before[r]).collect();
        let moved: Vec<bool> = targets
            .iter()
            .zip(&persisted)
            .map(|(t, p)| t != p)
            .collect();
        let (rest, test) = crate::model::sample::stratified_split(&moved, 0.2, seed);
        let (fit, validation) = crate::model::sample::stratified_split(
            &pick(&moved, &rest),
            0.25,
            seed.wrapping_add(1),
        );
        let (fit, validation) = (pick(&rest, &fit), pick(&rest, &validation));
        let fit_targets = pick(&targets, &fit);
        if ValueSegment::ALL
            .iter()
            .any(|s| fit_targets.iter().filter(|t| *t == s).count() < MIN_SEGMENT_ROWS)
        {
            return Ok(too_few);
        }

        let batch = with_profit_rank(earlier.batch)?;
        let pair_batch = crate::model::sample::take_rows(&batch, &rows)?;
        let models = fit_models(
            &crate::model::sample::take_rows(&pair_batch, &fit)?,
            &fit_targets,
            params,
        )?;
        let judge = |positions: &[usize]| -> Result<_, ModelError> {
            let part = crate::model::sample::take_rows(&pair_batch, positions)?;
            let probs = probabilities(&models, &part)?;
            let tenure = column_f64(&part, "tenure_days");
            Ok((probs, tenure))
        };
        let (val_probs, _) = judge(&validation)?;
        let (val_current, val_actual) =
            (pick(&persisted, &validation), pick(&targets, &validation));
        let (margin, validation_accuracy) = choose_margin(&val_probs, &val_current, &val_actual);
        let validation_persistence_accuracy = accuracy(&val_current, &val_actual, None);

        let (test_probs, tenure) = judge(&test)?;
        let (current_seg, actual) = (pick(&persisted, &test), pick(&targets, &test));
        let predicted = forecast(&test_probs, &current_seg, margin);
        let movers: Vec<bool> = pick(&moved, &test);
        let stayers: Vec<bool> = movers.iter().map(|m| !m).collect();
        let newcomer: Vec<bool> = tenure
            .iter()
            .map(|t| t.is_some_and(|t| t < 180.0))
            .collect();
        let right = |p: &[ValueSegment], i: usize| p[i] == actual[i];
        let wins = (0..actual.len())
            .filter(|&i| right(&predicted, i) && !right(&current_seg, i))
            .count();
        let losses = (0..actual.len())
            .filter(|&i| !right(&predicted, i) && right(&current_seg, i))
            .count();
        let mut report = ValueModelReport {
            method: "holdout".into(),
            shipped: "model".into(),
            note: None,
            fit_rows: fit.len(),
            validation_rows: validation.len(),
            move_margin: Some(margin),
            validation_accuracy,
            validation_persistence_accuracy,
            rows: test.len(),
            accuracy: accuracy(&predicted, &actual, None),
            persistence_accuracy: accuracy(&current_seg, &actual, None),
            movers: movers.iter().filter(|&&m| m).count(),
            mover_accuracy: accuracy(&predicted, &actual, Some(&movers)),
            stayer_accuracy: accuracy(&predicted, &actual, Some(&stayers)),
            predicted_moves: predicted
                .iter()
                .zip(&current_seg)
                .filter(|(p, c)| p != c)
                .count(),
            wins,
            losses,
            confusion: confusion(&predicted, &actual),
            persistence_confusion: confusion(&current_seg, &actual),
            newcomer_accuracy: newcomer
                .contains(&true)
                .then(|| accuracy(&predicted, &actual, Some(&newcomer))),
            newcomer_persistence_accuracy: newcomer
                .contains(&true)
                .then(|| accuracy(&current_seg, &actual, Some(&newcomer))),
        };
        let z = mcnemar_z(wins, losses);
        let why_not = if validation_accuracy <= validation_persistence_accuracy {
            Some(format!(
                "no move margin beats persistence on the {} validation rows: best {:.3} vs {:.3}",
                validation.len(),
                validation_accuracy,
                validation_persistence_accuracy
            ))
        } else if z < SHIP_Z {
            Some(format!(
                "on the {} test rows the model alone is right {wins} times and persistence alone {losses}: McNemar z {z:.2} < {SHIP_Z}, not a win",
                test.len()
            ))
        } else {
            None
        };
        if let Some(why) = why_not {
            report.shipped = "persistence".into();
            report.note = Some(why.clone());
            return Ok((ValueModel::Persistence { note: why }, report));
        }
        Ok((
            ValueModel::OneVsRest {
                models,
                move_margin: margin,
            },
            report,
        ))
    }

    /// Forecasts next period's segment for every row of a feature batch, the batch being
    /// the whole population.
    pub fn predict(&self, batch: &RecordBatch) -> Result<Vec<ValueSegment>, ModelError> {
        let profit = column_f64(batch, "profit_90d");
        let ranks = ProfitRanks::of(&profit);
        let pct = profit.iter().map(|p| ranks.percentile(*p)).collect();
        self.predict_with(batch, assign(&profit), pct)
    }

    /// Forecasts next period's segment for rows of a population, given each row's
    /// current segment and profit percentile in the whole population (population steps,
    /// so that a shard's rows are forecast as the whole table's would be).
    pub fn predict_with(
        &self,
        batch: &RecordBatch,
        current: Vec<ValueSegment>,
        profit_pct: Vec<f64>,
    ) -> Result<Vec<ValueSegment>, ModelError> {
        match self {
            ValueModel::Persistence { .. } => Ok(current),
            ValueModel::OneVsRest {
                models,
                move_margin,
            } => {
                let probs = probabilities(models, &with_rank_column(batch, profit_pct)?)?;
                Ok(forecast(&probs, &current, *move_margin))
            }
        }
    }
}

/// The spread of a snapshot's profits (the whale curve computes it).
fn spread_of(profit: &[Option<f64>]) -> ProfitSpread {
    WhaleCurve::from_profit(profit).spread
}

/// Three one-vs-rest models, fitted side by side: at most 100 rounds and no baselines
/// keep this cheap.
fn fit_models(
    batch: &RecordBatch,
    targets: &[ValueSegment],
    params: &ChurnParams,
) -> Result<Vec<ChurnModel>, ModelError> {
    let params = ChurnParams {
        n_trees: params.n_trees.min(100),
        baselines: false,
        ..params.clone()
    };
    let checked = params.check()?;
    ValueSegment::ALL
        .par_iter()
        .map(|s| {
            let labels: Vec<bool> = targets.iter().map(|t| t == s).collect();
            ChurnModel::fit(batch, &labels, &checked)
        })
        .collect()
}

/// Every row's probability of each segment, from the three one-vs-rest models.
fn probabilities(models: &[ChurnModel], batch: &RecordBatch) -> Result<SegmentProbs, ModelError> {
    let [top, middle, bottom] = models else {
        return Err(ModelError::Data(format!(
            "the value-segment model holds {} one-vs-rest models; it needs 3 (top20, middle50, bottom30)",
            models.len()
        )));
    };
    let (top, (middle, bottom)) = rayon::join(
        || top.predict_proba(batch),
        || {
            rayon::join(
                || middle.predict_proba(batch),
                || bottom.predict_proba(batch),
            )
        },
    );
    let (top, middle, bottom) = (top?, middle?, bottom?);
    Ok((0..batch.num_rows())
        .map(|i| [top[i], middle[i], bottom[i]])
        .collect())
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

#[cfg(test)]
mod tests {
    use super::*;
    use ValueSegment::{Middle50, Top20};
    use arrow::array::StringArray;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn a_move_needs_the_margin() {
        let probs = [[0.5, 0.4, 0.1], [0.2, 0.7, 0.1], [0.45, 0.45, 0.1]];
        let current = [Middle50, Top20, Top20];
        assert_eq!(
            forecast(&probs, &current, 0.0),
            vec![Top20, Middle50, Top20]
        );
        assert_eq!(
            forecast(&probs, &current, 0.2),
            vec![Middle50, Middle50, Top20]
        );
        assert_eq!(forecast(&probs, &current, 0.8), current.to_vec());
    }

    #[test]
    fn the_margin_is_the_most_accurate_and_then_the_most_cautious() {
        // Moving the first row is right, the second wrong: every margin that moves the
        // first and not the second (about 0.1 to 0.4) ties on accuracy 1; the largest wins.
        let probs = [[0.7, 0.3, 0.0], [0.0, 0.3, 0.4]];
        let current = [Middle50, Middle50];
        let actual = [Top20, Middle50];
        assert_eq!(choose_margin(&probs, &current, &actual), (0.3, 1.0));
        assert!(mcnemar_z(120, 80) > SHIP_Z && mcnemar_z(110, 90) < SHIP_Z);
        assert_eq!(mcnemar_z(0, 0), 0.0);
    }

    fn batch(ids: &[String], profit: &[f64], x: &[f64]) -> RecordBatch {
        let tenure: Vec<f64> = (0..ids.len()).map(|i| (i % 700) as f64).collect();
        RecordBatch::try_from_iter([
            (
                "subscriber_id",
                Arc::new(StringArray::from(ids.to_vec())) as ArrayRef,
            ),
            (
                "tenure_days",
                Arc::new(Float64Array::from(tenure)) as ArrayRef,
            ),
            ("x", Arc::new(Float64Array::from(x.to_vec())) as ArrayRef),
            (
                "profit_90d",
                Arc::new(Float64Array::from(profit.to_vec())) as ArrayRef,
            ),
        ])
        .unwrap()
    }

    /// Two snapshots of `n` subscribers: profit then, and profit now from `next`.
    fn learn_from(
        n: usize,
        next: impl Fn(f64, f64, &mut ChaCha8Rng) -> f64,
    ) -> (ValueModel, ValueModelReport) {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let ids: Vec<String> = (0..n).map(|i| format!("S{i}")).collect();
        let x: Vec<f64> = (0..n).map(|_| rng.random()).collect();
        let before: Vec<f64> = (0..n).map(|_| rng.random_range(0.0..100.0)).collect();
        let now: Vec<f64> = (0..n).map(|i| next(before[i], x[i], &mut rng)).collect();
        let rows: Vec<u32> = (0..n as u32).collect();
        let (b0, b1) = (batch(&ids, &before, &x), batch(&ids, &now, &x));
        let snapshot = |days: i32, batch| SegmentSnapshot {
            as_of: AsOf::from_days(days),
            batch,
            rows: &rows,
            history_days: Some(400),
        };
        let params = ChurnParams {
            n_trees: 40,
            ..ChurnParams::default()
        };
        ValueModel::learn(&snapshot(20_000, &b0), &snapshot(20_090, &b1), &params, 5).unwrap()
    }

    #[test]
    fn a_forecast_that_sees_the_moves_ships() {
        // A fifth of the subscribers (x > 0.8) turn their profit upside down; the rest
        // keep it: the model can see who moves, persistence cannot.
        let (model, report) = learn_from(3000, |p, x, _| if x > 0.8 { 100.0 - p } else { p });
        assert!(matches!(model, ValueModel::OneVsRest { .. }), "{report:?}");
        assert_eq!(report.shipped, "model");
        assert!(
            report.accuracy > report.persistence_accuracy + 0.05,
            "{report:?}"
        );
        assert_eq!(report.rows + report.validation_rows + report.fit_rows, 3000);
        assert!(
            report.mover_accuracy > 0.5 && report.movers > 0,
            "{report:?}"
        );
        assert!(report.summary().contains("movers"), "{}", report.summary());
    }

    #[test]
    fn the_forecast_is_the_same_bits_on_any_thread_count() {
        let on = |threads| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| learn_from(2000, |p, x, _| if x > 0.8 { 100.0 - p } else { p }))
        };
        let ((one, _), (four, _)) = (on(1), on(4));
        assert!(matches!(one, ValueModel::OneVsRest { .. }));
        assert_eq!(
            serde_json::to_string(&one).unwrap(),
            serde_json::to_string(&four).unwrap()
        );
    }

    #[test]
    fn a_forecast_that_cannot_beat_persistence_does_not_ship() {
        // Moves are noise no feature can see.
        let (model, report) = learn_from(3000, |p, _, rng| p + rng.random_range(-8.0..8.0));
        assert!(
            matches!(model, ValueModel::Persistence { .. }),
            "{report:?}"
        );
        assert_eq!(
            (report.method.as_str(), report.shipped.as_str()),
            ("holdout", "persistence")
        );
        assert!(report.note.is_some() && report.rows > 0, "{report:?}");
        assert!(
            report.summary().contains("persistence ships"),
            "{}",
            report.summary()
        );
    }

    #[test]
    fn constant_profit_teaches_nothing() {
        // Every subscriber pays the same: the segments follow input order, and a model
        // would "learn" that order. Persistence ships, and says why.
        let (model, report) = learn_from(1000, |_, _, _| 90.0);
        assert!(matches!(model, ValueModel::Persistence { .. }));
        assert_eq!(report.method, "none");
        let note = report.note.unwrap();
        assert!(note.contains("90.00 for every subscriber"), "{note}");
    }

    #[test]
    fn tied_profits_share_their_mean_rank() {
        let ids: Vec<String> = (0..4).map(|i| i.to_string()).collect();
        let b = with_profit_rank(&batch(&ids, &[5.0, 9.0, 5.0, 1.0], &[0.0; 4])).unwrap();
        let pct = column_f64(&b, PROFIT_RANK);
        assert_eq!(pct, vec![Some(0.5), Some(0.125), Some(0.5), Some(0.875)]);
    }
}
