//! The touchpoint taxonomy: which touchpoint name is which category, 4S stage and
//! lifecycle kind (SPEC §2), and two facts the recommendations need. Read from TOML into
//! a raw form, then checked into typed form so that every bad entry is reported at once,
//! by touchpoint name.
//!
//! The two optional fields beyond the SPEC:
//! - `reach` (Boolean): whether the company can start this touchpoint to reach the
//!   subscriber and carry an offer (an ad or banner, a promotion, an outbound call, a
//!   club invitation, a survey), or it is an act of the subscriber's own (a login, a
//!   session, a visit, a purchase, a bill payment, a complaint, a cancellation). Only
//!   touchpoints with reach are recommended. Default when absent: a touchpoint of kind
//!   `discover` (the company's ads) has reach; one of any other kind (`trial`,
//!   `subscribe`, `use`, `complain`, `unsubscribe`: what the subscriber does) has not;
//!   one without a kind has reach unless its category is `channel` (stores, web, app and
//!   payments are places the subscriber comes to; communication, personnel and brand
//!   touchpoints the company can start).
//! - `staffed` (Boolean): whether people serve it (personnel, call centre, store), so it
//!   is never a way to cut the cost to serve. Default when absent: its category is
//!   `personnel`. A store visit is a `channel` touchpoint, so a taxonomy says
//!   `staffed = true` for it.
//!
//! Taxonomies without these fields keep loading, with the defaults; the shipped one and
//! the one `generate` writes set both for every touchpoint.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The taxonomy shipped in `pipelines/taxonomy.toml`, used when no `--taxonomy` is given.
pub const DEFAULT_TOML: &str = include_str!("../pipelines/taxonomy.toml");

crate::names::named_enum!(
    /// Touchpoint category.
    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "lowercase")]
    Category { Communication => "communication", Channel => "channel", Personnel => "personnel", Brand => "brand" }
);
crate::names::named_enum!(
    /// Stage of the 4S cycle.
    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "lowercase")]
    Stage { Search => "search", Site => "site", Shopping => "shopping", Satisfaction => "satisfaction" }
);
crate::names::named_enum!(
    /// Data-service lifecycle kind.
    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "lowercase")]
    Kind {
        Discover => "discover",
        Trial => "trial",
        Subscribe => "subscribe",
        Use => "use",
        Complain => "complain",
        Unsubscribe => "unsubscribe",
    }
);

/// What the taxonomy says about one touchpoint name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TouchpointClass {
    pub category: Category,
    pub stage: Stage,
    pub kind: Option<Kind>,
    /// The company can start it to reach the subscriber (see the module documentation).
    pub reach: bool,
    /// People serve it: never a cost-reduction step.
    pub staffed: bool,
}

impl TouchpointClass {
    /// A class with `reach` and `staffed` at their defaults (see the module documentation).
    pub fn new(category: Category, stage: Stage, kind: Option<Kind>) -> TouchpointClass {
        TouchpointClass {
            category,
            stage,
            kind,
            reach: match kind {
                Some(Kind::Discover) => true,
                Some(_) => false,
                None => category != Category::Channel,
            },
            staffed: category == Category::Personnel,
        }
    }
}

/// Touchpoint name → class. Ordered so that anything derived from it is deterministic.
#[derive(Debug, Clone, PartialEq)]
pub struct Taxonomy {
    touchpoints: BTreeMap<String, TouchpointClass>,
}

/// Why a taxonomy could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TaxonomyError {
    #[error("failed to read taxonomy {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("taxonomy {path} is not valid TOML: {message}")]
    Toml { path: String, message: String },
    #[error("taxonomy {path} has {} problem(s):\n  - {}", problems.len(), problems.join("\n  - "))]
    Invalid { path: String, problems: Vec<String> },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTaxonomy {
    #[serde(default)]
    touchpoints: BTreeMap<String, RawTouchpoint>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTouchpoint {
    category: String,
    stage: String,
    kind: Option<String>,
    reach: Option<bool>,
    staffed: Option<bool>,
}

impl Taxonomy {
    /// The shipped default taxonomy.
    pub fn shipped() -> Taxonomy {
        Taxonomy::from_toml(DEFAULT_TOML, "pipelines/taxonomy.toml")
            .unwrap_or_else(|e| unreachable!("the shipped taxonomy is checked by a test: {e}"))
    }

    /// Reads a taxonomy file, or the shipped one when `path` is `None`.
    pub fn load(path: Option<&Path>) -> Result<Taxonomy, TaxonomyError> {
        let Some(path) = path else {
            return Ok(Taxonomy::shipped());
        };
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| TaxonomyError::Read {
            path: shown.clone(),
            source,
        })?;
        Taxonomy::from_toml(&text, &shown)
    }

    /// Parses and checks TOML text; `origin` names the file in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Taxonomy, TaxonomyError> {
        let raw: RawTaxonomy = toml::from_str(text).map_err(|e| TaxonomyError::Toml {
            path: origin.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        let mut problems = Vec::new();
        let mut touchpoints = BTreeMap::new();
        for (name, entry) in raw.touchpoints {
            let category = Category::parse(&entry.category);
            let stage = Stage::parse(&entry.stage);
            let kind = entry.kind.as_deref().map(|k| Kind::parse(k).ok_or(k));
            if category.is_none() {
                problems.push(format!(
                    "touchpoint `{name}` has unknown category `{}` (expected one of: {})",
                    entry.category,
                    names(&Category::ALL)
                ));
            }
            if stage.is_none() {
                problems.push(format!(
                    "touchpoint `{name}` has unknown stage `{}` (expected one of: {})",
                    entry.stage,
                    names(&Stage::ALL)
                ));
            }
            if let Some(Err(bad)) = kind {
                problems.push(format!(
                    "touchpoint `{name}` has unknown kind `{bad}` (expected one of: {})",
                    names(&Kind::ALL)
                ));
            }
            let kind = match kind {
                None => Some(None),
                Some(Ok(kind)) => Some(Some(kind)),
                Some(Err(_)) => None,
            };
            if let (Some(category), Some(stage), Some(kind)) = (category, stage, kind) {
                let mut class = TouchpointClass::new(category, stage, kind);
                class.reach = entry.reach.unwrap_or(class.reach);
                class.staffed = entry.staffed.unwrap_or(class.staffed);
                touchpoints.insert(name, class);
            }
        }
        if problems.is_empty() {
            Ok(Taxonomy { touchpoints })
        } else {
            Err(TaxonomyError::Invalid {
                path: origin.to_string(),
                problems,
            })
        }
    }

    /// The class of a touchpoint name, or `None` for touchpoints the taxonomy lacks (`other`).
    pub fn classify(&self, touchpoint: &str) -> Option<TouchpointClass> {
        self.touchpoints.get(touchpoint).copied()
    }

    /// All touchpoints, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, TouchpointClass)> {
        self.touchpoints.iter().map(|(k, v)| (k.as_str(), *v))
    }

    /// Number of touchpoint names.
    pub fn len(&self) -> usize {
        self.touchpoints.len()
    }

    /// True when no touchpoint is defined.
    pub fn is_empty(&self) -> bool {
        self.touchpoints.is_empty()
    }

    /// Writes the taxonomy back as TOML (used by `generate`).
    pub fn to_toml(&self) -> String {
        let mut out = String::from("# touchpoint taxonomy (see SPEC §2)\n");
        for (name, class) in &self.touchpoints {
            out.push_str(&format!(
                "\n[touchpoints.{name}]\ncategory = \"{}\"\nstage = \"{}\"\n",
                class.category, class.stage
            ));
            if let Some(kind) = class.kind {
                out.push_str(&format!("kind = \"{kind}\"\n"));
            }
            out.push_str(&format!(
                "reach = {}\nstaffed = {}\n",
                class.reach, class.staffed
            ));
        }
        out
    }
}

fn names<T: fmt::Display>(all: &[T]) -> String {
    all.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_taxonomy_covers_every_category_stage_and_kind() {
        let tax = Taxonomy::from_toml(DEFAULT_TOML, "shipped").unwrap();
        for c in Category::ALL {
            assert!(
                tax.iter().any(|(_, t)| t.category == c),
                "no touchpoint in {c}"
            );
        }
        for s in Stage::ALL {
            assert!(
                tax.iter().any(|(_, t)| t.stage == s),
                "no touchpoint in {s}"
            );
        }
        for k in Kind::ALL {
            assert!(
                tax.iter().any(|(_, t)| t.kind == Some(k)),
                "no touchpoint of kind {k}"
            );
        }
    }

    #[test]
    fn round_trips_through_toml() {
        let tax = Taxonomy::shipped();
        let text = tax.to_toml();
        assert_eq!(Taxonomy::from_toml(&text, "x").unwrap(), tax);
        // the generated taxonomy says both recommendation facts for every touchpoint
        assert_eq!(text.matches("\nreach = ").count(), tax.len());
        assert_eq!(text.matches("\nstaffed = ").count(), tax.len());
    }

    #[test]
    fn shipped_taxonomy_sets_reach_and_staffing_explicitly() {
        let raw: toml::Table = toml::from_str(DEFAULT_TOML).unwrap();
        let touchpoints = raw["touchpoints"].as_table().unwrap();
        for (name, entry) in touchpoints {
            for field in ["reach", "staffed"] {
                assert!(
                    entry.get(field).and_then(toml::Value::as_bool).is_some(),
                    "shipped touchpoint `{name}` has no `{field}`"
                );
            }
        }
        let tax = Taxonomy::shipped();
        let facts = |n: &str| {
            let c = tax.classify(n).unwrap();
            (c.reach, c.staffed)
        };
        // (reach, staffed): acts of the subscriber's own are no way to reach them; people
        // serve stores, calls and enquiries
        for (n, expected) in [
            ("bill_payment", (false, false)),
            ("app_login", (false, false)),
            ("web_visit", (false, false)),
            ("store_visit", (false, true)),
            ("tariff_enquiry", (false, true)),
            ("complaint_ticket", (false, true)),
            ("store_purchase", (false, true)),
            ("promo_sms", (true, false)),
            ("promo_email", (true, false)),
            ("ad_impression", (true, false)),
            ("loyalty_club_event", (true, false)),
            ("call_centre_call", (true, true)),
        ] {
            assert_eq!(facts(n), expected, "{n}");
        }
    }

    #[test]
    fn taxonomies_without_reach_or_staffing_load_with_the_defaults() {
        let tax = Taxonomy::from_toml(
            r#"
[touchpoints.banner]
category = "communication"
stage = "search"
[touchpoints.hotline_call]
category = "personnel"
stage = "satisfaction"
[touchpoints.bill_payment]
category = "channel"
stage = "satisfaction"
[touchpoints.app_session]
category = "channel"
stage = "site"
kind = "use"
[touchpoints.web_offer]
category = "channel"
stage = "search"
kind = "discover"
[touchpoints.cancel]
category = "personnel"
stage = "satisfaction"
kind = "unsubscribe"
[touchpoints.store_visit]
category = "channel"
stage = "site"
staffed = true
[touchpoints.in_app_message]
category = "channel"
stage = "site"
reach = true
"#,
            "old.toml",
        )
        .unwrap();
        let facts = |n: &str| {
            let c = tax.classify(n).unwrap();
            (c.reach, c.staffed)
        };
        assert_eq!(facts("banner"), (true, false));
        assert_eq!(facts("hotline_call"), (true, true));
        assert_eq!(facts("bill_payment"), (false, false));
        assert_eq!(facts("app_session"), (false, false));
        assert_eq!(facts("web_offer"), (true, false));
        assert_eq!(facts("cancel"), (false, true));
        assert_eq!(facts("store_visit"), (false, true));
        assert_eq!(facts("in_app_message"), (true, false));
    }

    #[test]
    fn unknown_category_and_stage_name_the_touchpoint() {
        let err = Taxonomy::from_toml(
            "[touchpoints.foo]\ncategory = \"weird\"\nstage = \"site\"\n[touchpoints.bar]\ncategory = \"brand\"\nstage = \"nowhere\"\nkind = \"use\"\n",
            "t.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("`foo`") && err.contains("`weird`"), "{err}");
        assert!(err.contains("`bar`") && err.contains("`nowhere`"), "{err}");
    }

    #[test]
    fn invalid_toml_names_the_line() {
        let err = Taxonomy::from_toml("[touchpoints.foo]\ncategory = \n", "t.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("t.toml") && err.contains("line 2"), "{err}");
    }
}
