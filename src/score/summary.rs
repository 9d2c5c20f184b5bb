//! What scoring produced besides the table: counts for the summary and the manifest.

use serde::Serialize;

use crate::segment::WhaleCurve;
use crate::segment::driver::PRIOR;

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
