//! Scoring (SPEC §6): apply the trained models to the snapshot at `as_of` and derive
//! every output column — risk, deciles, value segments and their forecast, value at
//! risk, reasons, drivers and their evidence, lifecycle stage, loyalty action and
//! touchpoints.
//!
//! Scoring is a map, a small global step and a second map, so that it can run shard by
//! shard (`--shards K`) with the same answer as on the whole table:
//! - [`kernel`]: per-subscriber work (probability, reasons, lifecycle, profit, value at
//!   risk), one row at a time;
//! - [`population`]: the steps that need a few columns of everyone (the exact 20/50/30
//!   cut-offs, risk deciles, budgeted targeting, the typical footprint behind drivers,
//!   the touchpoint catalogue), producing explicit cut-offs with their tie-break keys;
//! - [`finish`]: applies the cut-offs to each row (value segment, forecast, risk decile,
//!   driver, loyalty action, touchpoints, targeting).
//!
//! [`score`] runs the three over one in-memory table.

pub mod finish;
pub mod kernel;
pub mod population;

use arrow::array::RecordBatch;
use serde::Serialize;

use crate::features::FeatureTable;
pub use crate::model::metrics::risk_deciles;
use crate::model::{InvalidParams, ModelError, ParamProblem};
use crate::segment::WhaleCurve;
use crate::segment::driver::PRIOR;
use crate::train::artifact::ModelArtifact;
use kernel::Kernel;
use population::{Cutoffs, PopulationPart};

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
    let (gain, order, taken, t) = population::target_ranking(value_at_risk, params);
    for &i in order.iter().take(taken) {
        out[i] = Some(gain[i]);
    }
    (out, t)
}

/// The scored table and its summary.
pub struct Scored {
    pub batch: RecordBatch,
    pub summary: ScoreSummary,
}

/// Scores a feature table with a trained artifact: the kernel, the population steps
/// and the finishing pass over one in-memory table.
pub fn score(
    table: &FeatureTable,
    artifact: &ModelArtifact,
    params: &ScoreParams,
) -> Result<Scored, ModelError> {
    params.check()?;
    let kernel = Kernel::run(&table.batch, table.positions.clone(), artifact, params)?;
    let usage = table.touchpoint_use.as_ref();
    let part = PopulationPart::of(&kernel, &table.batch, usage);
    let cutoffs = Cutoffs::gather(vec![part], params);
    let finished = finish::finish(
        &table.batch,
        &kernel,
        usage.map(|u| u.uses.as_slice()),
        &cutoffs,
        artifact,
        params,
        table.as_of,
    )?;
    Ok(Scored {
        batch: finished.batch,
        summary: cutoffs.summary(&finished.tally),
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
