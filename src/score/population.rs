//! The population half of scoring: the steps that need a few columns of every subscriber
//! and produce explicit cut-offs, which [`super::finish`] then applies row by row.
//!
//! | step | gathers | produces |
//! |---|---|---|
//! | 80/20/30 value segments | `profit_90d`, key | the first subscriber of `middle50` and of `bottom30` in the profit ranking ([`ProfitCut`]) |
//! | risk deciles | `churn_probability`, key | the first subscriber of deciles 2–10 in the risk ranking ([`ScoreCut`]) |
//! | budgeted targeting | `value_at_risk`, key | the last subscriber targeted in the gain ranking, and the totals |
//! | the forecast's profit percentile | `profit_90d` | the sorted known profits ([`ProfitRanks`]): each subscriber's percentile |
//! | typical footprint (drivers) | finite `complain_30d`, `shopping_30d`, `use_trend` | their medians ([`Typical`]) |
//! | touchpoint catalogue | per touchpoint: used by anyone, cost sums | [`TouchpointCatalogue`] |
//! | summary | all of the above | whale curve, mean probability, value at risk |
//!
//! **Tie-break key.** Every ranking breaks ties by the subscriber's `subscriber_id`
//! ([`TieKey`]): integer ids by value, string ids by their UTF-8 bytes — the order
//! Spark's `orderBy` gives a `bigint` and a `string` column. Nothing about where a row
//! sits in the input (which an engine such as Spark cannot know, and which differs
//! between a task and its retry) decides a segment, a decile or a target, so any
//! `--shards K`, and any engine that ranks the same way, gives the same cut-offs.
//! Rankings: profit from most to least (by `f64::total_cmp` after `-0.0` becomes `0.0`,
//! as Spark compares doubles; unknown — null or NaN — last); probability and net gain from
//! highest to lowest (by `f64::total_cmp`); the key ascending within a tie.
//!
//! **Computed elsewhere.** [`Cutoffs`] is what the finishing pass needs besides each
//! subscriber's row and profit percentile, and serialises both ways (serde, JSON).
//! [`Population::gather`] computes it from the gathered columns of every shard; another
//! engine sorts on its own, reads the subscribers at the [`CutRanks`] (and the values at
//! the [`median_ranks`] of the footprint columns) and builds the same cut-offs with
//! [`Cutoffs::from_reads`]; the profit percentile is then a column it computes per
//! subscriber ([`ProfitRanks::percentile_of_span`]).
//!
//! Sums that are floating point (mean probability, value at risk) are taken in the
//! canonical order (by position in the input) and the expected return in rank order, as
//! the unsharded pipeline always did: they are the summary's, not any row's.

use std::cmp::Ordering;

use arrow::array::RecordBatch;
use serde::{Deserialize, Serialize};

use super::kernel::Kernel;
use super::params::ScoreParams;
use super::summary::{ScoreSummary, Targeting};
pub use super::ties::{TieKey, TieKeys};
use crate::features::TouchpointUsage;
use crate::json_f64::ExactF64;
use crate::model::ModelError;
use crate::segment::driver::{TYPICAL_COLUMNS, Typical};
use crate::segment::touchpoints::TouchpointCatalogue;
use crate::segment::value::{ProfitRanks, cmp_profit, profit_key, segment_sizes};
use crate::segment::{ChurnDriver, LoyaltyAction, ValueSegment, WhaleCurve};

/// A place in the profit ranking: a profit (unknown ranks last) and the key that breaks
/// its ties.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfitCut {
    #[serde(with = "crate::json_f64::option")]
    pub profit: Option<f64>,
    pub key: TieKey,
}

impl ProfitCut {
    /// Whether row `i` of `keys`, with this profit, ranks before this place.
    fn is_after(&self, profit: Option<f64>, keys: &TieKeys, i: usize) -> bool {
        cmp_profit(profit, self.profit).then_with(|| keys.cmp_key(i, &self.key)) == Ordering::Less
    }
}

/// A place in a ranking from highest to lowest value (probability, net gain), ties
/// broken by key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreCut {
    #[serde(with = "crate::json_f64")]
    pub value: f64,
    pub key: TieKey,
}

impl ScoreCut {
    /// The order of row `i` of `keys`, with this value, against this place.
    fn order(&self, value: f64, keys: &TieKeys, i: usize) -> Ordering {
        self.value
            .total_cmp(&value)
            .then_with(|| keys.cmp_key(i, &self.key))
    }
}

/// What one shard (or a whole table) contributes to the population steps: a few
/// columns of each of its subscribers, and its touchpoint catalogue.
#[derive(Debug, Clone, Default)]
pub struct PopulationPart {
    pub positions: Vec<u64>,
    pub keys: TieKeys,
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
            keys: kernel.keys.clone(),
            probs: kernel.probs.clone(),
            profit: kernel.profit.clone(),
            value_at_risk: kernel.value_at_risk.clone(),
            typical: Typical::values_of(features),
            catalogue: usage.map(TouchpointCatalogue::of),
        }
    }
}

/// The ranks (from 0, best first) at which the cut-offs read each ranking, for a
/// population of `rows` subscribers of whom `candidates` have a positive net gain: one
/// rule for [`Population::gather`] and for an engine that ranks on its own (Spark). A
/// rank at or past the end of its ranking reads nobody (that segment or decile is empty).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CutRanks {
    /// The first of `middle50` and of `bottom30` in the profit ranking.
    pub profit: [usize; 2],
    /// The first of risk deciles 2 to 10 in the risk ranking.
    pub risk: [usize; 9],
    /// The last targeted in the gain ranking (`None`: nobody is).
    pub gain: Option<usize>,
}

impl CutRanks {
    pub fn of(rows: usize, candidates: usize, params: &ScoreParams) -> CutRanks {
        let [top, middle, _] = segment_sizes(rows);
        let nn = rows.max(1);
        CutRanks {
            profit: [top, top + middle],
            // the first rank of decile d + 2: rank × 10 / n ≥ d + 1
            risk: std::array::from_fn(|d| ((d + 1) * nn).div_ceil(10)),
            gain: budget_takes(candidates, params).0.checked_sub(1),
        }
    }
}

/// The ranks (from 0, in ascending order) whose values make the median of `n` values:
/// the middle one, and the one below it when `n` is even.
pub fn median_ranks(n: usize) -> Vec<usize> {
    match n {
        0 => Vec::new(),
        n if n % 2 == 1 => vec![n / 2],
        n => vec![n / 2 - 1, n / 2],
    }
}

/// How many of `candidates` (best first) the budget buys, and what they cost: offers are
/// taken while the next one still fits.
pub fn budget_takes(candidates: usize, params: &ScoreParams) -> (usize, f64) {
    let Some(budget) = params.budget else {
        return (0, 0.0);
    };
    let (mut taken, mut spend) = (0, 0.0);
    while taken < candidates && spend + params.offer_cost <= budget {
        spend += params.offer_cost;
        taken += 1;
    }
    (taken, spend)
}

/// The explicit cut-offs of the population steps: everything the finishing pass needs
/// besides each subscriber's own row and profit percentile. Serialisable both ways
/// (JSON), so that another engine can compute them ([`Cutoffs::from_reads`]) and hand
/// them to [`super::finish`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cutoffs {
    pub rows: usize,
    /// The first subscriber of `middle50` and of `bottom30` (`None`: the segment is empty).
    pub middle50_from: Option<ProfitCut>,
    pub bottom30_from: Option<ProfitCut>,
    /// The first subscriber of risk deciles 2 to 10 (`None`: that decile is empty).
    pub deciles_from: [Option<ScoreCut>; 9],
    /// The last subscriber targeted (`None`: nobody is).
    pub targeted_through: Option<ScoreCut>,
    pub typical: Typical,
    pub catalogue: Option<TouchpointCatalogue>,
}

/// What an engine that ranks on its own read at the [`CutRanks`] (and the [`median_ranks`]
/// of the typical footprint's finite values), for [`Cutoffs::from_reads`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CutReads {
    pub rows: usize,
    /// The subscribers at `CutRanks::profit` (profit as ranked: unknown is `None`).
    pub profit: [Option<ProfitCut>; 2],
    pub risk: [Option<ScoreCut>; 9],
    /// The subscriber at `CutRanks::gain`, with its net gain.
    pub gain: Option<ScoreCut>,
    /// Per column of [`TYPICAL_COLUMNS`], its finite values at [`median_ranks`].
    pub typical: [Vec<ExactF64>; 3],
    /// Every shard's touchpoint catalogue, in any order.
    pub catalogues: Vec<TouchpointCatalogue>,
}

/// The scoring population: its cut-offs, every known profit (for each subscriber's
/// profit percentile, which the forecast reads) and the summary's totals.
#[derive(Debug, Clone)]
pub struct Population {
    pub cutoffs: Cutoffs,
    pub profit_ranks: ProfitRanks,
    pub targeting: Targeting,
    pub whale: WhaleCurve,
    pub mean_churn_probability: f64,
    pub value_at_risk: f64,
}

/// The candidates of budgeted targeting (positive net gain `save_rate × value_at_risk −
/// offer_cost`), best first, ties by key; how many the budget buys; and the totals. One
/// rule for [`super::target`] and the cut-off.
pub(super) fn target_ranking(
    value_at_risk: &[f64],
    keys: &TieKeys,
    params: &ScoreParams,
) -> (Vec<f64>, Vec<usize>, usize, Targeting) {
    let mut t = Targeting {
        budget: params.budget,
        offer_cost: params.offer_cost,
        save_rate: params.save_rate,
        ..Default::default()
    };
    if params.budget.is_none() {
        return (Vec::new(), Vec::new(), 0, t);
    }
    let gain: Vec<f64> = value_at_risk.iter().map(|v| gain_of(*v, params)).collect();
    let mut order: Vec<usize> = (0..gain.len()).filter(|&i| gain[i] > 0.0).collect();
    order.sort_by(|&a, &b| {
        gain[b]
            .total_cmp(&gain[a])
            .then_with(|| keys.cmp_rows(a, b))
    });
    let (taken, spend) = budget_takes(order.len(), params);
    t.targeted = taken;
    t.spend = spend;
    for &i in &order[..taken] {
        t.expected_return += gain[i];
    }
    t.expected_saved_profit = t.expected_return + t.spend;
    (gain, order, taken, t)
}

/// The expected net gain of an offer to a subscriber with this value at risk.
pub fn gain_of(value_at_risk: f64, params: &ScoreParams) -> f64 {
    params.save_rate * value_at_risk - params.offer_cost
}

impl Population {
    /// Gathers the parts of every shard (in any order) and runs the population steps.
    pub fn gather(parts: Vec<PopulationPart>, params: &ScoreParams) -> Population {
        let mut all = PopulationPart::default();
        let mut catalogues = Vec::new();
        for part in parts {
            all.positions.extend(part.positions);
            all.keys.extend(part.keys);
            all.probs.extend(part.probs);
            all.profit.extend(part.profit);
            all.value_at_risk.extend(part.value_at_risk);
            for (a, b) in all.typical.iter_mut().zip(part.typical) {
                a.extend(b);
            }
            catalogues.extend(part.catalogue);
        }
        let (keys, n) = (&all.keys, all.probs.len());
        let ranks = |order: &[usize], at: usize| order.get(at).copied();

        let mut by_profit: Vec<usize> = (0..n).collect();
        by_profit.sort_by(|&a, &b| {
            cmp_profit(all.profit[a], all.profit[b]).then_with(|| keys.cmp_rows(a, b))
        });
        let mut by_risk: Vec<usize> = (0..n).collect();
        by_risk.sort_by(|&a, &b| {
            let (pa, pb) = (all.probs[a], all.probs[b]);
            pb.total_cmp(&pa).then_with(|| keys.cmp_rows(a, b))
        });
        let (gain, candidates, _, targeting) = target_ranking(&all.value_at_risk, keys, params);
        let at = CutRanks::of(n, candidates.len(), params);
        let profit_cut = |rank: usize| {
            ranks(&by_profit, rank).map(|i| ProfitCut {
                profit: profit_key(all.profit[i]),
                key: keys.key(i),
            })
        };
        let score_cut = |order: &[usize], rank: usize, value: &[f64]| {
            ranks(order, rank).map(|i| ScoreCut {
                value: value[i],
                key: keys.key(i),
            })
        };
        let cutoffs = Cutoffs {
            rows: n,
            middle50_from: profit_cut(at.profit[0]),
            bottom30_from: profit_cut(at.profit[1]),
            deciles_from: at.risk.map(|r| score_cut(&by_risk, r, &all.probs)),
            targeted_through: at.gain.and_then(|r| score_cut(&candidates, r, &gain)),
            typical: Typical::from_values(all.typical),
            catalogue: merge_catalogues(catalogues),
        };
        drop((by_profit, by_risk, gain, candidates));

        // Sums that are floating point are taken in the canonical order (by position), as
        // the unsharded pipeline always did, so that the summary's bytes do not change.
        let mut by_position: Vec<usize> = (0..n).collect();
        by_position.sort_unstable_by_key(|&i| all.positions[i]);
        let profit: Vec<Option<f64>> = by_position.iter().map(|&i| all.profit[i]).collect();
        let sum = |v: &[f64]| by_position.iter().map(|&i| v[i]).sum::<f64>();
        Population {
            profit_ranks: ProfitRanks::of(&profit),
            whale: WhaleCurve::from_profit(&profit),
            targeting,
            mean_churn_probability: if n > 0 {
                sum(&all.probs) / n as f64
            } else {
                0.0
            },
            value_at_risk: sum(&all.value_at_risk),
            cutoffs,
        }
    }

    /// Each profit's percentile in the population (the forecast's profit rank).
    pub fn percentiles(&self, profit: &[Option<f64>]) -> Vec<f64> {
        profit
            .iter()
            .map(|p| self.profit_ranks.percentile(*p))
            .collect()
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
            rows: self.cutoffs.rows,
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

/// The catalogues of every shard summed (`None` without touchpoint use).
fn merge_catalogues(parts: Vec<TouchpointCatalogue>) -> Option<TouchpointCatalogue> {
    let mut parts = parts.into_iter();
    let mut all = parts.next()?;
    for part in parts {
        all.absorb(&part);
    }
    Some(all)
}

impl Cutoffs {
    /// The cut-offs from what an engine read at the [`CutRanks`]: the same values
    /// [`Population::gather`] finds when the reads are right.
    pub fn from_reads(reads: CutReads) -> Cutoffs {
        let [middle50_from, bottom30_from] = reads.profit;
        let median = |k: usize| match reads.typical[k].as_slice() {
            [] => TYPICAL_COLUMNS[k].1,
            [middle] => middle.0,
            // the mean of the two middle values, as `model::stats::median`
            [lower, middle, ..] => (lower.0 + middle.0) / 2.0,
        };
        Cutoffs {
            rows: reads.rows,
            middle50_from: middle50_from.map(|c| ProfitCut {
                profit: profit_key(c.profit),
                key: c.key,
            }),
            bottom30_from: bottom30_from.map(|c| ProfitCut {
                profit: profit_key(c.profit),
                key: c.key,
            }),
            typical: Typical {
                complaints_30d: median(0),
                shopping_30d: median(1),
                use_trend: median(2),
            },
            deciles_from: reads.risk,
            targeted_through: reads.gain,
            catalogue: merge_catalogues(reads.catalogues),
        }
    }

    /// Checks that the cut-offs' keys are of the kind of `keys` (integers or strings).
    pub fn check_keys(&self, keys: &TieKeys) -> Result<(), ModelError> {
        let ints = matches!(keys, TieKeys::Int(_));
        let profit = [&self.middle50_from, &self.bottom30_from];
        let score = self.deciles_from.iter().chain([&self.targeted_through]);
        let cut_keys = profit
            .into_iter()
            .flatten()
            .map(|c| &c.key)
            .chain(score.flatten().map(|c| &c.key));
        match cut_keys
            .into_iter()
            .find(|k| matches!(k, TieKey::Int(_)) != ints)
        {
            Some(k) if !keys.is_empty() => Err(ModelError::Data(format!(
                "the cut-offs break ties on {} ids (e.g. {k:?}) but `subscriber_id` holds {}",
                if ints { "text" } else { "integer" },
                if ints { "integers" } else { "text" },
            ))),
            _ => Ok(()),
        }
    }

    /// The value segment of row `i` of `keys`, with this profit.
    pub fn segment(&self, profit: Option<f64>, keys: &TieKeys, i: usize) -> ValueSegment {
        let before =
            |cut: &Option<ProfitCut>| cut.as_ref().is_none_or(|c| c.is_after(profit, keys, i));
        if before(&self.middle50_from) {
            ValueSegment::Top20
        } else if before(&self.bottom30_from) {
            ValueSegment::Middle50
        } else {
            ValueSegment::Bottom30
        }
    }

    /// The risk decile (1 = riskiest) of row `i` of `keys`, with this probability.
    pub fn decile(&self, prob: f64, keys: &TieKeys, i: usize) -> i32 {
        1 + self
            .deciles_from
            .iter()
            .flatten()
            .filter(|c| c.order(prob, keys, i) != Ordering::Less)
            .count() as i32
    }

    /// Whether row `i` of `keys`, with this net gain, is targeted.
    pub fn targeted(&self, gain: f64, keys: &TieKeys, i: usize) -> bool {
        gain > 0.0
            && self
                .targeted_through
                .as_ref()
                .is_some_and(|c| c.order(gain, keys, i) != Ordering::Greater)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A population with heavy ties in profit, probability and gain, string ids.
    fn part(rows: std::ops::Range<u64>) -> PopulationPart {
        let ids: Vec<String> = rows
            .clone()
            .map(|r| format!("S{:04}", (r * 37) % 101))
            .collect();
        let keys = TieKeys::of(&arrow::array::StringArray::from(ids)).unwrap();
        let probs: Vec<f64> = rows.clone().map(|r| (r % 4) as f64 / 10.0 + 0.05).collect();
        PopulationPart {
            positions: rows.clone().collect(),
            keys,
            profit: rows
                .clone()
                .map(|r| (r % 9 != 0).then_some((r % 5) as f64 * 10.0 - 10.0))
                .collect(),
            value_at_risk: probs.iter().map(|p| p * 1000.0).collect(),
            probs,
            typical: [
                rows.clone().map(|r| (r % 3) as f64).collect(),
                rows.clone().map(|r| (r % 7) as f64).collect(),
                rows.map(|r| r as f64 / 10.0).collect(),
            ],
            catalogue: None,
        }
    }

    fn params() -> ScoreParams {
        ScoreParams {
            budget: Some(200.0),
            ..Default::default()
        }
    }

    /// What another engine does: sort each ranking on its own, read at the ranks.
    fn read_like_an_engine(parts: &[PopulationPart], params: &ScoreParams) -> CutReads {
        let mut rows: Vec<(TieKey, Option<f64>, f64, f64)> = Vec::new();
        let mut typical: [Vec<f64>; 3] = Default::default();
        for p in parts {
            for i in 0..p.probs.len() {
                rows.push((
                    p.keys.key(i),
                    profit_key(p.profit[i]),
                    p.probs[i],
                    gain_of(p.value_at_risk[i], params),
                ));
            }
            for (t, v) in typical.iter_mut().zip(&p.typical) {
                t.extend(v);
            }
        }
        let n = rows.len();
        let candidates = rows.iter().filter(|r| r.3 > 0.0).count();
        let ranks = CutRanks::of(n, candidates, params);
        let mut by_profit = rows.clone();
        by_profit.sort_by(|a, b| cmp_profit(a.1, b.1).then(a.0.cmp(&b.0)));
        let mut by_risk = rows.clone();
        by_risk.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.0.cmp(&b.0)));
        let mut by_gain: Vec<_> = rows.into_iter().filter(|r| r.3 > 0.0).collect();
        by_gain.sort_by(|a, b| b.3.total_cmp(&a.3).then(a.0.cmp(&b.0)));
        CutReads {
            rows: n,
            profit: ranks.profit.map(|r| {
                by_profit.get(r).map(|x| ProfitCut {
                    profit: x.1,
                    key: x.0.clone(),
                })
            }),
            risk: ranks.risk.map(|r| {
                by_risk.get(r).map(|x| ScoreCut {
                    value: x.2,
                    key: x.0.clone(),
                })
            }),
            gain: ranks.gain.and_then(|r| {
                by_gain.get(r).map(|x| ScoreCut {
                    value: x.3,
                    key: x.0.clone(),
                })
            }),
            typical: typical.map(|mut v| {
                v.sort_by(f64::total_cmp);
                median_ranks(v.len())
                    .iter()
                    .map(|&r| ExactF64(v[r]))
                    .collect()
            }),
            catalogues: Vec::new(),
        }
    }

    #[test]
    fn an_engine_reading_at_the_ranks_finds_the_same_cutoffs() {
        for n in [0u64, 1, 2, 7, 10, 15, 101] {
            let parts = vec![part(0..n / 3), part(n / 3..n)];
            let gathered = Population::gather(parts.clone(), &params()).cutoffs;
            let read = Cutoffs::from_reads(read_like_an_engine(&parts, &params()));
            assert_eq!(gathered, read, "{n} rows");
        }
    }

    #[test]
    fn cutoffs_round_trip_through_json() {
        let cutoffs = Population::gather(vec![part(0..50)], &params()).cutoffs;
        let json = serde_json::to_string(&cutoffs).unwrap();
        let back: Cutoffs = serde_json::from_str(&json).unwrap();
        assert_eq!(cutoffs, back);
        let reads: CutReads = serde_json::from_str(
            &serde_json::to_string(&read_like_an_engine(&[part(0..50)], &params())).unwrap(),
        )
        .unwrap();
        assert_eq!(Cutoffs::from_reads(reads), cutoffs);
    }

    /// Regression (issue 18): ties were broken by position in the input, which a shuffled
    /// input (or a Spark task) changes; the key does not move with the rows.
    #[test]
    fn ties_are_broken_by_id_not_position() {
        let whole = part(0..60);
        let mut reversed = whole.clone();
        let rev = |v: &mut Vec<f64>| v.reverse();
        reversed.positions.reverse();
        rev(&mut reversed.probs);
        rev(&mut reversed.value_at_risk);
        reversed.profit.reverse();
        let TieKeys::Str(ids) = &whole.keys else {
            unreachable!()
        };
        let ids: Vec<&str> = ids.iter().rev().map(|s| s.unwrap()).collect();
        reversed.keys = TieKeys::of(&arrow::array::StringArray::from(ids)).unwrap();
        let a = Population::gather(vec![whole.clone()], &params());
        let b = Population::gather(vec![reversed.clone()], &params());
        assert_eq!(a.cutoffs, b.cutoffs);
        for i in 0..60 {
            let j = 59 - i;
            assert_eq!(
                a.cutoffs.segment(whole.profit[i], &whole.keys, i),
                b.cutoffs.segment(reversed.profit[j], &reversed.keys, j)
            );
            assert_eq!(
                a.cutoffs.decile(whole.probs[i], &whole.keys, i),
                b.cutoffs.decile(reversed.probs[j], &reversed.keys, j)
            );
        }
        // the shares hold: 20% top20, deciles of 6
        let top = (0..60)
            .filter(|&i| a.cutoffs.segment(whole.profit[i], &whole.keys, i) == ValueSegment::Top20)
            .count();
        assert_eq!(top, 12);
        let first = (0..60)
            .filter(|&i| a.cutoffs.decile(whole.probs[i], &whole.keys, i) == 1)
            .count();
        assert_eq!(first, 6);
        let targeted = (0..60)
            .filter(|&i| {
                a.cutoffs
                    .targeted(gain_of(whole.value_at_risk[i], &params()), &whole.keys, i)
            })
            .count();
        assert_eq!(targeted, a.targeting.targeted);
    }

    #[test]
    fn mixed_key_kinds_are_refused() {
        let cutoffs = Population::gather(vec![part(0..20)], &params()).cutoffs;
        let ints = TieKeys::Int(vec![1, 2]);
        let err = cutoffs.check_keys(&ints).unwrap_err().to_string();
        assert!(err.contains("text ids"), "{err}");
        assert!(cutoffs.check_keys(&part(0..3).keys).is_ok());
    }

    #[test]
    fn budget_takes_offers_while_the_next_fits() {
        let p = |budget| ScoreParams {
            budget,
            offer_cost: 10.0,
            ..Default::default()
        };
        assert_eq!(budget_takes(100, &p(Some(25.0))), (2, 20.0));
        assert_eq!(budget_takes(1, &p(Some(25.0))), (1, 10.0));
        assert_eq!(budget_takes(100, &p(None)), (0, 0.0));
        assert_eq!(median_ranks(4), vec![1, 2]);
        assert_eq!(median_ranks(5), vec![2]);
    }
}
