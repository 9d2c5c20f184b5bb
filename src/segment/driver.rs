//! Churn drivers (SPEC §1): customers leave for bad service (~70%), a lower price (~15%)
//! or a better product (~15%). A subscriber's driver is read from the reasons the churn
//! model gives for their risk, through a fixed mapping of features to drivers:
//!
//! | driver | features (by name or prefix) |
//! |---|---|
//! | `service` | complaints, unresolved complaints, satisfaction and low ratings, personnel and satisfaction-stage touchpoints, handling time, `service`/`operation` reasons |
//! | `price` | `price` reasons, shopping-stage touchpoints (tariff enquiries), revenue, cost, profit, monthly revenue and cost, plan and contract columns |
//! | `product` | usage and its trend, trials, subscriptions, unsubscribes, discovery, site and channel touchpoints, activity recency, `product` reasons |
//!
//! The driver is the one whose features add the most risk among the subscriber's top
//! reasons; when none of them maps to a driver, `service`, the most common one.

use serde::{Deserialize, Serialize};

/// Why a subscriber is at risk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChurnDriver {
    Service,
    Price,
    Product,
}

impl ChurnDriver {
    pub const ALL: [ChurnDriver; 3] = [
        ChurnDriver::Service,
        ChurnDriver::Price,
        ChurnDriver::Product,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ChurnDriver::Service => "service",
            ChurnDriver::Price => "price",
            ChurnDriver::Product => "product",
        }
    }

    /// The driver a feature speaks for, if any.
    pub fn of_feature(feature: &str) -> Option<ChurnDriver> {
        const SERVICE: &[&str] = &[
            "complain",
            "days_since_last_complain",
            "complaints_unresolved",
            "satisfaction",
            "low_satisfaction",
            "personnel",
            "reason_service",
            "reason_operation",
        ];
        const PRICE: &[&str] = &[
            "reason_price",
            "shopping",
            "revenue",
            "cost",
            "profit",
            "monthly_revenue",
            "monthly_cost",
            "plan",
            "contract",
            "tariff",
            "price",
            "auto_pay",
        ];
        const PRODUCT: &[&str] = &[
            "use",
            "days_since_last_use",
            "trial",
            "days_since_last_trial",
            "subscribe",
            "days_since_last_subscribe",
            "unsubscribe",
            "days_since_last_unsubscribe",
            "discover",
            "days_since_last_discover",
            "reason_product",
            "site",
            "channel",
            "events",
            "days_since_last_event",
            "search",
            "communication",
        ];
        let matches = |prefixes: &[&str]| {
            prefixes
                .iter()
                .any(|p| feature == *p || feature.starts_with(&format!("{p}_")))
        };
        if matches(SERVICE) {
            Some(ChurnDriver::Service)
        } else if matches(PRICE) {
            Some(ChurnDriver::Price)
        } else if matches(PRODUCT) {
            Some(ChurnDriver::Product)
        } else {
            None
        }
    }

    /// The driver from `(feature, contribution)` reasons: the one with the largest
    /// positive contribution in total; `service` when none maps.
    pub fn from_reasons<'a>(reasons: impl IntoIterator<Item = (&'a str, f64)>) -> ChurnDriver {
        let mut weight = [0.0f64; 3];
        for (feature, contribution) in reasons {
            if let Some(d) = ChurnDriver::of_feature(feature) {
                weight[d as usize] += contribution.max(0.0);
            }
        }
        let best = (0..3)
            .max_by(|&a, &b| weight[a].total_cmp(&weight[b]).then(b.cmp(&a)))
            .unwrap_or(0);
        if weight[best] > 0.0 {
            ChurnDriver::ALL[best]
        } else {
            ChurnDriver::Service
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_map_to_drivers() {
        assert_eq!(
            ChurnDriver::of_feature("complaints_unresolved_90d"),
            Some(ChurnDriver::Service)
        );
        assert_eq!(
            ChurnDriver::of_feature("complain_30d"),
            Some(ChurnDriver::Service)
        );
        assert_eq!(
            ChurnDriver::of_feature("satisfaction_mean_90d"),
            Some(ChurnDriver::Service)
        );
        assert_eq!(
            ChurnDriver::of_feature("reason_price_90d"),
            Some(ChurnDriver::Price)
        );
        assert_eq!(
            ChurnDriver::of_feature("monthly_revenue"),
            Some(ChurnDriver::Price)
        );
        assert_eq!(
            ChurnDriver::of_feature("use_trend"),
            Some(ChurnDriver::Product)
        );
        assert_eq!(
            ChurnDriver::of_feature("unsubscribe_30d"),
            Some(ChurnDriver::Product)
        );
        assert_eq!(ChurnDriver::of_feature("region"), None);
    }

    #[test]
    fn strongest_driver_wins_and_service_is_the_default() {
        let r = [
            ("use_trend", 0.3),
            ("reason_price_90d", 0.5),
            ("complain_7d", 0.1),
        ];
        assert_eq!(ChurnDriver::from_reasons(r), ChurnDriver::Price);
        assert_eq!(
            ChurnDriver::from_reasons([("region", 1.0)]),
            ChurnDriver::Service
        );
    }
}
