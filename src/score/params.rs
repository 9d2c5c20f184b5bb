//! Scoring settings: their defaults and their checks, written once for the flags and the
//! pipeline TOML.

use serde::{Deserialize, Serialize};

use crate::model::{InvalidParams, ParamProblem};

/// Scoring settings (from the pipeline config or flags; as JSON, with every field
/// optional, for an engine's tasks).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
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
