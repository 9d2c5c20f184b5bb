//! The pipeline config: one TOML file per nightly job (`pipelines/*.toml`). It says what
//! the job does — inputs, dates, model settings, thresholds, outputs; how one run executes
//! (threads, quiet) is a command-line flag. Relative paths are taken from the directory
//! the command runs in.
//!
//! Read into this raw form (unknown fields are errors), then [`PipelineConfig::check`]
//! reports every problem at once. When the file does not deserialise, every field is
//! tried on its own ([`type_problems`]), so that all wrong types, unknown fields and
//! missing fields are reported together, with the value problems of the fields that did
//! read.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::asof::AsOf;
use crate::custom_features::{CustomFeatures, FeaturesSection};
use crate::guard::GuardSettings;
use crate::model::ChurnParams;
use crate::score::ScoreParams;
use crate::train::TrainParams;

/// A nightly job.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Name of the job, used in the model version. Default: the file's stem.
    #[serde(default)]
    pub name: Option<String>,
    /// Seed for every random choice (model subsampling, holdout splits). Default 42.
    #[serde(default = "default_seed")]
    pub seed: u64,
    pub inputs: InputsConfig,
    /// Create the inputs with `churnseg generate` when they are missing (demo jobs).
    #[serde(default)]
    pub generate: Option<GenerateConfig>,
    pub train: TrainConfig,
    pub score: ScoreConfig,
    pub output: OutputConfig,
    /// Health guards: thresholds and the checks allowed to fail (see [`GuardSettings`]).
    /// Default: every guard on, at its default threshold.
    #[serde(default)]
    pub guards: GuardSettings,
    /// The report (currency). Default: no currency symbol.
    #[serde(default)]
    pub report: ReportConfig,
    /// Custom features (`[[features.custom]]`, see [`crate::custom_features`]). Default:
    /// none.
    #[serde(default, skip_serializing_if = "FeaturesSection::is_empty")]
    pub features: FeaturesSection,
    /// How the job runs shard by shard (`[sharding]`, see the README, "Sharding");
    /// `run --shards` / `--max-memory` override it. Default: in one piece.
    #[serde(default, skip_serializing_if = "ShardingConfig::is_empty")]
    pub sharding: ShardingConfig,
    /// The custom features with the config file's lines (set by [`PipelineConfig::load`]).
    #[serde(skip)]
    pub custom: CustomFeatures,
}

/// Shard by shard: a count, or a memory budget that picks it (not both).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardingConfig {
    /// Run shard by shard, in this many shards (1 to 4096). Default: in one piece.
    #[serde(default)]
    pub shards: Option<u32>,
    /// Pick the number of shards so that peak memory stays under this size, e.g.
    /// `"2GiB"`. Default: none.
    #[serde(default)]
    pub max_memory: Option<String>,
    /// Directory for the shards' partial results. Default: beside the scored table.
    #[serde(default)]
    pub scratch: Option<PathBuf>,
}

impl ShardingConfig {
    pub fn is_empty(&self) -> bool {
        *self == ShardingConfig::default()
    }

    /// The budget in bytes, when one is set and reads.
    pub fn max_memory_bytes(&self) -> Option<u64> {
        self.max_memory
            .as_deref()
            .and_then(|m| super::sharded::parse_size(m).ok())
    }

    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.shards.is_some() && self.max_memory.is_some() {
            problems.push(
                "`sharding.shards` and `sharding.max_memory` are both set: give one (the budget picks the count)"
                    .to_string(),
            );
        }
        if let Some(k) = self.shards
            && !(1..=4096).contains(&k)
        {
            problems.push(format!(
                "`sharding.shards` must be from 1 to 4096, found {k}"
            ));
        }
        if let Some(m) = &self.max_memory
            && let Err(e) = super::sharded::parse_size(m)
        {
            problems.push(format!("`sharding.max_memory`: {e}"));
        }
        problems
    }
}

/// Where the inputs are.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputsConfig {
    /// Subscriber table (file, directory or glob). Required.
    pub subscribers: PathBuf,
    /// Touchpoint events. Default: none (subscriber columns only).
    #[serde(default)]
    pub interactions: Option<PathBuf>,
    /// Taxonomy TOML. Default: the shipped `pipelines/taxonomy.toml`.
    #[serde(default)]
    pub taxonomy: Option<PathBuf>,
    /// Fail on touchpoints missing from the taxonomy. Default false.
    #[serde(default)]
    pub strict: bool,
    /// Subscriber columns not to use as features. Default: none.
    #[serde(default)]
    pub exclude_columns: Vec<String>,
}

/// Synthetic inputs for demos.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateConfig {
    /// Number of subscribers. Default 20 000.
    #[serde(default = "default_generate_subscribers")]
    pub subscribers: usize,
    /// Days of history. Default 365.
    #[serde(default = "default_generate_days")]
    pub days: u32,
    /// First day after the history. Default 2026-07-01.
    #[serde(default = "default_generate_end")]
    pub end: AsOf,
    /// Directory to write. Required.
    pub out: PathBuf,
}

// ---- the nightly job's dates, retraining, outputs and report (issue 19) ----
pub use super::dates::{DateRule, Retrain};

/// How `output.dir` is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// One folder per night, `as_of=YYYY-MM-DD/`, with `runs.jsonl` and `latest` at the
    /// top (default).
    #[default]
    ByDate,
    /// The night's files straight in `output.dir`, replacing the previous night's.
    Flat,
}

/// The report.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportConfig {
    /// Symbol put before money amounts, e.g. `"¥"`. Default: none.
    #[serde(default)]
    pub currency: String,
}
// ---- end of the issue-19 block ----

/// Model training.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// When to train: `always`, `if_missing`, `never` or `every Nd` (when the model's
    /// training date is N days or more before tonight's). Default `if_missing`.
    #[serde(default = "default_retrain")]
    pub retrain: Retrain,
    /// Also train when the newest realised ROC AUC is below this (0–1). Default: none.
    #[serde(default)]
    pub retrain_below_auc: Option<f64>,
    /// Snapshot date of the final model: `YYYY-MM-DD` or `-Nd` (N days before the
    /// scoring date); must leave `horizon_days` observed before the scoring date. Required.
    pub as_of: DateRule,
    /// Churn horizon in days. Default 90.
    #[serde(default = "default_horizon")]
    pub horizon_days: u32,
    /// Model directory. Required.
    pub model: PathBuf,
    /// The churn model's settings ([`ChurnParams`]: `n_trees`, `learning_rate`,
    /// `max_leaves`, …), each at its default when absent. `seed`, `exclude`, `candidate`
    /// and `baselines` are set elsewhere (the top-level `seed`, `inputs.exclude_columns`,
    /// `train.candidate`; the baselines are the validation's own).
    #[serde(default)]
    pub boosting: ChurnParams,
    /// Snapshots stacked per model, at most (1 = only the `as_of` one). Default 3.
    #[serde(default = "default_snapshots")]
    pub snapshots: usize,
    /// Days between stacked snapshots. Default 30.
    #[serde(default = "default_snapshot_step")]
    pub snapshot_step_days: u32,
    /// The churn model to ship: `auto` (the one validation prefers), `gbdt`, `logistic`
    /// or `blend`. Default `auto`.
    #[serde(default)]
    pub candidate: crate::train::CandidateChoice,
    /// Windows (days, from 7, 30, 90) of the per-touchpoint counts the models read.
    /// Default `[90]`.
    #[serde(default = "default_touchpoint_windows")]
    pub touchpoint_windows: Vec<u32>,
    /// Train on a hash sample of at most this many subscribers (those whose Spark
    /// xxhash64 of `subscriber_id` is among the smallest, as `train --sample N`): the
    /// same sample whatever the input order or the number of shards. Default: everyone.
    #[serde(default)]
    pub sample: Option<u64>,
}

fn default_touchpoint_windows() -> Vec<u32> {
    crate::train::DEFAULT_TOUCHPOINT_WINDOWS.to_vec()
}

fn default_snapshots() -> usize {
    TrainParams::SNAPSHOTS
}

fn default_snapshot_step() -> u32 {
    TrainParams::SNAPSHOT_STEP_DAYS
}

/// Scoring and targeting.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreConfig {
    /// Snapshot date to score: `YYYY-MM-DD`, `today` or `yesterday` (UTC); `run
    /// --as-of` overrides it. Required.
    pub as_of: DateRule,
    /// Risk deciles counted as high risk for the loyalty action (1–10). Default 3.
    #[serde(default = "default_high_risk_deciles")]
    pub high_risk_deciles: u8,
    /// Recommended touchpoints per subscriber (1–3). Default 2.
    #[serde(default = "default_touchpoints")]
    pub max_touchpoints: usize,
    /// Retention budget per run; default none (nobody `targeted`).
    #[serde(default)]
    pub budget: Option<f64>,
    /// Cost of one retention offer. Default 10.
    #[serde(default = "default_offer_cost")]
    pub offer_cost: f64,
    /// Share of would-be churners an offer keeps. Default 0.3.
    #[serde(default = "default_save_rate")]
    pub save_rate: f64,
}

/// Outputs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// Directory for `scored.parquet`, `manifest.json`, the report and the contact list.
    /// Required.
    pub dir: PathBuf,
    /// `by_date` (a folder per night, a run index and a `latest` pointer) or `flat`.
    /// Default `by_date`.
    #[serde(default)]
    pub layout: Layout,
}

fn default_seed() -> u64 {
    TrainParams::SEED
}
fn default_generate_subscribers() -> usize {
    20_000
}
fn default_generate_days() -> u32 {
    365
}
fn default_generate_end() -> AsOf {
    AsOf::from_date(crate::generate::DEFAULT_END)
}
fn default_retrain() -> Retrain {
    Retrain::IfMissing
}
fn default_horizon() -> u32 {
    TrainParams::HORIZON_DAYS
}
// The training and scoring defaults are said once, in `TrainParams` and `ScoreParams`.
fn default_high_risk_deciles() -> u8 {
    ScoreParams::default().high_risk_deciles
}
fn default_touchpoints() -> usize {
    ScoreParams::default().max_touchpoints
}
fn default_offer_cost() -> f64 {
    ScoreParams::default().offer_cost
}
fn default_save_rate() -> f64 {
    ScoreParams::default().save_rate
}

/// Why a config could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("failed to read pipeline config {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("pipeline config {path} is not valid: {message}")]
    Parse { path: String, message: String },
    #[error("pipeline config {path} has {} problem(s):\n  - {}", problems.len(), problems.join("\n  - "))]
    Invalid { path: String, problems: Vec<String> },
}

impl PipelineConfig {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<PipelineConfig, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        if let Ok(mut table) = toml::from_str::<toml::Table>(&text) {
            let mut problems = misplaced(&mut table);
            if !problems.is_empty() {
                problems.extend(type_problems(&table));
                problems.extend(table_excluded(&table));
                return Err(ConfigError::Invalid {
                    path: shown,
                    problems,
                });
            }
        }
        let mut config: PipelineConfig = match toml::from_str(&text) {
            Ok(config) => config,
            Err(e) => {
                let parse = || ConfigError::Parse {
                    path: shown.clone(),
                    message: e.to_string().trim_end().to_string(),
                };
                // A syntax error has no fields to try one by one.
                let table: toml::Table = toml::from_str(&text).map_err(|_| parse())?;
                let mut problems = type_problems(&table);
                if problems.is_empty() {
                    return Err(parse());
                }
                problems.extend(table_excluded(&table));
                return Err(ConfigError::Invalid {
                    path: shown,
                    problems,
                });
            }
        };
        if config.name.is_none() {
            config.name = path.file_stem().map(|s| s.to_string_lossy().into_owned());
        }
        config.custom = CustomFeatures::from_section(&config.features, &shown, &text);
        let mut problems = config.check().err().unwrap_or_default();
        problems.extend(missing_excluded(
            &config.inputs.subscribers,
            &config.inputs.exclude_columns,
        ));
        // every problem of the custom features, against the input files when they exist
        let spec = config.input_spec();
        let taxonomy = crate::taxonomy::Taxonomy::load(spec.taxonomy.as_deref()).ok();
        problems.extend(
            crate::features::custom::problems(&spec, taxonomy.as_ref())
                .iter()
                .map(ToString::to_string),
        );
        if !problems.is_empty() {
            return Err(ConfigError::Invalid {
                path: shown,
                problems,
            });
        }
        Ok(config)
    }

    /// The inputs of this job: paths, excluded columns and custom features.
    pub fn input_spec(&self) -> crate::load::InputSpec {
        crate::load::InputSpec {
            subscribers: self.inputs.subscribers.clone(),
            interactions: self.inputs.interactions.clone(),
            taxonomy: self.inputs.taxonomy.clone(),
            subscriber_columns: crate::load::SubscriberColumns {
                exclude: self.inputs.exclude_columns.clone(),
                ..Default::default()
            },
            custom: self.custom.clone(),
            ..crate::load::InputSpec::default()
        }
    }

    /// The training parameters this job asks for, training at `as_of` (the night's
    /// resolved `train.as_of`).
    pub fn train_params(&self, name: &str, as_of: AsOf) -> TrainParams {
        let mut params = TrainParams::new(as_of, name);
        params.horizon_days = self.train.horizon_days;
        params.churn = ChurnParams {
            seed: self.seed,
            ..self.train.boosting.clone()
        };
        params.seed = self.seed;
        params.snapshots = self.train.snapshots;
        params.snapshot_step_days = self.train.snapshot_step_days;
        params.candidate = self.train.candidate.forced();
        params.touchpoint_windows = self.train.touchpoint_windows.clone();
        params.guards = self.guards.clone();
        params
    }

    /// The scoring parameters this job asks for.
    pub fn score_params(&self) -> ScoreParams {
        ScoreParams {
            high_risk_deciles: self.score.high_risk_deciles,
            max_touchpoints: self.score.max_touchpoints,
            budget: self.score.budget,
            offer_cost: self.score.offer_cost,
            save_rate: self.score.save_rate,
            ..ScoreParams::default()
        }
    }

    /// Every problem with the values, at once.
    pub fn check(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        // The dates are checked below; the parameter types judge everything else.
        let train = self.train_params(self.name.as_deref().unwrap_or("model"), AsOf::from_days(0));
        problems.extend(
            train
                .problems()
                .into_iter()
                .map(|p| p.within("train").to_string()),
        );
        problems.extend(
            self.score_params()
                .problems()
                .into_iter()
                .map(|p| p.within("score").to_string()),
        );
        if let (DateRule::Date(train), DateRule::Date(score)) = (self.train.as_of, self.score.as_of)
            && train > score
        {
            problems.push(format!(
                "`train.as_of` ({train}) is after `score.as_of` ({score}): a model cannot learn from the future it scores"
            ));
        }
        if let DateRule::DaysBefore(_) = self.score.as_of {
            problems.push(format!(
                "`score.as_of = \"{}\"` is relative to the scoring date itself: write a date, today or yesterday",
                self.score.as_of
            ));
        }
        if let Some(f) = self.train.retrain_below_auc
            && !(f > 0.0 && f <= 1.0)
        {
            problems.push(format!(
                "`train.retrain_below_auc` must be in (0, 1], found {f}"
            ));
        }
        if let Some(g) = &self.generate
            && (g.subscribers == 0 || g.days == 0)
        {
            problems
                .push("`generate.subscribers` and `generate.days` must be at least 1".to_string());
        }
        problems.extend(self.guards.problems("guards."));
        problems.extend(self.sharding.problems());
        let mut seen = std::collections::BTreeSet::new();
        for c in &self.inputs.exclude_columns {
            if !seen.insert(c) {
                problems.push(format!("`inputs.exclude_columns` names `{c}` twice"));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

/// [`missing_excluded`] of a config that did not deserialise, read from its table.
fn table_excluded(table: &toml::Table) -> Option<String> {
    let inputs = table.get("inputs");
    let subscribers = inputs.and_then(|i| i.get("subscribers")?.as_str())?;
    let exclude: Vec<String> = inputs
        .and_then(|i| i.get("exclude_columns")?.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|v| Some(v.as_str()?.to_string()))
                .collect()
        })
        .unwrap_or_default();
    missing_excluded(Path::new(subscribers), &exclude)
}

/// The columns of `exclude` that the subscriber file at `subscribers` lacks, as a problem;
/// nothing when the file is not there yet (`[generate]` makes it; loading reports it).
fn missing_excluded(subscribers: &Path, exclude: &[String]) -> Option<String> {
    if exclude.is_empty() {
        return None;
    }
    let source = crate::load::ParquetSource::resolve(subscribers).ok()?;
    let schema = source.open(0).ok()?.schema().clone();
    let missing: Vec<String> = exclude
        .iter()
        .filter(|c| schema.field_with_name(c).is_err())
        .map(|c| format!("`{c}`"))
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "`inputs.exclude_columns` names column(s) {} that {} does not have",
            missing.join(", "),
            subscribers.display()
        )
    })
}

/// Keys this version reads elsewhere, by section, and where they belong.
const MISPLACED: [(&str, &str, &str); 7] = [
    ("train", "n_trees", "is now `n_trees` in `[train.boosting]`"),
    (
        "train",
        "learning_rate",
        "is now `learning_rate` in `[train.boosting]`",
    ),
    (
        "train",
        "max_leaves",
        "is now `max_leaves` in `[train.boosting]`",
    ),
    (
        "train.boosting",
        "seed",
        "is not read: the top-level `seed` seeds every model",
    ),
    (
        "train.boosting",
        "exclude",
        "is not read: set `inputs.exclude_columns`",
    ),
    (
        "train.boosting",
        "candidate",
        "is not read: set `train.candidate`",
    ),
    (
        "train.boosting",
        "baselines",
        "is not read: the validation always judges the baselines",
    ),
];

/// Takes the [`MISPLACED`] keys out of `table`, saying where each belongs.
fn misplaced(table: &mut toml::Table) -> Vec<String> {
    let mut problems = Vec::new();
    for (section, key, why) in MISPLACED {
        let mut t = Some(&mut *table);
        for part in section.split('.') {
            t = t.and_then(|t| t.get_mut(part)?.as_table_mut());
        }
        if t.and_then(|t| t.remove(key)).is_some() {
            problems.push(format!("`{section}.{key}` {why}"));
        }
    }
    problems
}

/// The required fields of each section (and the sections themselves, under `""`): what
/// serde would report one at a time as `missing field`.
const REQUIRED: [(&str, &[&str]); 6] = [
    ("", &["inputs", "train", "score", "output"]),
    ("inputs", &["subscribers"]),
    ("generate", &["out"]),
    ("train", &["as_of", "model"]),
    ("score", &["as_of"]),
    ("output", &["dir"]),
];

/// Whether a deserialisation error is only serde's `missing field` (so the fields that
/// were present read well).
fn only_missing(e: &toml::de::Error) -> bool {
    e.message().starts_with("missing field")
}

/// Tries `key = value` alone as a `T`: its problem, unless the value reads well.
fn field_problem<T: serde::de::DeserializeOwned>(
    section: &str,
    key: &str,
    value: &toml::Value,
) -> Option<String> {
    let mut one = toml::Table::new();
    one.insert(key.to_string(), value.clone());
    let e = T::deserialize(toml::Value::Table(one)).err()?;
    (!only_missing(&e)).then(|| {
        let path = if section.is_empty() {
            key.to_string()
        } else {
            format!("{section}.{key}")
        };
        format!("`{path}`: {}", e.message().trim_end())
    })
}

/// The problems of one section's table, every field tried on its own; `table` keeps
/// only the fields that read well.
fn section_problems<T: serde::de::DeserializeOwned>(
    section: &str,
    table: &mut toml::Table,
    problems: &mut Vec<String>,
) {
    let bad: Vec<String> = table
        .iter()
        .filter_map(|(k, v)| {
            let p = field_problem::<T>(section, k, v)?;
            problems.push(p);
            Some(k.clone())
        })
        .collect();
    for k in bad {
        table.remove(&k);
    }
    let required = REQUIRED
        .iter()
        .find(|(s, _)| *s == section)
        .map_or(&[][..], |(_, r)| *r);
    for r in required {
        if !table.contains_key(*r) {
            problems.push(if section.is_empty() {
                format!("missing section `[{r}]`")
            } else {
                format!("missing field `{section}.{r}`")
            });
        }
    }
}

/// Every problem of a config that does not deserialise: wrong types, unknown fields and
/// missing fields, each named by its path; then, when what is left reads (every required
/// field present and well typed), the value problems of [`PipelineConfig::check`].
pub fn type_problems(table: &toml::Table) -> Vec<String> {
    let mut problems = Vec::new();
    let mut kept = toml::Table::new();
    for (key, value) in table {
        let mut value = value.clone();
        let section = |value: &mut toml::Value, problems: &mut Vec<String>| {
            let Some(t) = value.as_table_mut() else {
                problems.push(format!(
                    "`{key}` must be a table (`[{key}]`), found a {}",
                    value.type_str()
                ));
                return false;
            };
            match key.as_str() {
                "inputs" => section_problems::<InputsConfig>(key, t, problems),
                "generate" => section_problems::<GenerateConfig>(key, t, problems),
                "train" => section_problems::<TrainConfig>(key, t, problems),
                "score" => section_problems::<ScoreConfig>(key, t, problems),
                "output" => section_problems::<OutputConfig>(key, t, problems),
                "report" => section_problems::<ReportConfig>(key, t, problems),
                "features" => section_problems::<FeaturesSection>(key, t, problems),
                "sharding" => section_problems::<ShardingConfig>(key, t, problems),
                _ => section_problems::<GuardSettings>(key, t, problems),
            }
            true
        };
        let keep = match key.as_str() {
            "inputs" | "generate" | "train" | "score" | "output" | "guards" | "report"
            | "features" | "sharding" => section(&mut value, &mut problems),
            _ => match field_problem::<PipelineConfig>("", key, &value) {
                Some(p) => {
                    problems.push(p);
                    false
                }
                None => true,
            },
        };
        if keep {
            kept.insert(key.clone(), value);
        }
    }
    section_problems::<PipelineConfig>("", &mut kept.clone(), &mut problems);
    fill_required(&mut kept);
    if let Ok(config) = PipelineConfig::deserialize(toml::Value::Table(kept))
        && let Err(more) = config.check()
    {
        problems.extend(more);
    }
    problems
}

/// Puts a placeholder where a required field is missing or was removed for its type, so
/// that the value checks can judge the rest: an empty path, or for a missing `as_of` the
/// other section's (so that their order raises no problem of its own).
fn fill_required(table: &mut toml::Table) {
    let date = |t: &toml::Table, section: &str| {
        t.get(section)
            .and_then(|s| s.get("as_of"))
            .cloned()
            .unwrap_or_else(|| toml::Value::String("1970-01-01".into()))
    };
    let (for_train, for_score) = (date(table, "score"), date(table, "train"));
    for (section, fields) in REQUIRED.iter().skip(1) {
        if *section == "generate" && !table.contains_key("generate") {
            continue;
        }
        let entry = table
            .entry(section.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let Some(t) = entry.as_table_mut() else {
            continue;
        };
        for field in *fields {
            let placeholder = match (*section, *field) {
                ("train", "as_of") => for_train.clone(),
                ("score", "as_of") => for_score.clone(),
                _ => toml::Value::String(String::new()),
            };
            t.entry(field.to_string()).or_insert(placeholder);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_demo_config_is_valid() {
        let config = PipelineConfig::load(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/pipelines/demo.toml"
        )))
        .unwrap();
        assert_eq!(config.name.as_deref(), Some("demo"));
    }

    #[test]
    fn every_problem_is_reported() {
        let text = r#"
            [inputs]
            subscribers = "s.parquet"
            [train]
            as_of = "2026-07-01"
            horizon_days = 0
            model = "models/x"
            [score]
            as_of = "2026-06-01"
            high_risk_deciles = 11
            [output]
            dir = "out"
        "#;
        let config: PipelineConfig = toml::from_str(text).unwrap();
        let problems = config.check().unwrap_err();
        assert_eq!(problems.len(), 3, "{problems:?}");
    }

    /// The boosting settings, the training and the scoring settings are checked by
    /// their own parameter types, every problem at once, named by its TOML path.
    #[test]
    fn boosting_settings_are_checked_with_the_rest() {
        let text = r#"
            [inputs]
            subscribers = "s.parquet"
            [train]
            as_of = "2026-04-01"
            model = "models/x"
            snapshots = 0
            [train.boosting]
            lambda = -1.0
            max_leaves = 1
            n_trees = 40
            [score]
            as_of = "2026-07-01"
            offer_cost = 0
            [output]
            dir = "out"
        "#;
        let config: PipelineConfig = toml::from_str(text).unwrap();
        let problems = config.check().unwrap_err().join("\n");
        for needle in [
            "`train.snapshots` must be at least 1",
            "`train.boosting.lambda` must be finite and >= 0, got -1",
            "`train.boosting.max_leaves` must be at least 2, got 1",
            "`score.offer_cost` must be above 0, got 0",
        ] {
            assert!(problems.contains(needle), "{needle:?} not in {problems}");
        }
        let params = config.train_params("x", AsOf::from_days(0));
        assert_eq!(params.churn.n_trees, 40);
        assert_eq!(params.churn.seed, config.seed);
    }

    #[test]
    fn keys_set_elsewhere_are_named_with_where_they_belong() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("moved.toml");
        std::fs::write(
            &path,
            "[inputs]\nsubscribers = \"s.parquet\"\n[train]\nas_of = \"2026-04-01\"\n\
             model = \"m\"\nn_trees = 10\n[train.boosting]\nseed = 7\n\
             [score]\nas_of = \"2026-07-01\"\n[output]\ndir = \"o\"\n",
        )
        .unwrap();
        let err = PipelineConfig::load(&path).unwrap_err().to_string();
        assert!(err.contains("has 2 problem(s)"), "{err}");
        assert!(
            err.contains("`train.n_trees` is now `n_trees` in `[train.boosting]`"),
            "{err}"
        );
        assert!(err.contains("`train.boosting.seed` is not read"), "{err}");
    }

    /// Regression (issue 14): a type error used to hide every other problem.
    #[test]
    fn every_type_error_and_missing_field_is_reported_with_the_value_problems() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broken.toml");
        std::fs::write(
            &path,
            r#"
            seed = "forty-two"
            colour = "blue"
            [inputs]
            subscribers = "s.parquet"
            exclude_columns = "plan"
            [train]
            as_of = "2026-07-01"
            horizon_days = "ninety"
            boosting = { n_trees = 0 }
            [score]
            as_of = "2026-13-01"
            max_touchpoints = 9
            [guards]
            allow = ["everything"]
            min_count_ratio = "half"
        "#,
        )
        .unwrap();
        let err = PipelineConfig::load(&path).unwrap_err().to_string();
        for needle in [
            "`seed`",
            "`colour`",
            "`inputs.exclude_columns`",
            "`train.horizon_days`",
            "missing field `train.model`",
            "`score.as_of`",
            "2026-13-01",
            "missing section `[output]`",
            "`guards.min_count_ratio`",
        ] {
            assert!(err.contains(needle), "expected {needle:?} in: {err}");
        }
        // and the value problems of the fields that read
        assert!(
            err.contains("`train.boosting.n_trees` must be at least 1"),
            "{err}"
        );
        assert!(
            err.contains("`score.max_touchpoints` must be 1 to 3"),
            "{err}"
        );
    }

    #[test]
    fn value_problems_come_with_type_errors_when_the_rest_reads() {
        let text = r#"
            [inputs]
            subscribers = "s.parquet"
            [train]
            as_of = "2026-07-01"
            model = "m"
            boosting = { n_trees = 0 }
            snapshots = "three"
            [score]
            as_of = "2026-08-01"
            [output]
            dir = "out"
            [guards]
            allow = ["everything"]
        "#;
        let problems = type_problems(&toml::from_str(text).unwrap());
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].contains("`train.snapshots`"), "{problems:?}");
        assert!(
            problems[1].contains("`train.boosting.n_trees`"),
            "{problems:?}"
        );
        assert!(problems[2].contains("`everything`"), "{problems:?}");
    }

    #[test]
    fn the_required_fields_are_those_serde_requires() {
        let full: toml::Table = toml::from_str(
            r#"
            [inputs]
            subscribers = "s.parquet"
            [generate]
            out = "d"
            [train]
            as_of = "2026-07-01"
            model = "m"
            [score]
            as_of = "2026-08-01"
            [output]
            dir = "out"
        "#,
        )
        .unwrap();
        assert!(PipelineConfig::deserialize(toml::Value::Table(full.clone())).is_ok());
        for (section, fields) in REQUIRED {
            for field in fields {
                let mut t = full.clone();
                if section.is_empty() {
                    t.remove(*field);
                } else {
                    t[section].as_table_mut().unwrap().remove(*field);
                }
                let e = PipelineConfig::deserialize(toml::Value::Table(t)).unwrap_err();
                assert!(only_missing(&e), "{section}.{field}: {e}");
            }
        }
    }

    #[test]
    fn sharding_is_checked_with_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("job.toml");
        let base = "[inputs]\nsubscribers = \"s.parquet\"\n[train]\nas_of = \"2026-01-01\"\nmodel = \"m\"\n[score]\nas_of = \"2026-02-01\"\n[output]\ndir = \"o\"\n";
        std::fs::write(&path, format!("{base}[sharding]\nshards = 3\n")).unwrap();
        let config = PipelineConfig::load(&path).unwrap();
        assert_eq!(config.sharding.shards, Some(3));
        std::fs::write(
            &path,
            format!("{base}[sharding]\nshards = 0\nmax_memory = \"lots\"\nspread = 2\n"),
        )
        .unwrap();
        let err = PipelineConfig::load(&path).unwrap_err().to_string();
        assert!(err.contains("sharding.spread"), "{err}");
        std::fs::write(
            &path,
            format!("{base}[sharding]\nshards = 0\nmax_memory = \"lots\"\n"),
        )
        .unwrap();
        let err = PipelineConfig::load(&path).unwrap_err().to_string();
        for want in [
            "both set",
            "`sharding.shards` must be from 1 to 4096, found 0",
            "`sharding.max_memory`: `lots` is not a size",
        ] {
            assert!(err.contains(want), "{want}: {err}");
        }
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = toml::from_str::<PipelineConfig>("seeed = 1")
            .unwrap_err()
            .to_string();
        assert!(err.contains("seeed"), "{err}");
    }
}
