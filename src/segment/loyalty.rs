//! Loyalty targeting: what to do with each subscriber (a value × risk matrix) and
//! through which touchpoints.
//!
//! | value segment | high risk (risk decile ≤ cut-off) | low risk |
//! |---|---|---|
//! | `top20` | `retain` | `reward` |
//! | `middle50` | `retain` | `upsell` |
//! | `bottom30`, still being won (contact, acquisition, conversion) | `nurture` | `nurture` |
//! | `bottom30`, otherwise | `reduce_cost` | `reduce_cost` |
//!
//! No retention money goes to the unprofitable: `bottom30` never gets `retain`.
//! Touchpoints for the action come from the history ([`super::touchpoints`]); a model
//! without touchpoint history (or a taxonomy with no touchpoint the company can start)
//! falls back to the fixed catalogue here, preferring the categories the subscriber used
//! in the last 90 days, and never a promotion (`communication`) for someone whose driver
//! is bad service. Every catalogue entry is a step the company takes towards the
//! subscriber (a call, an invitation, an offer, tips in the app), and the `reduce_cost`
//! ones move them to self-service: none of them is staffed (`personnel`).

use serde::{Deserialize, Serialize};

use super::driver::ChurnDriver;
use super::lifecycle::LifecycleStage;
use super::value::ValueSegment;
use crate::taxonomy::Category;

crate::names::named_enum!(
    /// What the loyalty team should do with a subscriber.
    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    LoyaltyAction {
        Retain => "retain",
        Reward => "reward",
        Upsell => "upsell",
        Nurture => "nurture",
        ReduceCost => "reduce_cost",
    }
);

impl LoyaltyAction {
    /// The action for a subscriber (see the module table).
    pub fn choose(segment: ValueSegment, high_risk: bool, stage: LifecycleStage) -> LoyaltyAction {
        match (segment, high_risk) {
            (ValueSegment::Top20 | ValueSegment::Middle50, true) => LoyaltyAction::Retain,
            (ValueSegment::Top20, false) => LoyaltyAction::Reward,
            (ValueSegment::Middle50, false) => LoyaltyAction::Upsell,
            (ValueSegment::Bottom30, _) if stage.is_new() => LoyaltyAction::Nurture,
            (ValueSegment::Bottom30, _) => LoyaltyAction::ReduceCost,
        }
    }
}

/// One recommendable touchpoint.
struct CatalogueEntry {
    name: &'static str,
    category: Category,
    action: LoyaltyAction,
    /// The drivers it answers; empty for any.
    drivers: &'static [ChurnDriver],
}

use ChurnDriver::{Price, Product, Service};
use LoyaltyAction::{Nurture, ReduceCost, Retain, Reward, Upsell};

const CATALOGUE: &[CatalogueEntry] = &[
    CatalogueEntry {
        name: "retention_call",
        category: Category::Personnel,
        action: Retain,
        drivers: &[],
    },
    CatalogueEntry {
        name: "complaint_follow_up",
        category: Category::Personnel,
        action: Retain,
        drivers: &[Service],
    },
    CatalogueEntry {
        name: "service_recovery_visit",
        category: Category::Channel,
        action: Retain,
        drivers: &[Service],
    },
    CatalogueEntry {
        name: "tariff_review",
        category: Category::Personnel,
        action: Retain,
        drivers: &[Price],
    },
    CatalogueEntry {
        name: "loyalty_discount_offer",
        category: Category::Communication,
        action: Retain,
        drivers: &[Price],
    },
    CatalogueEntry {
        name: "product_upgrade_trial",
        category: Category::Channel,
        action: Retain,
        drivers: &[Product],
    },
    CatalogueEntry {
        name: "usage_tips_in_app",
        category: Category::Communication,
        action: Retain,
        drivers: &[Product],
    },
    CatalogueEntry {
        name: "loyalty_club_invite",
        category: Category::Brand,
        action: Reward,
        drivers: &[],
    },
    CatalogueEntry {
        name: "vip_event",
        category: Category::Brand,
        action: Reward,
        drivers: &[],
    },
    CatalogueEntry {
        name: "thank_you_call",
        category: Category::Personnel,
        action: Reward,
        drivers: &[],
    },
    CatalogueEntry {
        name: "addon_offer",
        category: Category::Communication,
        action: Upsell,
        drivers: &[],
    },
    CatalogueEntry {
        name: "bundle_offer_in_store",
        category: Category::Channel,
        action: Upsell,
        drivers: &[],
    },
    CatalogueEntry {
        name: "onboarding_call",
        category: Category::Personnel,
        action: Nurture,
        drivers: &[],
    },
    CatalogueEntry {
        name: "app_tutorial",
        category: Category::Channel,
        action: Nurture,
        drivers: &[],
    },
    CatalogueEntry {
        name: "welcome_offer",
        category: Category::Communication,
        action: Nurture,
        drivers: &[],
    },
    CatalogueEntry {
        name: "self_service_app",
        category: Category::Channel,
        action: ReduceCost,
        drivers: &[],
    },
    CatalogueEntry {
        name: "digital_billing",
        category: Category::Channel,
        action: ReduceCost,
        drivers: &[],
    },
];

/// Up to `max` (at most 3) touchpoints for a subscriber: catalogue entries for the action
/// that answer the driver (or any driver), ranked by whether the subscriber used that
/// touchpoint category in the last 90 days, then by catalogue order. Promotions are
/// never sent to someone whose driver is service.
pub fn recommend(
    action: LoyaltyAction,
    driver: ChurnDriver,
    category_use_90d: &[f64; 4],
    max: usize,
) -> Vec<&'static str> {
    let mut candidates: Vec<(usize, &CatalogueEntry)> = CATALOGUE
        .iter()
        .filter(|e| e.action == action)
        .filter(|e| e.drivers.is_empty() || e.drivers.contains(&driver))
        .filter(|e| !(driver == Service && e.category == Category::Communication))
        .enumerate()
        .collect();
    candidates.sort_by_key(|(order, e)| (category_use_90d[e.category.index()] <= 0.0, *order));
    candidates
        .into_iter()
        .take(max.min(3))
        .map(|(_, e)| e.name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_retention_for_the_unprofitable() {
        for high in [true, false] {
            for stage in [LifecycleStage::Retention, LifecycleStage::Contact] {
                assert_ne!(
                    LoyaltyAction::choose(ValueSegment::Bottom30, high, stage),
                    LoyaltyAction::Retain
                );
            }
        }
        assert_eq!(
            LoyaltyAction::choose(ValueSegment::Top20, true, LifecycleStage::Loyalty),
            LoyaltyAction::Retain
        );
        assert_eq!(
            LoyaltyAction::choose(ValueSegment::Top20, false, LifecycleStage::Loyalty),
            LoyaltyAction::Reward
        );
    }

    #[test]
    fn no_promotions_for_service_complainers() {
        for action in LoyaltyAction::ALL {
            let picks = recommend(action, Service, &[5.0, 0.0, 0.0, 0.0], 3);
            assert!(!picks.is_empty() && picks.len() <= 3);
            for p in picks {
                let e = CATALOGUE.iter().find(|e| e.name == p).unwrap();
                assert_ne!(e.category, Category::Communication, "{p} for {action:?}");
            }
        }
    }

    #[test]
    fn cost_reduction_is_never_a_staffed_step() {
        let steps: Vec<&CatalogueEntry> = CATALOGUE
            .iter()
            .filter(|e| e.action == ReduceCost)
            .collect();
        assert!(!steps.is_empty());
        for e in steps {
            assert_ne!(e.category, Category::Personnel, "{}", e.name);
        }
    }

    #[test]
    fn used_categories_come_first() {
        let picks = recommend(Reward, Price, &[0.0, 0.0, 3.0, 0.0], 2);
        assert_eq!(picks[0], "thank_you_call");
    }
}
