//! Scoring (SPEC §6): apply the trained models to the snapshot at `as_of` and derive
//! every output column — risk, deciles, value segments and their forecast, value at
//! risk, reasons, drivers and their evidence, lifecycle stage, loyalty action and
//! touchpoints.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Float64Array, Int32Array, ListBuilder, RecordBatch,
    StringArray, StringBuilder,
};
use arrow::datatypes::{DataType, Field, Schema};
use serde::Serialize;

use crate::features::{FeatureTable, column_f64};
pub use crate::model::metrics::risk_deciles;
use crate::model::{InvalidParams, ModelError, ParamProblem};
use crate::segment::driver::{FootprintReader, PRIOR};
use crate::segment::lifecycle::LifecycleFacts;
use crate::segment::loyalty::recommend;
use crate::segment::touchpoints::Recommender;
use crate::segment::{ChurnDriver, LifecycleStage, LoyaltyAction, ValueSegment, WhaleCurve, value};
use crate::taxonomy::Category;
use crate::train::artifact::ModelArtifact;

/// Scoring settings (from the pipeline config or flags).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ScoreParams {
    /// Risk deciles 1..=this count as high risk for the loyalty action.
    pub high_risk_deciles: u8,
    /// Recommended touchpoints per subscriber with an action (1–3).
    pub max_touchpoints: usize,
    /// Reason codes per subscriber.
    pub reasons: usize,
    /// Retention budget for this run; `None` targets nobody.
    pub budget: Option<f64>,
    /// Cost of one retention offer.
    pub offer_cost: f64,
    /// Share of would-be churners an offer keeps.
    pub save_rate: f64,
}

impl Default for ScoreParams {
    fn default() -> Self {
        ScoreParams {
            high_risk_deciles: 3,
            max_touchpoints: 2,
            reasons: 3,
            budget: None,
            offer_cost: 10.0,
            save_rate: 0.3,
        }
    }
}

impl ScoreParams {
    /// Every setting out of its range, named as in this struct.
    pub fn problems(&self) -> Vec<ParamProblem> {
        let mut problems = Vec::new();
        if !(1..=10).contains(&self.high_risk_deciles) {
            problems.push(ParamProblem::new(
                "high_risk_deciles",
                "must be 1 to 10",
                self.high_risk_deciles,
            ));
        }
        if !(1..=3).contains(&self.max_touchpoints) {
            problems.push(ParamProblem::new(
                "max_touchpoints",
                "must be 1 to 3",
                self.max_touchpoints,
            ));
        }
        if self.reasons == 0 {
            problems.push(ParamProblem::new("reasons", "must be at least 1", 0));
        }
        if let Some(b) = self.budget.filter(|b| b.is_nan() || *b < 0.0) {
            problems.push(ParamProblem::new("budget", "must be at least 0", b));
        }
        if self.offer_cost.is_nan() || self.offer_cost <= 0.0 {
            problems.push(ParamProblem::new(
                "offer_cost",
                "must be above 0",
                self.offer_cost,
            ));
        }
        if !(0.0..=1.0).contains(&self.save_rate) {
            problems.push(ParamProblem::new(
                "save_rate",
                "must be between 0 and 1",
                self.save_rate,
            ));
        }
        problems
    }

    /// Checks every setting; the error names every one out of range.
    pub fn check(&self) -> Result<(), InvalidParams> {
        InvalidParams::check(self.problems())
    }
}

/// What scoring produced, besides the table.
#[derive(Debug, Clone, Serialize)]
pub struct ScoreSummary {
    pub rows: usize,
    pub mean_churn_probability: f64,
    pub value_at_risk: f64,
    pub segments: [usize; 3],
    pub actions: Vec<(String, usize)>,
    pub drivers: Vec<(String, usize)>,
    /// Drivers that rest on no evidence (`driver_evidence` = `none`): only the prior,
    /// counted among the prior's driver in `drivers`.
    pub drivers_without_evidence: usize,
    pub whale: WhaleCurve,
    pub targeting: Targeting,
}

impl ScoreSummary {
    /// The summary's drivers line: each driver's count, and how many of the prior's rest
    /// on no evidence.
    pub fn drivers_line(&self) -> String {
        self.drivers
            .iter()
            .map(|(d, n)| {
                if d == PRIOR.name() {
                    format!(
                        "{d} {n} ({} without evidence)",
                        self.drivers_without_evidence
                    )
                } else {
                    format!("{d} {n}")
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The outcome of budgeted targeting.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Targeting {
    pub budget: Option<f64>,
    pub offer_cost: f64,
    pub save_rate: f64,
    pub targeted: usize,
    pub spend: f64,
    /// Expected profit kept by the offers, before their cost.
    pub expected_saved_profit: f64,
    /// Expected saved profit minus spend.
    pub expected_return: f64,
}

/// Chooses whom to target: each offer costs `offer_cost` and is expected to save
/// `save_rate × value_at_risk`; the subscribers with the largest positive net gain are
/// taken, best first, until the budget runs out. With equal costs this greedy choice
/// maximises the expected saved profit within the budget. Returns the net gain of each
/// targeted subscriber (`None` for the others) and the totals.
pub fn target(value_at_risk: &[f64], params: &ScoreParams) -> (Vec<Option<f64>>, Targeting) {
    let mut out = vec![None; value_at_risk.len()];
    let mut t = Targeting {
        budget: params.budget,
        offer_cost: params.offer_cost,
        save_rate: params.save_rate,
        ..Default::default()
    };
    let Some(budget) = params.budget else {
        return (out, t);
    };
    let gain: Vec<f64> = value_at_risk
        .iter()
        .map(|v| params.save_rate * v - params.offer_cost)
        .collect();
    let mut order: Vec<usize> = (0..gain.len()).filter(|&i| gain[i] > 0.0).collect();
    order.sort_by(|&a, &b| gain[b].total_cmp(&gain[a]));
    for i in order {
        if t.spend + params.offer_cost > budget {
            break;
        }
        t.spend += params.offer_cost;
        t.targeted += 1;
        t.expected_return += gain[i];
        out[i] = Some(gain[i]);
    }
    t.expected_saved_profit = t.expected_return + t.spend;
    (out, t)
}

/// The scored table and its summary.
pub struct Scored {
    pub batch: RecordBatch,
    pub summary: ScoreSummary,
}

/// Scores a feature table with a trained artifact.
pub fn score(
    table: &FeatureTable,
    artifact: &ModelArtifact,
    params: &ScoreParams,
) -> Result<Scored, ModelError> {
    params.check()?;
    let batch = &table.batch;
    let n = batch.num_rows();
    let probs = artifact.churn.predict_proba(batch)?;
    let deciles = risk_deciles(&probs);
    let profit = column_f64(batch, "profit_90d");
    let segments = value::assign(&profit);
    let predicted = artifact.value.predict(batch)?;
    let reasons = artifact.churn.reasons(batch, params.reasons)?;
    let horizon = artifact.window.horizon_days as f64;
    // Expected profit over the horizon: the trailing 90-day profit at the same rate,
    // never below zero (losing an unprofitable customer puts no value at risk).
    let value_at_risk: Vec<f64> = probs
        .iter()
        .zip(&profit)
        .map(|(p, pr)| p * pr.filter(|v| v.is_finite()).unwrap_or(0.0).max(0.0) * horizon / 90.0)
        .collect();
    let (gains, targeting) = target(&value_at_risk, params);
    let get = |name: &str| column_f64(batch, name);
    let (tenure, use90, sub90, trial90, revenue90) = (
        get("tenure_days"),
        get("use_90d"),
        get("subscribe_90d"),
        get("trial_90d"),
        get("revenue_90d"),
    );
    let (last_trial, last_sub, brand90) = (
        get("days_since_last_trial"),
        get("days_since_last_subscribe"),
        get("brand_90d"),
    );
    let (sat, complain90, unresolved) = (
        get("satisfaction_mean_90d"),
        get("complain_90d"),
        get("complaints_unresolved_90d"),
    );
    let zero = |v: &Option<f64>| v.unwrap_or(0.0);
    let footprints = FootprintReader::new(batch);
    // Touchpoints from the history the model learned, or else from the catalogue by
    // the categories each subscriber used.
    let recommender = Recommender::new(
        &artifact.touchpoints,
        table.touchpoint_use.as_ref(),
        params.max_touchpoints,
    );
    let category_use: Vec<Vec<Option<f64>>> = match recommender {
        Some(_) => Vec::new(),
        None => Category::ALL
            .iter()
            .map(|c| get(&format!("{c}_90d")))
            .collect(),
    };

    let mut stage_out = Vec::with_capacity(n);
    let mut action_out = Vec::with_capacity(n);
    let mut driver_out = Vec::with_capacity(n);
    let mut evidence_out = StringBuilder::new();
    let mut drivers_without_evidence = 0;
    let mut reasons_out = ListBuilder::new(StringBuilder::new());
    let mut touch_out = ListBuilder::new(StringBuilder::new());
    for i in 0..n {
        let stage = LifecycleStage::classify(&LifecycleFacts {
            tenure_days: zero(&tenure[i]),
            use_90d: zero(&use90[i]),
            subscribe_90d: zero(&sub90[i]),
            revenue_90d: revenue90[i],
            trial_90d: zero(&trial90[i]),
            days_since_last_trial: last_trial[i],
            days_since_last_subscribe: last_sub[i],
            brand_90d: zero(&brand90[i]),
            satisfaction_mean_90d: sat[i],
            complain_90d: zero(&complain90[i]),
            complaints_unresolved_90d: zero(&unresolved[i]),
        });
        let diagnosis = footprints.diagnose(i);
        let driver = diagnosis.driver;
        drivers_without_evidence += !diagnosis.has_evidence() as usize;
        evidence_out.append_value(diagnosis.evidence());
        let high_risk = deciles[i] <= params.high_risk_deciles as i32;
        let action = LoyaltyAction::choose(segments[i], high_risk, stage);
        for r in &reasons[i] {
            reasons_out.values().append_value(r.to_string());
        }
        reasons_out.append(true);
        let touchpoints = match &recommender {
            Some(r) => r.recommend(i, action, driver),
            None => {
                let used: [f64; 4] = std::array::from_fn(|c| {
                    category_use
                        .get(c)
                        .and_then(|column| column.get(i))
                        .map_or(0.0, zero)
                });
                recommend(action, driver, &used, params.max_touchpoints)
            }
        };
        for t in touchpoints {
            touch_out.values().append_value(t);
        }
        touch_out.append(true);
        stage_out.push(stage.name());
        action_out.push(action.name());
        driver_out.push(driver.name());
    }

    let strings = |v: Vec<&str>| Arc::new(StringArray::from(v)) as ArrayRef;
    let seg_names = |v: &[ValueSegment]| strings(v.iter().map(|s| s.name()).collect());
    let ids = batch.column(0).clone();
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("subscriber_id", ids),
        (
            "as_of",
            Arc::new(Date32Array::from(vec![table.as_of.days(); n])),
        ),
        (
            "churn_probability",
            Arc::new(Float64Array::from(probs.clone())),
        ),
        ("risk_decile", Arc::new(Int32Array::from(deciles))),
        ("profit_90d", Arc::new(Float64Array::from(profit.clone()))),
        ("value_segment", seg_names(&segments)),
        ("predicted_value_segment", seg_names(&predicted)),
        (
            "value_at_risk",
            Arc::new(Float64Array::from(value_at_risk.clone())),
        ),
        ("churn_driver", strings(driver_out.clone())),
        ("driver_evidence", Arc::new(evidence_out.finish())),
        ("reasons", Arc::new(reasons_out.finish())),
        ("lifecycle_stage", strings(stage_out)),
        ("loyalty_action", strings(action_out.clone())),
        ("recommended_touchpoints", Arc::new(touch_out.finish())),
        (
            "model_version",
            strings(vec![artifact.model_version.as_str(); n]),
        ),
        (
            "targeted",
            Arc::new(BooleanArray::from_iter(
                gains.iter().map(|g| Some(g.is_some())),
            )),
        ),
        ("expected_return", Arc::new(Float64Array::from(gains))),
    ];
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, c)| {
            let nullable = c.null_count() > 0
                || matches!(c.data_type(), DataType::List(_) | DataType::Float64);
            Field::new(*name, c.data_type().clone(), nullable)
        })
        .collect();
    let out = RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns.into_iter().map(|(_, c)| c).collect(),
    )
    .map_err(|e| ModelError::Data(e.to_string()))?;

    let count = |names: &[&str], all: &[&str]| -> Vec<(String, usize)> {
        all.iter()
            .map(|a| (a.to_string(), names.iter().filter(|n| *n == a).count()))
            .collect()
    };
    let summary = ScoreSummary {
        rows: n,
        mean_churn_probability: if n > 0 {
            probs.iter().sum::<f64>() / n as f64
        } else {
            0.0
        },
        value_at_risk: value_at_risk.iter().sum(),
        segments: std::array::from_fn(|s| segments.iter().filter(|x| x.index() == s).count()),
        actions: count(&action_out, &LoyaltyAction::ALL.map(|a| a.name())),
        drivers: count(&driver_out, &ChurnDriver::ALL.map(|d| d.name())),
        drivers_without_evidence,
        whale: WhaleCurve::from_profit(&profit),
        targeting,
    };
    Ok(Scored {
        batch: out,
        summary,
    })
}

#[cfg(test)]
mod tests {
    use super::risk_deciles;

    #[test]
    fn targeting_takes_the_best_gains_within_budget() {
        let params = super::ScoreParams {
            budget: Some(25.0),
            offer_cost: 10.0,
            save_rate: 0.5,
            ..Default::default()
        };
        let (gains, t) = super::target(&[100.0, 10.0, 300.0, 50.0], &params);
        assert_eq!(t.targeted, 2);
        assert_eq!(gains, vec![Some(40.0), None, Some(140.0), None]);
        assert_eq!(t.spend, 20.0);
        assert_eq!(t.expected_return, 180.0);
        let none = super::ScoreParams::default();
        assert_eq!(super::target(&[100.0], &none).1.targeted, 0);
    }

    #[test]
    fn deciles_put_the_riskiest_tenth_first() {
        let probs: Vec<f64> = (0..100).map(|i| i as f64 / 100.0).collect();
        let d = risk_deciles(&probs);
        assert_eq!(d[99], 1);
        assert_eq!(d[0], 10);
        assert_eq!(d.iter().filter(|&&x| x == 1).count(), 10);
    }
}
