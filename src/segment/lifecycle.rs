//! Customer lifecycle stage (SPEC §1: contact, acquisition, conversion, retention,
//! loyalty) from tenure and touchpoint history, by these rules, first match wins:
//!
//! 1. `contact`: tenure under 30 days and no use of the service yet (`use_90d` = 0).
//! 2. `acquisition`: tenure under 90 days and no purchase yet: no `subscribe`
//!    touchpoint in 90 days (`subscribe_90d` = 0) and no revenue (`revenue_90d` ≤ 0).
//! 3. `conversion`: tenure under 180 days, or a trial in the last 90 days without a
//!    purchase after it (turning trials into paid services).
//! 4. `loyalty`: tenure of at least a year, brand touchpoints (club, events, surveys) in
//!    90 days, a mean rating of 4 or more (or no rating and no complaint) and no
//!    unresolved complaint.
//! 5. `retention`: everyone else.
//!
//! A paying subscription is a purchase: many businesses record no touchpoint of kind
//! `subscribe` (the taxonomy may have none) while their subscribers pay every month, and
//! those are not still being acquired. `revenue_90d` is three months of recurring
//! `monthly_revenue` plus the revenue at touchpoints in 90 days (bill payments, add-on
//! purchases), so it is positive for anyone with `monthly_revenue > 0` or a payment event
//! (revenue > 0), unless refunds outweigh both; for a tenure under 90 days it covers the
//! whole relationship. A subscriber with unknown revenue counts as not paying.

use serde::{Deserialize, Serialize};

/// A lifecycle stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LifecycleStage {
    Contact,
    Acquisition,
    Conversion,
    Retention,
    Loyalty,
}

impl LifecycleStage {
    pub const ALL: [LifecycleStage; 5] = [
        LifecycleStage::Contact,
        LifecycleStage::Acquisition,
        LifecycleStage::Conversion,
        LifecycleStage::Retention,
        LifecycleStage::Loyalty,
    ];

    /// The stage of a name written by [`LifecycleStage::name`].
    pub fn parse(text: &str) -> Option<LifecycleStage> {
        LifecycleStage::ALL.into_iter().find(|s| s.name() == text)
    }

    pub fn name(self) -> &'static str {
        match self {
            LifecycleStage::Contact => "contact",
            LifecycleStage::Acquisition => "acquisition",
            LifecycleStage::Conversion => "conversion",
            LifecycleStage::Retention => "retention",
            LifecycleStage::Loyalty => "loyalty",
        }
    }

    /// True for the stages of a customer still being won.
    pub fn is_new(self) -> bool {
        matches!(
            self,
            LifecycleStage::Contact | LifecycleStage::Acquisition | LifecycleStage::Conversion
        )
    }
}

/// The inputs of the rules for one subscriber (from the feature table).
#[derive(Debug, Clone, Copy, Default)]
pub struct LifecycleFacts {
    pub tenure_days: f64,
    pub use_90d: f64,
    pub subscribe_90d: f64,
    /// Revenue in 90 days (`revenue_90d`), recurring and at touchpoints; `None` if unknown.
    pub revenue_90d: Option<f64>,
    pub trial_90d: f64,
    pub days_since_last_trial: Option<f64>,
    pub days_since_last_subscribe: Option<f64>,
    pub brand_90d: f64,
    pub satisfaction_mean_90d: Option<f64>,
    pub complain_90d: f64,
    pub complaints_unresolved_90d: f64,
}

impl LifecycleFacts {
    /// Whether the subscriber has bought anything: a `subscribe` touchpoint, or revenue
    /// (a paying subscription or payments) in 90 days.
    pub fn purchased(&self) -> bool {
        self.subscribe_90d > 0.0 || self.revenue_90d.is_some_and(|r| r > 0.0)
    }
}

impl LifecycleStage {
    /// Applies the rules in the module documentation.
    pub fn classify(f: &LifecycleFacts) -> LifecycleStage {
        let trial_unconverted = f.trial_90d > 0.0
            && match (f.days_since_last_trial, f.days_since_last_subscribe) {
                (Some(t), Some(s)) => s > t,
                (Some(_), None) => true,
                _ => false,
            };
        let happy = match f.satisfaction_mean_90d {
            Some(s) => s >= 4.0,
            None => f.complain_90d == 0.0,
        };
        if f.tenure_days < 30.0 && f.use_90d == 0.0 {
            LifecycleStage::Contact
        } else if f.tenure_days < 90.0 && !f.purchased() {
            LifecycleStage::Acquisition
        } else if f.tenure_days < 180.0 || trial_unconverted {
            LifecycleStage::Conversion
        } else if f.tenure_days >= 365.0
            && f.brand_90d > 0.0
            && happy
            && f.complaints_unresolved_90d == 0.0
        {
            LifecycleStage::Loyalty
        } else {
            LifecycleStage::Retention
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_in_order() {
        let base = LifecycleFacts {
            tenure_days: 800.0,
            use_90d: 40.0,
            subscribe_90d: 1.0,
            ..Default::default()
        };
        assert_eq!(
            LifecycleStage::classify(&LifecycleFacts {
                tenure_days: 10.0,
                use_90d: 0.0,
                ..base
            }),
            LifecycleStage::Contact
        );
        assert_eq!(
            LifecycleStage::classify(&LifecycleFacts {
                tenure_days: 60.0,
                subscribe_90d: 0.0,
                ..base
            }),
            LifecycleStage::Acquisition
        );
        // a paying subscriber has purchased, with or without a `subscribe` touchpoint
        use LifecycleStage::{Acquisition, Conversion};
        for (revenue, stage) in [
            (Some(30.0), Conversion),
            (Some(0.5), Conversion),
            (None, Acquisition),
            (Some(0.0), Acquisition),
            (Some(-5.0), Acquisition),
        ] {
            let facts = LifecycleFacts {
                tenure_days: 60.0,
                subscribe_90d: 0.0,
                revenue_90d: revenue,
                ..base
            };
            assert_eq!(LifecycleStage::classify(&facts), stage, "{revenue:?}");
        }
        assert_eq!(
            LifecycleStage::classify(&LifecycleFacts {
                tenure_days: 120.0,
                ..base
            }),
            LifecycleStage::Conversion
        );
        assert_eq!(LifecycleStage::classify(&base), LifecycleStage::Retention);
        let loyal = LifecycleFacts {
            brand_90d: 2.0,
            satisfaction_mean_90d: Some(4.5),
            ..base
        };
        assert_eq!(LifecycleStage::classify(&loyal), LifecycleStage::Loyalty);
        let angry = LifecycleFacts {
            complaints_unresolved_90d: 1.0,
            ..loyal
        };
        assert_eq!(LifecycleStage::classify(&angry), LifecycleStage::Retention);
    }
}
