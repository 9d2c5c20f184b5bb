//! Custom feature definitions (issue 20, SPEC §7): what a data scientist writes in TOML as
//! `[[features.custom]]` (in a pipeline config, or a file given with `--custom`), read
//! here into [`CustomFeatures`] with the TOML line of each field. Like the taxonomy, an
//! input that says what to compute: the inputs carry it ([`crate::load::InputSpec`]), the
//! features stage evaluates it ([`crate::features::custom`]), the model artifact records it.
//!
//! A definition is an SQL aggregate over one subscriber's events in a window before
//! `as_of` (with an optional SQL filter), or (`from = "subscribers"`) an SQL row
//! expression over the subscriber table. churnseg adds the point-in-time filter itself —
//! `ts < as_of`, and `ts >= as_of − window_days` — so a definition cannot see the future:
//! the SQL never names the snapshot date.
//!
//! Checked here, with no data ([`CustomFeatures::problems`]): names (well formed, unique,
//! not one of the `reserved` names churnseg computes), the SQL parses (polars'
//! `sql_expr`), only supported aggregates are used, events definitions aggregate and
//! subscriber definitions do not. The features stage adds the checks against the Parquet
//! schemas (unknown columns, subscriber column names, non-numeric results) and reports
//! every problem at once, each with the definition's name and its TOML line.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

use polars::prelude::{AggExpr, BooleanFunction, Expr, FunctionExpr};
use serde::{Deserialize, Serialize};

/// What a custom feature is computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CustomSource {
    /// An aggregate over the subscriber's events in the window (default).
    #[default]
    Events,
    /// A row expression over the subscriber table (its columns and `tenure_days`).
    Subscribers,
}

impl CustomSource {
    fn is_events(&self) -> bool {
        *self == CustomSource::Events
    }
}

/// One `[[features.custom]]` definition, as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomFeature {
    /// Column name in the feature table. Required.
    pub name: String,
    /// `events` (default) or `subscribers`.
    #[serde(default, skip_serializing_if = "CustomSource::is_events")]
    pub from: CustomSource,
    /// Events in `[as_of − window_days, as_of)`. Default: every event before `as_of`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_days: Option<u32>,
    /// SQL filter over the event columns. Default: every event of the window.
    #[serde(default, rename = "where", skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// SQL: an aggregate over the filtered events, or a row expression over the
    /// subscriber table (`from = "subscribers"`). Required.
    pub value: String,
    /// Value for subscribers without such events. Default: null.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<f64>,
}

/// The `[features]` section of a TOML file: the custom features.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeaturesSection {
    /// `[[features.custom]]` definitions, in output order. Default: none.
    #[serde(default)]
    pub custom: Vec<CustomFeature>,
}

impl FeaturesSection {
    pub fn is_empty(&self) -> bool {
        self.custom.is_empty()
    }
}

/// Custom feature definitions and where each was read.
#[derive(Debug, Clone, Default)]
pub struct CustomFeatures {
    pub defs: Vec<CustomFeature>,
    /// The file they were read from, for messages (or the model they came with).
    pub file: String,
    /// The TOML line of each definition's fields (`name`, `value`, …), by definition.
    pub lines: Vec<BTreeMap<String, usize>>,
}

impl PartialEq for CustomFeatures {
    /// The same definitions, wherever they were read.
    fn eq(&self, other: &Self) -> bool {
        self.defs == other.defs
    }
}

/// One problem of one definition.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomProblem {
    /// The definition's name (or `#N` when it has none).
    pub name: String,
    /// `FILE line N` of the field (or of the definition).
    pub at: String,
    pub message: String,
}

impl fmt::Display for CustomProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "custom feature `{}` ({}): {}",
            self.name, self.at, self.message
        )
    }
}

/// Why custom features could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CustomError {
    #[error("failed to read custom features {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("custom features {path} are not valid: {message}")]
    Parse { path: String, message: String },
    #[error("{} problem(s) with the custom features, nothing was computed:\n  - {}", .0.len(), .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  - "))]
    Invalid(Vec<CustomProblem>),
    #[error(
        "schema mismatch: model `{model}` was trained with other custom features than {given} defines: {}; score with the definitions the model records (`churnseg score` without `--custom` uses them) or retrain",
        .differences.join("; ")
    )]
    Mismatch {
        model: String,
        given: String,
        differences: Vec<String>,
    },
    #[error("polars failed to compute the custom features{}: {message}", .of.as_ref().map(|o| format!(" over {o}")).unwrap_or_default())]
    Polars { of: Option<String>, message: String },
}

/// A file holding only custom features: `[[features.custom]]` tables.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CustomFile {
    #[serde(default)]
    features: FeaturesSection,
}

/// Reads the fields of every `[[features.custom]]` table leniently, with their spans.
#[derive(Debug, Deserialize)]
struct Located {
    #[serde(default)]
    features: Option<LocatedSection>,
}

#[derive(Debug, Deserialize)]
struct LocatedSection {
    #[serde(default)]
    custom: Vec<BTreeMap<String, toml::Spanned<toml::Value>>>,
}

/// The line of each field of each `[[features.custom]]` table of `text` (empty when the
/// text does not read as TOML).
pub fn locate(text: &str) -> Vec<BTreeMap<String, usize>> {
    let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    toml::from_str::<Located>(text)
        .ok()
        .and_then(|l| l.features)
        .map(|s| {
            s.custom
                .into_iter()
                .map(|fields| {
                    fields
                        .into_iter()
                        .map(|(k, v)| (k, line_of(v.span().start)))
                        .collect()
                })
                .collect()
        })
        .unwrap_or_default()
}

impl CustomFeatures {
    /// Definitions read from a config file's `[features]` section (`text` is the file,
    /// for the lines).
    pub fn from_section(section: &FeaturesSection, file: &str, text: &str) -> CustomFeatures {
        CustomFeatures {
            defs: section.custom.clone(),
            file: file.to_string(),
            lines: locate(text),
        }
    }

    /// Definitions recorded in a model artifact (no lines).
    pub fn from_model(defs: &[CustomFeature], model: &str) -> CustomFeatures {
        CustomFeatures {
            defs: defs.to_vec(),
            file: format!("model `{model}`"),
            lines: Vec::new(),
        }
    }

    /// Reads a `--custom FILE.toml` (only `[[features.custom]]` tables); the values are
    /// checked with the inputs, all at once.
    pub fn load(path: &Path) -> Result<CustomFeatures, CustomError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| CustomError::Read {
            path: shown.clone(),
            source,
        })?;
        let file: CustomFile = toml::from_str(&text).map_err(|e| CustomError::Parse {
            path: shown.clone(),
            message: e.to_string().trim_end().to_string(),
        })?;
        Ok(CustomFeatures::from_section(&file.features, &shown, &text))
    }

    pub fn is_empty(&self) -> bool {
        self.defs.is_empty()
    }

    /// Where definition `i`'s `field` is (falling back on its `name`, then the file).
    pub fn at(&self, i: usize, field: &str) -> String {
        let lines = self.lines.get(i);
        match lines.and_then(|l| l.get(field).or_else(|| l.get("name")).or(l.values().min())) {
            Some(line) => format!("{} line {line}", self.file),
            None => format!("{}, definition {}", self.file, i + 1),
        }
    }

    /// A problem of definition `i` at its `field`.
    pub fn problem(&self, i: usize, field: &str, message: String) -> CustomProblem {
        let name = self.defs.get(i).map_or("", |d| d.name.as_str());
        CustomProblem {
            name: if name.is_empty() {
                format!("#{}", i + 1)
            } else {
                name.to_string()
            },
            at: self.at(i, field),
            message,
        }
    }

    /// Every problem found without data: names (empty, repeated, or one of `reserved`:
    /// the columns churnseg computes), window and default values, SQL that does not
    /// parse or uses what is not supported.
    pub fn problems(&self, reserved: &[String]) -> Vec<CustomProblem> {
        let computed: BTreeSet<&String> = reserved.iter().collect();
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for (i, d) in self.defs.iter().enumerate() {
            let mut p = |field: &str, m: String| out.push(self.problem(i, field, m));
            if d.name.is_empty()
                || !d
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                p(
                    "name",
                    format!("`name` must be letters, digits and `_`, found {:?}", d.name),
                );
            } else if computed.contains(&d.name) {
                p(
                    "name",
                    format!(
                        "`{}` is the name of a feature churnseg computes; choose another name",
                        d.name
                    ),
                );
            } else if !seen.insert(d.name.clone()) {
                p("name", format!("`{}` is defined twice", d.name));
            }
            if d.window_days == Some(0) || d.window_days.is_some_and(|w| w > 36_500) {
                p(
                    "window_days",
                    format!(
                        "`window_days` must be 1 to 36500, found {}",
                        d.window_days.unwrap_or(0)
                    ),
                );
            }
            if d.default.is_some_and(|v| !v.is_finite()) {
                p("default", "`default` must be a finite number".to_string());
            }
            if d.from == CustomSource::Subscribers {
                if d.window_days.is_some() {
                    p(
                        "window_days",
                        "`window_days` applies to events; a `from = \"subscribers\"` feature has none".into(),
                    );
                }
                if d.filter.is_some() {
                    p(
                        "where",
                        "`where` applies to events; a `from = \"subscribers\"` feature has none"
                            .into(),
                    );
                }
                if d.default.is_some() {
                    p(
                        "default",
                        "`default` applies to events; a `from = \"subscribers\"` feature is computed for every subscriber".into(),
                    );
                }
            }
            match parse_sql(&d.value) {
                Err(m) => p("value", format!("`value` is not SQL polars reads: {m}")),
                Ok(expr) => {
                    for m in unsupported(&expr, d.from, "value") {
                        p("value", m);
                    }
                }
            }
            if let Some(filter) = &d.filter {
                match parse_sql(filter) {
                    Err(m) => p("where", format!("`where` is not SQL polars reads: {m}")),
                    Ok(expr) => {
                        for m in unsupported(&expr, CustomSource::Subscribers, "where") {
                            p("where", m.replace("row expression", "filter on each event"));
                        }
                    }
                }
            }
        }
        out
    }

    /// The names of the custom features, in definition (and output) order.
    pub fn names(&self) -> Vec<String> {
        self.defs.iter().map(|d| d.name.clone()).collect()
    }

    /// Checks that these definitions are those a model was trained with: each missing,
    /// added or changed definition named.
    pub fn check_model(&self, model: &[CustomFeature], version: &str) -> Result<(), CustomError> {
        let given: BTreeMap<&str, &CustomFeature> =
            self.defs.iter().map(|d| (d.name.as_str(), d)).collect();
        let trained: BTreeMap<&str, &CustomFeature> =
            model.iter().map(|d| (d.name.as_str(), d)).collect();
        let mut differences = Vec::new();
        for d in model {
            match given.get(d.name.as_str()) {
                None => differences.push(format!("`{}` is missing", d.name)),
                Some(g) if *g != d => differences.push(format!(
                    "`{}` is defined differently (model: {}; now: {})",
                    d.name,
                    describe(d),
                    describe(g)
                )),
                Some(_) => {}
            }
        }
        for d in &self.defs {
            if !trained.contains_key(d.name.as_str()) {
                differences.push(format!("`{}` is not in the model", d.name));
            }
        }
        if differences.is_empty()
            && self.names() != model.iter().map(|d| d.name.clone()).collect::<Vec<_>>()
        {
            differences.push("the definitions are in another order".into());
        }
        if differences.is_empty() {
            Ok(())
        } else {
            Err(CustomError::Mismatch {
                model: version.to_string(),
                given: self.file.clone(),
                differences,
            })
        }
    }
}

/// A definition on one line, for messages.
fn describe(d: &CustomFeature) -> String {
    let mut parts = vec![format!("value = {:?}", d.value)];
    if d.from == CustomSource::Subscribers {
        parts.insert(0, "from = \"subscribers\"".into());
    }
    if let Some(w) = d.window_days {
        parts.push(format!("window_days = {w}"));
    }
    if let Some(f) = &d.filter {
        parts.push(format!("where = {f:?}"));
    }
    if let Some(v) = d.default {
        parts.push(format!("default = {v}"));
    }
    parts.join(", ")
}

/// Parses one SQL expression with polars.
pub fn parse_sql(text: &str) -> Result<Expr, String> {
    if text.trim().is_empty() {
        return Err("it is empty".into());
    }
    polars::sql::sql_expr(text).map_err(|e| first_line(&e.to_string()))
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or("").trim().to_string()
}

/// Whether `expr` is (or holds) an aggregation.
pub fn aggregates(expr: &Expr) -> bool {
    expr.into_iter().any(|e| {
        !literal_list(e)
            && matches!(
                e,
                Expr::Agg(_)
                    | Expr::Len
                    | Expr::Function {
                        function: FunctionExpr::NullCount,
                        ..
                    }
            )
    })
}

/// A list of literals (`x IN ('a', 'b')` becomes one): no aggregation of rows.
fn literal_list(e: &Expr) -> bool {
    matches!(e, Expr::Agg(AggExpr::Implode { input, .. }) if matches!(**input, Expr::Literal(_)))
}

/// What `expr` uses that custom features do not support, each as a sentence: anything
/// that depends on the order of the rows (first, last, window functions, sorting), and
/// for a row expression (`from = "subscribers"`, or a `where`) any aggregate; for an
/// events `value`, no aggregate at all.
fn unsupported(expr: &Expr, from: CustomSource, field: &str) -> Vec<String> {
    let mut found = BTreeSet::new();
    for e in expr {
        let what = match e {
            e if literal_list(e) => None,
            Expr::Agg(agg) => match agg {
                AggExpr::Min { .. }
                | AggExpr::Max { .. }
                | AggExpr::Median(_)
                | AggExpr::NUnique(_)
                | AggExpr::Mean(_)
                | AggExpr::Count { .. }
                | AggExpr::Sum(_)
                | AggExpr::Std(..)
                | AggExpr::Var(..) => None,
                _ => Some("first, last and list aggregates (they depend on the order of the events)"),
            },
            Expr::Over { .. } => Some("window functions (`OVER`)"),
            Expr::Sort { .. } | Expr::SortBy { .. } | Expr::Gather { .. } | Expr::Slice { .. } => {
                Some("sorting, slicing and gathering rows")
            }
            Expr::Filter { .. } | Expr::Explode { .. } => {
                Some("`FILTER` clauses and exploding (write the filter in `where`)")
            }
            Expr::Selector(_) => Some("`*` outside `count(*)`"),
            Expr::Function { function, .. } => {
                (!elementwise(function) && !matches!(function, FunctionExpr::NullCount))
                    .then_some("functions that are not computed row by row (cumulative, ranking, shifting, reductions other than count, sum, avg, min, max, median, stddev and variance)")
            }
            Expr::Column(_)
            | Expr::Literal(_)
            | Expr::Alias(..)
            | Expr::BinaryExpr { .. }
            | Expr::Cast { .. }
            | Expr::Ternary { .. }
            | Expr::Len => None,
            _ => Some("this kind of expression"),
        };
        if let Some(w) = what {
            found.insert(format!(
                "`{field}` uses {w}, which custom features do not support"
            ));
        }
    }
    let has_agg = aggregates(expr);
    match from {
        CustomSource::Events if !has_agg => {
            found.insert(format!(
                "`{field}` must aggregate the events (e.g. `sum(duration_s)`, `count(*)`, `avg(satisfaction)`)"
            ));
        }
        CustomSource::Subscribers if has_agg => {
            found.insert(format!(
                "`{field}` must be a row expression, without aggregates (count, sum, avg, …)"
            ));
        }
        _ => {}
    }
    found.into_iter().collect()
}

/// Functions computed row by row (their value on a row depends on that row alone).
fn elementwise(function: &FunctionExpr) -> bool {
    use FunctionExpr as F;
    match function {
        F::Abs
        | F::Negate
        | F::Pow(_)
        | F::Trigonometry(_)
        | F::Atan2
        | F::Sign
        | F::FillNull
        | F::Clip { .. }
        | F::Coalesce
        | F::Log
        | F::Log1p
        | F::Exp
        | F::Round { .. }
        | F::RoundSF { .. }
        | F::Truncate { .. }
        | F::Floor
        | F::Ceil
        | F::MaxHorizontal
        | F::MinHorizontal
        | F::SumHorizontal { .. }
        | F::MeanHorizontal { .. }
        | F::StringExpr(_)
        | F::TemporalExpr(_) => true,
        F::Boolean(b) => matches!(
            b,
            BooleanFunction::IsNull
                | BooleanFunction::IsNotNull
                | BooleanFunction::IsFinite
                | BooleanFunction::IsInfinite
                | BooleanFunction::IsNan
                | BooleanFunction::IsNotNan
                | BooleanFunction::IsIn { .. }
                | BooleanFunction::AllHorizontal
                | BooleanFunction::AnyHorizontal
                | BooleanFunction::Not
        ),
        _ => false,
    }
}

/// Every column `expr` reads, sorted.
pub fn columns(expr: &Expr) -> Vec<String> {
    let mut names: BTreeSet<String> = BTreeSet::new();
    for e in expr {
        if let Expr::Column(name) = e {
            names.insert(name.to_string());
        }
    }
    names.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> CustomFeatures {
        let file: CustomFile = toml::from_str(text).unwrap();
        CustomFeatures::from_section(&file.features, "c.toml", text)
    }

    #[test]
    fn every_problem_is_named_with_its_line() {
        let text = r#"
[[features.custom]]
name = "tenure_days"
value = "sum(revenue)"

[[features.custom]]
name = "bad_sql"
window_days = 0
value = "sum(revenue"

[[features.custom]]
name = "not_aggregated"
value = "revenue * 2"

[[features.custom]]
name = "per_day"
from = "subscribers"
where = "channel = 'app'"
value = "avg(monthly_revenue)"

[[features.custom]]
name = "ordered"
value = "first(revenue)"
"#;
        let problems: Vec<String> = read(text)
            .problems(&["tenure_days".to_string()])
            .iter()
            .map(ToString::to_string)
            .collect();
        let all = problems.join("\n");
        for needle in [
            "custom feature `tenure_days` (c.toml line 3): `tenure_days` is the name of a feature churnseg computes",
            "custom feature `bad_sql` (c.toml line 8): `window_days` must be 1 to 36500",
            "custom feature `bad_sql` (c.toml line 9): `value` is not SQL polars reads",
            "custom feature `not_aggregated` (c.toml line 13): `value` must aggregate the events",
            "custom feature `per_day` (c.toml line 18): `where` applies to events",
            "custom feature `per_day` (c.toml line 19): `value` must be a row expression",
            "custom feature `ordered` (c.toml line 23): `value` uses first, last",
        ] {
            assert!(all.contains(needle), "{needle:?} not in\n{all}");
        }
        assert_eq!(problems.len(), 7, "{all}");
    }

    #[test]
    fn good_definitions_pass_and_name_their_columns() {
        let text = r#"
[[features.custom]]
name = "app_minutes_30d"
window_days = 30
where = "channel = 'app'"
value = "sum(duration_s) / 60"
default = 0

[[features.custom]]
name = "revenue_per_tenure_day"
from = "subscribers"
value = "monthly_revenue / (tenure_days + 1)"

[[features.custom]]
name = "calls_and_visits"
where = "channel IN ('call_centre', 'store')"
value = "count(*)"

[[features.custom]]
name = "distinct_reasons"
value = "count(distinct reason) + count(*) * 0 + coalesce(max(satisfaction), 0)"
"#;
        let custom = read(text);
        assert_eq!(custom.problems(&[]), vec![]);
        assert_eq!(custom.defs[0].default, Some(0.0));
        let value = parse_sql(&custom.defs[3].value).unwrap();
        assert_eq!(columns(&value), vec!["reason", "satisfaction"]);
    }

    #[test]
    fn a_model_names_every_changed_definition() {
        let text = r#"
[[features.custom]]
name = "a"
value = "count(*)"
[[features.custom]]
name = "b"
window_days = 7
value = "sum(revenue)"
"#;
        let model = read(text).defs;
        let mut now = read(text);
        assert!(now.check_model(&model, "m-1").is_ok());
        now.defs[1].window_days = Some(30);
        now.defs.remove(0);
        let err = now.check_model(&model, "m-1").unwrap_err().to_string();
        assert!(err.contains("schema mismatch"), "{err}");
        assert!(err.contains("`a` is missing"), "{err}");
        assert!(err.contains("`b` is defined differently"), "{err}");
    }
}
