//! The population half of scoring: the steps that need a few columns of every subscriber
//! and produce explicit cut-offs, which [`super::finish`] then applies row by row.
//!
//! | step | gathers | produces |
//! |---|---|---|
//! | 80/20/30 value segments | `profit_90d`, position | the first subscriber of `middle50` and of `bottom30` in the profit ranking ([`ProfitCut`]) |
//! | risk deciles | `churn_probability`, position | the first subscriber of deciles 2–10 in the risk ranking ([`ScoreCut`]) |
//! | budgeted targeting | `value_at_risk`, position | the last subscriber targeted in the gain ranking, and the totals |
//! | the forecast's profit percentile | `profit_90d` | the sorted known profits ([`ProfitRanks`]) |
//! | typical footprint (drivers) | finite `complain_30d`, `shopping_30d`, `use_trend` | their medians ([`Typical`]) |
//! | touchpoint catalogue | per touchpoint: used by anyone, cost sums | [`TouchpointCatalogue`] |
//! | summary | all of the above | whale curve, mean probability, value at risk |
//!
//! **Tie-break key.** Every ranking breaks ties by the subscriber's *position*: its row
//! number in the subscriber input (the files in the order they are resolved, every row
//! counted, active or not). That is the order the unsharded pipeline always used (a
//! stable sort over rows in file order), so the bytes are today's; it does not depend
//! on how the subscribers are split into shards, so any `--shards K` gives the same
//! cut-offs. Rankings: profit from most to least (by `f64::total_cmp`, unknown last);
//! probability and net gain from highest to lowest (by `f64::total_cmp`).
//!
//! Sums that are floating point (mean probability, value at risk, expected return) are
//! taken in the canonical order (by position, or by rank), as the unsharded pipeline did.

use std::cmp::Ordering;

use arrow::array::RecordBatch;
use serde::Serialize;

use super::kernel::Kernel;
use super::params::ScoreParams;
use super::summary::{ScoreSummary, Targeting};
use crate::features::TouchpointUsage;
use crate::segment::driver::Typical;
use crate::segment::touchpoints::TouchpointCatalogue;
use crate::segment::value::{ProfitRanks, cmp_profit, profit_key, profit_ranking, segment_sizes};
use crate::segment::{ChurnDriver, LoyaltyAction, ValueSegment, WhaleCurve};

/// A place in the profit ranking: a profit (unknown ranks last) and the position that
/// breaks its ties.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ProfitCut {
    pub profit: Option<f64>,
    pub position: u64,
}

impl ProfitCut {
    /// Whether `(profit, position)` ranks before this place.
    fn is_after(&self, profit: Option<f64>, position: u64) -> bool {
        cmp_profit(profit, self.profit).then(position.cmp(&self.position)) == Ordering::Less
    }
}

/// A place in a ranking from highest to lowest value (probability, net gain), ties
/// broken by position.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ScoreCut {
    pub value: f64,
    pub position: u64,
}

impl ScoreCut {
    fn order(value: f64, position: u64, other: &ScoreCut) -> Ordering {
        other
            .value
            .total_cmp(&value)
            .then(position.cmp(&other.position))
    }
}

/// What one shard (or a whole table) contributes to the population steps: a few
/// columns of each of its subscribers, and its touchpoint catalogue.
#[derive(Debug, Clone, Default)]
pub struct PopulationPart {
    pub positions: Vec<u64>,
    pub probs: Vec<f64>,
    pub profit: Vec<Option<f64>>,
    pub value_at_risk: Vec<f64>,
    /// The finite values of the typical footprint's columns.
    pub typical: [Vec<f64>; 3],
    pub catalogue: Option<TouchpointCatalogue>,
}

impl PopulationPart {
    /// The part of the rows a kernel scored from `features` (with their touchpoint use).
    pub fn of(kernel: &Kernel, features: &RecordBatch, usage: Option<&TouchpointUsage>) -> Self {
        PopulationPart {
            positions: kernel.positions.clone(),
            probs: kernel.probs.clone(),
            profit: kernel.profit.clone(),
            value_at_risk: kernel.value_at_risk.clone(),
            typical: Typical::values_of(features),
            catalogue: usage.map(TouchpointCatalogue::of),
        }
    }
}

/// The explicit cut-offs and totals of the population steps.
#[derive(Debug, Clone)]
pub struct Cutoffs {
    pub rows: usize,
    /// The first subscriber of `middle50` and of `bottom30` (`None`: the segment is empty).
    pub middle50_from: Option<ProfitCut>,
    pub bottom30_from: Option<ProfitCut>,
    /// The first subscriber of risk deciles 2 to 10 (`None`: that decile is empty).
    pub deciles_from: [Option<ScoreCut>; 9],
    /// The last subscriber targeted (`None`: nobody is).
    pub targeted_through: Option<ScoreCut>,
    pub profit_ranks: ProfitRanks,
    pub typical: Typical,
    pub catalogue: Option<TouchpointCatalogue>,
    pub targeting: Targeting,
    pub whale: WhaleCurve,
    pub mean_churn_probability: f64,
    pub value_at_risk: f64,
}

/// Subscribers in ranking order of net gain (`save_rate × value_at_risk − offer_cost`):
/// the candidates (positive gain), best first, ties in input order; how many the budget
/// buys; and the totals. One rule for [`super::target`] and the cut-off.
pub(super) fn target_ranking(
    value_at_risk: &[f64],
    params: &ScoreParams,
) -> (Vec<f64>, Vec<usize>, usize, Targeting) {
    let mut t = Targeting {
        budget: params.budget,
        offer_cost: params.offer_cost,
        save_rate: params.save_rate,
        ..Default::default()
    };
    let Some(budget) = params.budget else {
        return (Vec::new(), Vec::new(), 0, t);
    };
    let gain: Vec<f64> = value_at_risk.iter().map(|v| gain_of(*v, params)).collect();
    let mut order: Vec<usize> = (0..gain.len()).filter(|&i| gain[i] > 0.0).collect();
    order.sort_by(|&a, &b| gain[b].total_cmp(&gain[a]));
    let mut taken = 0;
    for &i in &order {
        if t.spend + params.offer_cost > budget {
            break;
        }
        t.spend += params.offer_cost;
        t.targeted += 1;
        t.expected_return += gain[i];
        taken += 1;
    }
    t.expected_saved_profit = t.expected_return + t.spend;
    (gain, order, taken, t)
}

/// The expected net gain of an offer to a subscriber with this value at risk.
pub fn gain_of(value_at_risk: f64, params: &ScoreParams) -> f64 {
    params.save_rate * value_at_risk - params.offer_cost
}

impl Cutoffs {
    /// Gathers the parts of every shard (in any order) and runs the population steps.
    pub fn gather(parts: Vec<PopulationPart>, params: &ScoreParams) -> Cutoffs {
        let mut all = PopulationPart::default();
        let mut catalogue: Option<TouchpointCatalogue> = None;
        for part in parts {
            all.positions.extend(part.positions);
            all.probs.extend(part.probs);
            all.profit.extend(part.profit);
            all.value_at_risk.extend(part.value_at_risk);
            for (a, b) in all.typical.iter_mut().zip(part.typical) {
                a.extend(b);
            }
            match (&mut catalogue, part.catalogue) {
                (Some(a), Some(b)) => a.absorb(&b),
                (None, Some(b)) => catalogue = Some(b),
                _ => {}
            }
        }
        // canonical order: by position
        let mut by_position: Vec<usize> = (0..all.positions.len()).collect();
        by_position.sort_unstable_by_key(|&i| all.positions[i]);
        let permute = |v: &[f64]| by_position.iter().map(|&i| v[i]).collect::<Vec<f64>>();
        let probs = permute(&all.probs);
        let value_at_risk = permute(&all.value_at_risk);
        let profit: Vec<Option<f64>> = by_position.iter().map(|&i| all.profit[i]).collect();
        let positions: Vec<u64> = by_position.iter().map(|&i| all.positions[i]).collect();
        drop(all.probs);
        drop(all.value_at_risk);
        drop(all.profit);
        let n = positions.len();

        let order = profit_ranking(&profit);
        let [top, middle, _] = segment_sizes(n);
        let profit_cut = |rank: usize| {
            order.get(rank).map(|&i| ProfitCut {
                profit: profit_key(profit[i]),
                position: positions[i],
            })
        };
        let (middle50_from, bottom30_from) = (profit_cut(top), profit_cut(top + middle));
        drop(order);

        let mut risk: Vec<usize> = (0..n).collect();
        risk.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
        let nn = n.max(1);
        let deciles_from = std::array::from_fn(|d| {
            // the first rank of decile d + 2: rank × 10 / n ≥ d + 1
            let rank = ((d + 1) * nn).div_ceil(10);
            risk.get(rank).map(|&i| ScoreCut {
                value: probs[i],
                position: positions[i],
            })
        });
        drop(risk);

        let (gain, candidates, taken, targeting) = target_ranking(&value_at_risk, params);
        let targeted_through = taken
            .checked_sub(1)
            .and_then(|last| candidates.get(last))
            .map(|&i| ScoreCut {
                value: gain[i],
                position: positions[i],
            });

        Cutoffs {
            rows: n,
            middle50_from,
            bottom30_from,
            deciles_from,
            targeted_through,
            profit_ranks: ProfitRanks::of(&profit),
            typical: Typical::from_values(all.typical),
            catalogue,
            targeting,
            whale: WhaleCurve::from_profit(&profit),
            mean_churn_probability: if n > 0 {
                probs.iter().sum::<f64>() / n as f64
            } else {
                0.0
            },
            value_at_risk: value_at_risk.iter().sum(),
        }
    }

    /// The value segment of a subscriber with this profit and position.
    pub fn segment(&self, profit: Option<f64>, position: u64) -> ValueSegment {
        let before = |cut: &Option<ProfitCut>| cut.is_none_or(|c| c.is_after(profit, position));
        if before(&self.middle50_from) {
            ValueSegment::Top20
        } else if before(&self.bottom30_from) {
            ValueSegment::Middle50
        } else {
            ValueSegment::Bottom30
        }
    }

    /// The risk decile (1 = riskiest) of a subscriber with this probability and position.
    pub fn decile(&self, prob: f64, position: u64) -> i32 {
        1 + self
            .deciles_from
            .iter()
            .flatten()
            .filter(|c| ScoreCut::order(prob, position, c) != Ordering::Less)
            .count() as i32
    }

    /// Whether a subscriber with this net gain and position is targeted.
    pub fn targeted(&self, gain: f64, position: u64) -> bool {
        gain > 0.0
            && self
                .targeted_through
                .is_some_and(|c| ScoreCut::order(gain, position, &c) != Ordering::Greater)
    }

    /// The scoring summary: these totals and the finishing pass's counts.
    pub fn summary(&self, tally: &Tally) -> ScoreSummary {
        let named = |names: &[&str], counts: &[usize]| -> Vec<(String, usize)> {
            names
                .iter()
                .zip(counts)
                .map(|(a, n)| (a.to_string(), *n))
                .collect()
        };
        ScoreSummary {
            rows: self.rows,
            mean_churn_probability: self.mean_churn_probability,
            value_at_risk: self.value_at_risk,
            segments: tally.segments,
            actions: named(&LoyaltyAction::ALL.map(|a| a.name()), &tally.actions),
            drivers: named(&ChurnDriver::ALL.map(|d| d.name()), &tally.drivers),
            drivers_without_evidence: tally.drivers_without_evidence,
            whale: self.whale.clone(),
            targeting: self.targeting.clone(),
        }
    }
}

/// What the finishing pass counted, summed over shards.
#[derive(Debug, Clone, PartialEq)]
pub struct Tally {
    pub segments: [usize; 3],
    /// In the order of [`LoyaltyAction::ALL`] and [`ChurnDriver::ALL`].
    pub actions: Vec<usize>,
    pub drivers: Vec<usize>,
    pub drivers_without_evidence: usize,
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            segments: [0; 3],
            actions: vec![0; LoyaltyAction::ALL.len()],
            drivers: vec![0; ChurnDriver::ALL.len()],
            drivers_without_evidence: 0,
        }
    }
}

impl Tally {
    pub fn absorb(&mut self, other: &Tally) {
        for (a, b) in self.segments.iter_mut().zip(&other.segments) {
            *a += b;
        }
        for (a, b) in self.actions.iter_mut().zip(&other.actions) {
            *a += b;
        }
        for (a, b) in self.drivers.iter_mut().zip(&other.drivers) {
            *a += b;
        }
        self.drivers_without_evidence += other.drivers_without_evidence;
    }
}
