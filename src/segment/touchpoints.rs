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
//! 1. only a way the company can reach the subscriber: a touchpoint with `reach` in the
//!    taxonomy (one the company can start: an ad, a promotion, an outbound call, a club
//!    invitation, a survey — never an act of the subscriber's own such as a login, a
//!    purchase or a bill payment; see [`crate::taxonomy`] for the field and its default)
//!    that occurs in the history (someone used it in training or in the scored table);
//! 2. never a complaint or unsubscribe touchpoint, never one the subscriber rated badly
//!    (more ratings of 2 or less than of 4 or more in 90 days), and never one tied to
//!    the driver (see [`allowed`]: no promotions for someone angry about service, no
//!    selling to someone who finds it too expensive, no ads to someone drifting away
//!    from the product);
//! 3. `reduce_cost` moves the unprofitable towards self-service: never a `staffed`
//!    touchpoint (personnel, call centre, store; [`cuts_cost`]), and none dearer to
//!    serve than the median touchpoint of the history (mean cost per event). A
//!    touchpoint whose events carry no cost counts as free, not as unknown: self-service
//!    channels (app, web, banners, messages) usually have no cost recorded, and
//!    excluding them left only the staffed channels, the dearest there are. The
//!    subscriber's own first (those reach them already), each by cost;
//! 4. every other action: touchpoints with a positive lift that the subscriber already
//!    has (the company reaches them through it), then those with a positive lift that
//!    they do not have yet, then the rest, each by lift;
//! 5. up to `max` (at most 3) of them.
//!
//! A model trained without interactions has no touchpoint history, and a taxonomy may
//! have no touchpoint with reach: recommendations then come from the action catalogue
//! of [`super::loyalty`] (offers the company makes, none staffed for `reduce_cost`).

use serde::{Deserialize, Serialize};

use super::{ChurnDriver, LoyaltyAction};
use crate::features::TouchpointUsage;
use crate::features::accumulate::{FixedSum, TouchpointUse};
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

/// Whether a touchpoint may carry an action for a subscriber with this churn driver:
/// one the company can reach them through, neither a complaint nor a cancellation, and
/// not tied to the driver.
pub fn allowed(class: TouchpointClass, driver: ChurnDriver) -> bool {
    if !class.reach || matches!(class.kind, Some(Kind::Complain | Kind::Unsubscribe)) {
        return false;
    }
    match driver {
        ChurnDriver::Service => class.category != Category::Communication,
        ChurnDriver::Price => class.stage != Stage::Shopping,
        ChurnDriver::Product => class.stage != Stage::Search,
    }
}

/// Whether a touchpoint can be a step towards a lower cost to serve: one that people do
/// not serve (however cheap its recorded cost).
pub fn cuts_cost(class: TouchpointClass) -> bool {
    !class.staffed
}

/// A scoring-time touchpoint with what the history says about it.
struct Choice {
    name: String,
    class: TouchpointClass,
    lift: f64,
    /// Mean cost to serve per event; 0 when its events carry no cost.
    cost: f64,
    /// Someone used it in training or in the scored table.
    seen: bool,
}

/// What recommending needs to know of the whole scored population, per taxonomy
/// touchpoint: whether anyone used it in the 90 days before `as_of`, and its mean cost
/// to serve per event. A population step: with shards it is summed over every shard
/// ([`TouchpointCatalogue::absorb`]) before any subscriber's touchpoints are chosen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TouchpointCatalogue {
    /// The taxonomy's touchpoints with their classes.
    pub touchpoints: Vec<(String, TouchpointClass)>,
    /// Cost to serve summed over the population's 90-day events, and those events.
    pub cost: Vec<(FixedSum, u64)>,
    /// Someone in the population used the touchpoint in 90 days.
    pub used: Vec<bool>,
}

impl TouchpointCatalogue {
    /// The catalogue of one table's (or one shard's) touchpoint use.
    pub fn of(usage: &TouchpointUsage) -> TouchpointCatalogue {
        let k = usage.touchpoints.len();
        let mut used = vec![false; k];
        for (i, u) in usage.uses.iter().enumerate() {
            used[i % k] |= u.events > 0;
        }
        TouchpointCatalogue {
            touchpoints: usage.touchpoints.clone(),
            cost: usage.cost.clone(),
            used,
        }
    }

    /// Adds another shard's catalogue (same taxonomy).
    pub fn absorb(&mut self, other: &TouchpointCatalogue) {
        for ((a, n), (b, m)) in self.cost.iter_mut().zip(&other.cost) {
            a.merge(b);
            *n += m;
        }
        for (a, b) in self.used.iter_mut().zip(&other.used) {
            *a |= b;
        }
    }

    /// Mean cost to serve per event of touchpoint `k` (`None` without cost data).
    pub fn mean_cost(&self, k: usize) -> Option<f64> {
        let (sum, n) = self.cost.get(k)?;
        (*n > 0).then(|| sum.value() / *n as f64)
    }
}

/// Chooses touchpoints for the rows of one scored table.
pub struct Recommender {
    /// One per touchpoint of the catalogue, in its order.
    options: Vec<Choice>,
    /// Median mean cost of the touchpoints in the history: `reduce_cost` looks no higher.
    median_cost: f64,
    max: usize,
}

impl Recommender {
    /// `None` when there is no history to recommend from (no interactions), or no
    /// touchpoint in the taxonomy the company can reach a subscriber through.
    pub fn new(
        table: &RetentionTable,
        catalogue: Option<&TouchpointCatalogue>,
        max: usize,
    ) -> Option<Recommender> {
        let catalogue = catalogue?;
        if table.is_empty() || catalogue.touchpoints.iter().all(|(_, c)| !c.reach) {
            return None;
        }
        let options = catalogue
            .touchpoints
            .iter()
            .zip(&catalogue.used)
            .enumerate()
            .map(|(k, ((name, class), &used_now))| {
                let learned = table.touchpoints.iter().find(|t| &t.touchpoint == name);
                Choice {
                    name: name.clone(),
                    class: *class,
                    // a touchpoint unseen in training is neither good nor bad
                    lift: learned.map_or(0.0, |t| t.retention_lift),
                    // no recorded cost: free to serve (self-service); a NaN mean: dear
                    cost: match learned.and_then(|t| t.mean_cost).or(catalogue.mean_cost(k)) {
                        None => 0.0,
                        Some(c) if c.is_nan() => f64::INFINITY,
                        Some(c) => c,
                    },
                    seen: used_now || learned.is_some_and(|t| t.users > 0),
                }
            })
            .collect::<Vec<Choice>>();
        let mut costs: Vec<f64> = options.iter().filter(|o| o.seen).map(|o| o.cost).collect();
        costs.sort_by(f64::total_cmp);
        let median_cost = costs.get(costs.len() / 2).copied().unwrap_or(0.0);
        Some(Recommender {
            options,
            median_cost,
            max: max.min(3),
        })
    }

    /// Up to `max` touchpoints for a subscriber whose use of each catalogue touchpoint is
    /// `uses` (see the module doc for the rules).
    pub fn recommend(
        &self,
        uses: &[TouchpointUse],
        action: LoyaltyAction,
        driver: ChurnDriver,
    ) -> Vec<&str> {
        let used = |k: usize| uses.get(k).copied().unwrap_or_default();
        let rated_badly = |u: TouchpointUse| u.low > u.good;
        let mut picks: Vec<(usize, &Choice)> = self
            .options
            .iter()
            .enumerate()
            .filter(|(k, o)| o.seen && allowed(o.class, driver) && !rated_badly(used(*k)))
            .collect();
        let own = |k: usize| used(k).events > 0;
        if action == LoyaltyAction::ReduceCost {
            picks.retain(|(_, o)| cuts_cost(o.class) && o.cost <= self.median_cost);
            picks.sort_by(|(ka, a), (kb, b)| {
                own(*kb)
                    .cmp(&own(*ka))
                    .then_with(|| a.cost.total_cmp(&b.cost))
                    .then_with(|| ka.cmp(kb))
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
        let cost = touchpoints
            .iter()
            .map(|(n, _)| {
                let mut sum = FixedSum::default();
                sum.add(if n == "app_login" { 0.1 } else { 2.0 });
                (sum, 1)
            })
            .collect();
        TouchpointUsage {
            touchpoints,
            uses,
            mean_cost,
            cost,
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
            ("survey_response", 0.02),
            ("call_centre_call", 0.03),
            ("promo_sms", 0.08),
            ("complaint_ticket", 0.09),
            ("bill_payment", 0.2),
            ("app_login", 0.1),
        ]);
        let u = usage(&[
            &[
                ("survey_response", uses(5, 2, 0)),
                ("call_centre_call", uses(2, 0, 2)),
                ("promo_sms", uses(3, 0, 0)),
                ("complaint_ticket", uses(1, 0, 0)),
                ("bill_payment", uses(3, 0, 0)),
                ("app_login", uses(9, 0, 0)),
            ],
            &[],
        ]);
        let r = Recommender::new(&t, Some(&TouchpointCatalogue::of(&u)), 2).unwrap();
        // price driver: promo_sms is the own touchpoint with the best lift; calls were
        // rated badly; complaints are never recommended, nor bill payments and logins
        // (the subscriber's own acts), however well they go with staying
        assert_eq!(
            r.recommend(u.row(0), LoyaltyAction::Retain, ChurnDriver::Price),
            vec!["promo_sms", "survey_response"]
        );
        // service driver: no promotions
        assert_eq!(
            r.recommend(u.row(0), LoyaltyAction::Retain, ChurnDriver::Service),
            vec!["survey_response", "loyalty_club_event"]
        );
        // no history of their own: the best-lift touchpoints allowed for the driver
        assert_eq!(
            r.recommend(u.row(1), LoyaltyAction::Reward, ChurnDriver::Service),
            vec!["loyalty_club_event", "call_centre_call"]
        );
    }

    #[test]
    fn reduce_cost_moves_towards_self_service() {
        let t = table(&[
            ("call_centre_call", 0.04),
            ("store_visit", 0.03),
            ("tariff_enquiry", 0.03),
            ("bill_payment", 0.05),
            ("loyalty_club_event", 0.02),
            ("promo_sms", 0.01),
            ("promo_email", 0.01),
            ("ad_impression", 0.0),
            ("survey_response", 0.0),
        ]);
        let mut u = usage(&[&[("survey_response", uses(1, 1, 0))], &[]]);
        // staffed touchpoints carry a cost; messages, banners and surveys none
        let costs = [
            ("call_centre_call", Some(0.2)),
            ("store_visit", Some(5.0)),
            ("tariff_enquiry", Some(2.0)),
            ("bill_payment", Some(0.3)),
            ("loyalty_club_event", Some(1.5)),
        ];
        for (k, (name, _)) in u.touchpoints.iter().enumerate() {
            let cost = costs.iter().find(|(n, _)| n == name).and_then(|c| c.1);
            let mut sum = FixedSum::default();
            sum.add(cost.unwrap_or(0.0));
            u.cost[k] = (sum, cost.is_some() as u64);
        }
        let r = Recommender::new(&t, Some(&TouchpointCatalogue::of(&u)), 3).unwrap();
        // the free touchpoints the company starts, the subscriber's own first; never a
        // staffed one however cheap (the call), never a dearer one (the club event)
        assert_eq!(
            r.recommend(u.row(0), LoyaltyAction::ReduceCost, ChurnDriver::Price),
            vec!["survey_response", "ad_impression", "promo_email"]
        );
        assert_eq!(
            r.recommend(u.row(1), LoyaltyAction::ReduceCost, ChurnDriver::Price),
            vec!["ad_impression", "promo_email", "promo_sms"]
        );
        let taxonomy = Taxonomy::shipped();
        for driver in ChurnDriver::ALL {
            for p in r.recommend(u.row(1), LoyaltyAction::ReduceCost, driver) {
                let class = taxonomy.classify(p).unwrap();
                assert!(cuts_cost(class) && class.reach, "{p} for {driver:?}");
            }
        }
    }

    #[test]
    fn never_a_touchpoint_tied_to_the_driver() {
        let taxonomy = Taxonomy::shipped();
        let t = table(&[
            ("promo_sms", 0.5),
            ("addon_purchase", 0.4),
            ("ad_click", 0.3),
            ("survey_response", 0.1),
        ]);
        let u = usage(&[&[
            ("promo_sms", uses(3, 3, 0)),
            ("addon_purchase", uses(3, 3, 0)),
            ("ad_click", uses(3, 3, 0)),
            ("survey_response", uses(1, 1, 0)),
        ]]);
        let r = Recommender::new(&t, Some(&TouchpointCatalogue::of(&u)), 3).unwrap();
        for driver in ChurnDriver::ALL {
            for action in LoyaltyAction::ALL {
                let picks = r.recommend(u.row(0), action, driver);
                assert!(!picks.is_empty() && picks.len() <= 3);
                for p in picks {
                    let class = taxonomy.classify(p).unwrap();
                    assert!(allowed(class, driver), "{p} for {driver:?}");
                }
            }
        }
    }

    #[test]
    fn unseen_touchpoints_are_not_recommended() {
        // only the club has users in training; nobody in the scored table has any other
        let t = table(&[("loyalty_club_event", 0.05)]);
        let mut t = t;
        t.touchpoints.push(TouchpointRetention {
            touchpoint: "brand_event".into(),
            users: 0,
            churned: 0,
            retention_lift: 0.0,
            mean_cost: None,
        });
        let u = usage(&[&[], &[("promo_email", uses(1, 0, 0))]]);
        let r = Recommender::new(&t, Some(&TouchpointCatalogue::of(&u)), 3).unwrap();
        assert_eq!(
            r.recommend(u.row(0), LoyaltyAction::Reward, ChurnDriver::Price),
            vec!["loyalty_club_event", "promo_email"]
        );
    }

    #[test]
    fn no_history_no_recommender() {
        let u = usage(&[&[]]);
        assert!(
            Recommender::new(
                &RetentionTable::default(),
                Some(&TouchpointCatalogue::of(&u)),
                2
            )
            .is_none()
        );
        assert!(Recommender::new(&table(&[("app_login", 0.1)]), None, 2).is_none());
        // a taxonomy with no touchpoint the company can start: the catalogue instead
        let mut own_acts = usage(&[&[("app_login", uses(1, 0, 0))]]);
        for (_, class) in &mut own_acts.touchpoints {
            class.reach = false;
        }
        assert!(
            Recommender::new(
                &table(&[("app_login", 0.1)]),
                Some(&TouchpointCatalogue::of(&own_acts)),
                2
            )
            .is_none()
        );
    }
}
