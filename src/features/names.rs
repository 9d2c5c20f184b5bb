//! The names of the columns churnseg computes (SPEC §4): the core features, the
//! extended ones, the per-touchpoint counts, and all of them together with
//! `subscriber_id` ([`reserved_names`]), which neither a passed-through subscriber column
//! nor a custom feature may take.

use super::accumulate::WINDOWS;
use super::codes;
use crate::taxonomy::{Category, Kind, Stage, Taxonomy};

/// The names of the SPEC §4 core features, in output order (after `subscriber_id`).
pub fn core_feature_names() -> Vec<String> {
    let mut names = vec!["tenure_days".to_string()];
    for w in WINDOWS {
        names.push(format!("events_{w}d"));
        names.extend(Category::ALL.iter().map(|c| format!("{c}_{w}d")));
        names.extend(Stage::ALL.iter().map(|s| format!("{s}_{w}d")));
        names.extend(Kind::ALL.iter().map(|k| format!("{k}_{w}d")));
    }
    names.push("days_since_last_event".into());
    names.extend(Kind::ALL.iter().map(|k| format!("days_since_last_{k}")));
    for n in [
        "satisfaction_mean_90d",
        "low_satisfaction_90d",
        "complaints_unresolved_90d",
        "use_trend",
        "channels_distinct_90d",
        "revenue_90d",
        "cost_90d",
        "profit_90d",
    ] {
        names.push(n.into());
    }
    names
}

/// Names of the extended features, in output order (after the core features).
pub fn extended_feature_names(taxonomy: &Taxonomy) -> Vec<String> {
    let mut names: Vec<String> = codes::REASONS
        .iter()
        .map(|r| format!("reason_{r}_90d"))
        .collect();
    names.push("personnel_duration_mean_90d".into());
    names.extend(touchpoint_feature_names(taxonomy));
    names
}

/// Names of the per-touchpoint counts, in output order: for each window (7, 30, 90
/// days), `tp_{touchpoint}_{W}d` for every taxonomy touchpoint in [`Taxonomy::iter`]
/// order. Name `k + w × touchpoints` is touchpoint `k` in window `w`.
pub fn touchpoint_feature_names(taxonomy: &Taxonomy) -> Vec<String> {
    WINDOWS
        .iter()
        .flat_map(|w| {
            taxonomy
                .iter()
                .map(move |(name, _)| touchpoint_feature_name(name, *w as u32))
        })
        .collect()
}

/// `tp_{touchpoint}_{window}d`: the count of one touchpoint's events in one window.
pub fn touchpoint_feature_name(touchpoint: &str, window_days: u32) -> String {
    format!("tp_{touchpoint}_{window_days}d")
}

/// Every name the feature table gives a computed column: `subscriber_id`, the core
/// features and the extended ones, the per-touchpoint counts of `taxonomy` included
/// (whether or not a run builds the extended ones, so that `features` and `train` agree).
pub fn reserved_names(taxonomy: &Taxonomy) -> Vec<String> {
    let mut names = core_feature_names();
    names.extend(extended_feature_names(taxonomy));
    names.push("subscriber_id".into());
    names
}
