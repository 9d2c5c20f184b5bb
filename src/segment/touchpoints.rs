//! Touchpoint recommendations: through which touchpoints to carry a subscriber's loyalty
//! action, learned from how retention differs after each touchpoint in the history.
//!
//! **Learning** (at `train`, on the same snapshots as the churn model): for each taxonomy
//! touchpoint, the subscribers who used it in the 90 days before a snapshot and how many
//! of them churned within the horizon. Its *retention lift* is the overall churn rate
//! minus the users' churn rate, the latter shrunk toward the overall rate by
//! [`PRIOR_SUBSCRIBERS`] pseudo-subscribers so that rare touchpoints do not top the list
//! by chance. A positive lift means that those who use the touchpoint stay more often.
//! This is an association, not an experiment: it ranks touchpoints, it does not promise
//! what an offer through them will achieve.
//!
//! **Choosing** (at `score`), for a subscriber with action `a` and churn driver `d`:
//! 1. never a complaint or unsubscribe touchpoint, never one the subscriber rated badly
//!    (more ratings of 2 or less than of 4 or more in 90 days), and never one tied to
//!    the driver (see [`allowed`]: no promotions for someone angry about service, no
//!    selling to someone who finds it too expensive, no ads to someone drifting away
//!    from the product);
//! 2. `reduce_cost`: touchpoints no dearer to serve than the median touchpoint (mean
//!    cost per event), those the subscriber already uses first, each by cost;
//! 3. every other action: touchpoints with a positive lift that the subscriber already
//!    uses, then those with a positive lift that they do not use yet, then the rest,
//!    each by lift;
//! 4. up to `max` (at most 3) of them.
//!
//! A model trained without interactions has no touchpoint history; its recommendations
//! come from the action catalogue of [`super::loyalty`].

use serde::{Deserialize, Serialize};

use super::{ChurnDriver, LoyaltyAction};
use crate::features::TouchpointUsage;
use crate::features::accumulate::TouchpointUse;
use crate::taxonomy::{Category, Kind, Stage, TouchpointClass};

/// Weight of the overall churn rate in a touchpoint's churn rate, in subscribers.
pub const PRIOR_SUBSCRIBERS: f64 = 200.0;

/// How retention differs after each touchpoint, learned on the training snapshots.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RetentionTable {
    /// Subscriber snapshots learned from.
    pub subscribers: u64,
    /// Share of them who churned within the horizon.
    pub churn_rate: f64,
    /// Every taxonomy touchpoint, by descending lift.
    pub touchpoints: Vec<TouchpointRetention>,
}

/// One touchpoint's row of the [`RetentionTable`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TouchpointRetention {
    pub touchpoint: String,
    /// Subscriber snapshots with at least one event of it in the 90 days before.
    pub users: u64,
    /// How many of those churned within the horizon.
    pub churned: u64,
    /// Overall churn rate minus the users' (shrunk) churn rate.
    pub retention_lift: f64,
    /// Mean cost to serve per event, when the data has costs.
    pub mean_cost: Option<f64>,
}

impl RetentionTable {
    /// Learns the table from snapshots: each one's touchpoint use and churn labels (in
    /// the same row order). Mean costs come from the first snapshot.
    pub fn learn<'a>(
        snapshots: impl IntoIterator<Item = (&'a TouchpointUsage, &'a [bool])>,
    ) -> RetentionTable {
        let mut names: Vec<String> = Vec::new();
        let mut mean_cost: Vec<Option<f64>> = Vec::new();
        let (mut users, mut churned) = (Vec::<u64>::new(), Vec::<u64>::new());
        let (mut subscribers, mut churners) = (0u64, 0u64);
        for (usage, labels) in snapshots {
            if names.is_empty() {
                names = usage.touchpoints.iter().map(|(n, _)| n.clone()).collect();
                mean_cost = usage.mean_cost.clone();
                users = vec![0; names.len()];
                churned = vec![0; names.len()];
            }
            for (r, &label) in labels.iter().enumerate() {
                subscribers += 1;
                churners += label as u64;
                for (k, u) in usage.row(r).iter().enumerate().take(names.len()) {
                    if u.events > 0 {
                        users[k] += 1;
                        churned[k] += label as u64;
                    }
                }
            }
        }
        let churn_rate = if subscribers > 0 {
            churners as f64 / subscribers as f64
        } else {
            0.0
        };
        let mut touchpoints: Vec<TouchpointRetention> = names
            .into_iter()
            .enumerate()
            .map(|(k, touchpoint)| {
                let shrunk = (churned[k] as f64 + PRIOR_SUBSCRIBERS * churn_rate)
                    / (users[k] as f64 + PRIOR_SUBSCRIBERS);
                TouchpointRetention {
                    touchpoint,
                    users: users[k],
                    churned: churned[k],
                    retention_lift: churn_rate - shrunk,
                    mean_cost: mean_cost.get(k).copied().flatten(),
                }
            })
            .collect();
        touchpoints.sort_by(|a, b| {
            b.retention_lift
                .total_cmp(&a.retention_lift)
                .then_with(|| a.touchpoint.cmp(&b.touchpoint))
        });
        RetentionTable {
            subscribers,
            churn_rate,
            touchpoints,
        }
    }

    /// One line for the console: the best and worst touchpoints.
    pub fn summary(&self) -> String {
        let used: Vec<&TouchpointRetention> =
            self.touchpoints.iter().filter(|t| t.users > 0).collect();
        match (used.first(), used.last()) {
            (Some(best), Some(worst)) if !self.is_empty() => format!(
                "retention lift of {} touchpoints: best {} ({:+.1} pts), worst {} ({:+.1} pts)",
                used.len(),
                best.touchpoint,
                100.0 * best.retention_lift,
                worst.touchpoint,
                100.0 * worst.retention_lift
            ),
            _ => "no touchpoint history: recommendations from the action catalogue".into(),
        }
    }

    /// Whether there is any history to recommend from.
    pub fn is_empty(&self) -> bool {
        self.subscribers == 0 || self.touchpoints.iter().all(|t| t.users == 0)
    }
}

/// Whether a touchpoint may carry an action for a subscriber with this churn driver.
pub fn allowed(class: TouchpointClass, driver: ChurnDriver) -> bool {
    if matches!(class.kind, Some(Kind::Complain | Kind::Unsubscribe)) {
        return false;
    }
    match driver {
        ChurnDriver::Service => class.category != Category::Communication,
        ChurnDriver::Price => class.stage != Stage::Shopping,
        ChurnDriver::Product => class.stage != Stage::Search,
    }
}

/// A scoring-time touchpoint with what the history says about it.
struct Choice {
    name: String,
    class: TouchpointClass,
    lift: f64,
    mean_cost: Option<f64>,
}

/// Chooses touchpoints for the rows of one scored table.
pub struct Recommender<'a> {
    usage: &'a TouchpointUsage,
    /// One per touchpoint of `usage`, in its order.
    options: Vec<Choice>,
    /// Median of the touchpoints' mean costs: `reduce_cost` looks no higher.
    median_cost: f64,
    max: usize,
}

impl<'a> Recommender<'a> {
    /// `None` when there is no history to recommend from (no interactions).
    pub fn new(
        table: &RetentionTable,
        usage: Option<&'a TouchpointUsage>,
        max: usize,
    ) -> Option<Recommender<'a>> {
        let usage = usage?;
        if table.is_empty() {
            return None;
        }
        let options = usage
            .touchpoints
            .iter()
            .zip(&usage.mean_cost)
            .map(|((name, class), cost)| {
                let learned = table.touchpoints.iter().find(|t| &t.touchpoint == name);
                Choice {
                    name: name.clone(),
                    class: *class,
                    // a touchpoint unseen in training is neither good nor bad
                    lift: learned.map_or(0.0, |t| t.retention_lift),
                    mean_cost: learned.and_then(|t| t.mean_cost).or(*cost),
                }
            })
            .collect::<Vec<Choice>>();
        let mut costs: Vec<f64> = options.iter().filter_map(|o| o.mean_cost).collect();
        costs.sort_by(f64::total_cmp);
        let median_cost = costs.get(costs.len() / 2).copied().unwrap_or(f64::MAX);
        Some(Recommender {
            usage,
            options,
            median_cost,
            max: max.min(3),
        })
    }

    /// Up to `max` touchpoints for row `row` (see the module doc for the rules).
    pub fn recommend(&self, row: usize, action: LoyaltyAction, driver: ChurnDriver) -> Vec<&str> {
        let uses = self.usage.row(row);
        let used = |k: usize| uses.get(k).copied().unwrap_or_default();
        let rated_badly = |u: TouchpointUse| u.low > u.good;
        let mut picks: Vec<(usize, &Choice)> = self
            .options
            .iter()
            .enumerate()
            .filter(|(k, o)| allowed(o.class, driver) && !rated_badly(used(*k)))
            .collect();
        let own = |k: usize| used(k).events > 0;
        if action == LoyaltyAction::ReduceCost {
            picks.retain(|(_, o)| o.mean_cost.is_some_and(|c| c <= self.median_cost));
            picks.sort_by(|(ka, a), (kb, b)| {
                (!own(*ka), a.mean_cost.unwrap_or(f64::MAX), *ka)
                    .partial_cmp(&(!own(*kb), b.mean_cost.unwrap_or(f64::MAX), *kb))
                    .unwrap_or(std::cmp::Ordering::Equal)
            });
        } else {
            let rank = |k: usize, o: &Choice| (o.lift <= 0.0, !own(k));
            picks.sort_by(|(ka, a), (kb, b)| {
                rank(*ka, a)
                    .cmp(&rank(*kb, b))
                    .then_with(|| b.lift.total_cmp(&a.lift))
                    .then_with(|| ka.cmp(kb))
            });
        }
        picks
            .into_iter()
            .take(self.max)
            .map(|(_, o)| o.name.as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::taxonomy::Taxonomy;

    /// Three subscribers' use of the shipped taxonomy's touchpoints.
    fn usage(rows: &[&[(&str, TouchpointUse)]]) -> TouchpointUsage {
        let taxonomy = Taxonomy::shipped();
        let touchpoints: Vec<(String, TouchpointClass)> =
            taxonomy.iter().map(|(n, c)| (n.to_string(), c)).collect();
        let k = touchpoints.len();
        let mut uses = vec![TouchpointUse::default(); rows.len() * k];
        for (r, row) in rows.iter().enumerate() {
            for (name, u) in *row {
                let i = touchpoints.iter().position(|(n, _)| n == name).unwrap();
                uses[r * k + i] = *u;
            }
        }
        let mean_cost = touchpoints
            .iter()
            .map(|(n, _)| Some(if n == "app_login" { 0.1 } else { 2.0 }))
            .collect();
        TouchpointUsage {
            touchpoints,
            uses,
            mean_cost,
        }
    }

    fn uses(events: u32, good: u32, low: u32) -> TouchpointUse {
        TouchpointUse { events, good, low }
    }

    #[test]
    fn lift_is_positive_where_users_stay_and_shrinks_for_rare_touchpoints() {
        // 1000 subscribers, 20% churn; club users (400) never churn; 2 store visitors churn
        let mut rows: Vec<Vec<(&str, TouchpointUse)>> = Vec::new();
        let mut labels = Vec::new();
        for i in 0..1000 {
            let mut row = Vec::new();
            if i < 400 {
                row.push(("loyalty_club_event", uses(1, 0, 0)));
            }
            if (400..402).contains(&i) {
                row.push(("store_visit", uses(1, 0, 0)));
            }
            rows.push(row);
            labels.push(i >= 800 || (400..402).contains(&i));
        }
        let refs: Vec<&[(&str, TouchpointUse)]> = rows.iter().map(|r| &r[..]).collect();
        let u = usage(&refs);
        let table = RetentionTable::learn([(&u, &labels[..])]);
        assert_eq!(table.subscribers, 1000);
        assert!((table.churn_rate - 0.202).abs() < 1e-12);
        let get = |n: &str| {
            table
                .touchpoints
                .iter()
                .find(|t| t.touchpoint == n)
                .unwrap()
        };
        let club = get("loyalty_club_event");
        assert_eq!((club.users, club.churned), (400, 0));
        assert!(club.retention_lift > 0.1, "{club:?}");
        assert_eq!(table.touchpoints[0].touchpoint, "loyalty_club_event");
        // two churned users of 2 move the estimate only a little
        let store = get("store_visit");
        assert!(
            store.retention_lift < 0.0 && store.retention_lift > -0.02,
            "{store:?}"
        );
        assert!(get("ad_click").retention_lift.abs() < 1e-12);
    }

    fn table(lifts: &[(&str, f64)]) -> RetentionTable {
        RetentionTable {
            subscribers: 100,
            churn_rate: 0.1,
            touchpoints: lifts
                .iter()
                .map(|(n, l)| TouchpointRetention {
                    touchpoint: n.to_string(),
                    users: 10,
                    churned: 1,
                    retention_lift: *l,
                    mean_cost: None,
                })
                .collect(),
        }
    }

    #[test]
    fn own_well_rated_touchpoints_with_a_lift_come_first() {
        let t = table(&[
            ("loyalty_club_event", 0.05),
            ("app_login", 0.02),
            ("store_visit", 0.03),
            ("promo_sms", 0.08),
            ("complaint_ticket", 0.09),
        ]);
        let u = usage(&[
            &[
                ("app_login", uses(5, 2, 0)),
                ("store_visit", uses(2, 0, 2)),
                ("promo_sms", uses(3, 0, 0)),
                ("complaint_ticket", uses(1, 0, 0)),
            ],
            &[],
        ]);
        let r = Recommender::new(&t, Some(&u), 2).unwrap();
        // price driver: promo_sms is the own touchpoint with the best lift; store visits
        // were rated badly; complaints are never recommended
        assert_eq!(
            r.recommend(0, LoyaltyAction::Retain, ChurnDriver::Price),
            vec!["promo_sms", "app_login"]
        );
        // service driver: no promotions
        assert_eq!(
            r.recommend(0, LoyaltyAction::Retain, ChurnDriver::Service),
            vec!["app_login", "loyalty_club_event"]
        );
        // no history of their own: the best-lift touchpoints allowed for the driver
        assert_eq!(
            r.recommend(1, LoyaltyAction::Reward, ChurnDriver::Service),
            vec!["loyalty_club_event", "store_visit"]
        );
        // reduce_cost: the cheapest to serve first
        let cheap = r.recommend(1, LoyaltyAction::ReduceCost, ChurnDriver::Service);
        assert_eq!(cheap.len(), 2);
        assert_eq!(cheap[0], "app_login");
    }

    #[test]
    fn never_a_touchpoint_tied_to_the_driver() {
        let taxonomy = Taxonomy::shipped();
        let t = table(&[
            ("promo_sms", 0.5),
            ("addon_purchase", 0.4),
            ("ad_click", 0.3),
        ]);
        let u = usage(&[&[
            ("promo_sms", uses(3, 3, 0)),
            ("addon_purchase", uses(3, 3, 0)),
            ("ad_click", uses(3, 3, 0)),
        ]]);
        let r = Recommender::new(&t, Some(&u), 3).unwrap();
        for driver in ChurnDriver::ALL {
            for action in LoyaltyAction::ALL {
                let picks = r.recommend(0, action, driver);
                assert!(!picks.is_empty() && picks.len() <= 3);
                for p in picks {
                    let class = taxonomy.classify(p).unwrap();
                    assert!(allowed(class, driver), "{p} for {driver:?}");
                }
            }
        }
    }

    #[test]
    fn no_history_no_recommender() {
        let u = usage(&[&[]]);
        assert!(Recommender::new(&RetentionTable::default(), Some(&u), 2).is_none());
        assert!(Recommender::new(&table(&[("app_login", 0.1)]), None, 2).is_none());
    }
}
