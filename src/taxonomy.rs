//! The touchpoint taxonomy: which touchpoint name is which category, 4S stage and
//! lifecycle kind (SPEC §2). Read from TOML into a raw form, then checked into typed
//! form so that every bad entry is reported at once, by touchpoint name.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::Deserialize;

/// The taxonomy shipped in `pipelines/taxonomy.toml`, used when no `--taxonomy` is given.
pub const DEFAULT_TOML: &str = include_str!("../pipelines/taxonomy.toml");

macro_rules! domain_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            /// Every value, in the order the SPEC lists them (and features are named).
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The lowercase name used in TOML files and feature names.
            pub fn name(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses the lowercase name.
            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }

            /// Position in [`Self::ALL`].
            pub fn index(self) -> usize {
                self as usize
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

domain_enum!(
    /// Touchpoint category.
    Category { Communication => "communication", Channel => "channel", Personnel => "personnel", Brand => "brand" }
);
domain_enum!(
    /// Stage of the 4S cycle.
    Stage { Search => "search", Site => "site", Shopping => "shopping", Satisfaction => "satisfaction" }
);
domain_enum!(
    /// Data-service lifecycle kind.
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TouchpointClass {
    pub category: Category,
    pub stage: Stage,
    pub kind: Option<Kind>,
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
                    names(Category::ALL)
                ));
            }
            if stage.is_none() {
                problems.push(format!(
                    "touchpoint `{name}` has unknown stage `{}` (expected one of: {})",
                    entry.stage,
                    names(Stage::ALL)
                ));
            }
            if let Some(Err(bad)) = kind {
                problems.push(format!(
                    "touchpoint `{name}` has unknown kind `{bad}` (expected one of: {})",
                    names(Kind::ALL)
                ));
            }
            match (category, stage, kind) {
                (Some(category), Some(stage), None) => {
                    touchpoints.insert(
                        name,
                        TouchpointClass {
                            category,
                            stage,
                            kind: None,
                        },
                    );
                }
                (Some(category), Some(stage), Some(Ok(kind))) => {
                    touchpoints.insert(
                        name,
                        TouchpointClass {
                            category,
                            stage,
                            kind: Some(kind),
                        },
                    );
                }
                _ => {}
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
                tax.iter().any(|(_, t)| t.category == *c),
                "no touchpoint in {c}"
            );
        }
        for s in Stage::ALL {
            assert!(
                tax.iter().any(|(_, t)| t.stage == *s),
                "no touchpoint in {s}"
            );
        }
        for k in Kind::ALL {
            assert!(
                tax.iter().any(|(_, t)| t.kind == Some(*k)),
                "no touchpoint of kind {k}"
            );
        }
    }

    #[test]
    fn round_trips_through_toml() {
        let tax = Taxonomy::shipped();
        assert_eq!(Taxonomy::from_toml(&tax.to_toml(), "x").unwrap(), tax);
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
