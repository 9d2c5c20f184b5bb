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
pub mod params;
pub mod population;
pub mod summary;
pub mod ties;

use arrow::array::RecordBatch;

use crate::features::FeatureTable;
use crate::model::ModelError;
pub use crate::model::metrics::risk_deciles;
use crate::train::artifact::ModelArtifact;
use kernel::Kernel;
pub use params::ScoreParams;
use population::{Population, PopulationPart, TieKeys};
pub use summary::{ScoreSummary, Targeting};

/// Chooses whom to target: each offer costs `offer_cost` and is expected to save
/// `save_rate × value_at_risk`; the subscribers with the largest positive net gain are
/// taken, best first, until the budget runs out. With equal costs this greedy choice
/// maximises the expected saved profit within the budget. Returns the net gain of each
/// targeted subscriber (`None` for the others) and the totals.
/// Ties are broken by `keys` (the subscribers' ids).
pub fn target(
    value_at_risk: &[f64],
    keys: &TieKeys,
    params: &ScoreParams,
) -> (Vec<Option<f64>>, Targeting) {
    let mut out = vec![None; value_at_risk.len()];
    let (gain, order, taken, t) = population::target_ranking(value_at_risk, keys, params);
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
    let population = Population::gather(vec![part], params);
    let finished = finish::finish(
        &table.batch,
        &kernel,
        usage.map(|u| u.uses.as_slice()),
        &population.cutoffs,
        population.percentiles(&kernel.profit),
        artifact,
        params,
        table.as_of,
    )?;
    Ok(Scored {
        batch: finished.batch,
        summary: population.summary(&finished.tally),
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
        let keys = super::TieKeys::Int(vec![4, 3, 2, 1]);
        let (gains, t) = super::target(&[100.0, 10.0, 300.0, 50.0], &keys, &params);
        assert_eq!(t.targeted, 2);
        assert_eq!(gains, vec![Some(40.0), None, Some(140.0), None]);
        assert_eq!(t.spend, 20.0);
        assert_eq!(t.expected_return, 180.0);
        let none = super::ScoreParams::default();
        let one = super::TieKeys::Int(vec![1]);
        assert_eq!(super::target(&[100.0], &one, &none).1.targeted, 0);
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
