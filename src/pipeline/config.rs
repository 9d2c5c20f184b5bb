//! The pipeline config: one TOML file per nightly job (`pipelines/*.toml`). It says what
//! the job does — inputs, dates, model settings, thresholds, outputs; how one run executes
//! (threads, quiet) is a command-line flag. Relative paths are taken from the directory
//! the command runs in.
//!
//! Read into this raw form (unknown fields are errors), then [`PipelineConfig::check`]
//! reports every problem at once.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::asof::AsOf;

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

/// When to (re)train.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Retrain {
    /// Train every run.
    Always,
    /// Train only when the model directory has no model yet (default).
    IfMissing,
    /// Never train; the model must exist.
    Never,
}

/// Model training.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// When to train. Default `if_missing`.
    #[serde(default = "default_retrain")]
    pub retrain: Retrain,
    /// Snapshot date of the final model; must leave `horizon_days` of observed history. Required.
    pub as_of: AsOf,
    /// Churn horizon in days. Default 90.
    #[serde(default = "default_horizon")]
    pub horizon_days: u32,
    /// Model directory. Required.
    pub model: PathBuf,
    /// Boosting rounds. Default 300.
    #[serde(default = "default_trees")]
    pub n_trees: usize,
    /// Boosting learning rate. Default 0.05.
    #[serde(default = "default_learning_rate")]
    pub learning_rate: f64,
    /// Leaves per tree. Default 31.
    #[serde(default = "default_leaves")]
    pub max_leaves: usize,
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
}

fn default_snapshots() -> usize {
    3
}

fn default_snapshot_step() -> u32 {
    30
}

/// Scoring and targeting.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreConfig {
    /// Snapshot date to score. Required.
    pub as_of: AsOf,
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
    /// Directory for `scored.parquet`, `manifest.json` and the report. Required.
    pub dir: PathBuf,
}

fn default_seed() -> u64 {
    42
}
fn default_generate_subscribers() -> usize {
    20_000
}
fn default_generate_days() -> u32 {
    365
}
fn default_generate_end() -> AsOf {
    AsOf::from_date(chrono::NaiveDate::from_ymd_opt(2026, 7, 1).unwrap_or_default())
}
fn default_retrain() -> Retrain {
    Retrain::IfMissing
}
fn default_horizon() -> u32 {
    90
}
fn default_trees() -> usize {
    300
}
fn default_learning_rate() -> f64 {
    0.05
}
fn default_leaves() -> usize {
    31
}
fn default_high_risk_deciles() -> u8 {
    3
}
fn default_touchpoints() -> usize {
    2
}
fn default_offer_cost() -> f64 {
    10.0
}
fn default_save_rate() -> f64 {
    0.3
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
        let mut config: PipelineConfig = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: shown.clone(),
            message: e.to_string().trim_end().to_string(),
        })?;
        if config.name.is_none() {
            config.name = path.file_stem().map(|s| s.to_string_lossy().into_owned());
        }
        config.check().map_err(|problems| ConfigError::Invalid {
            path: shown,
            problems,
        })?;
        Ok(config)
    }

    /// Every problem with the values, at once.
    pub fn check(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        if self.train.horizon_days == 0 {
            problems.push("`train.horizon_days` must be at least 1".to_string());
        }
        if self.train.n_trees == 0 {
            problems.push("`train.n_trees` must be at least 1".to_string());
        }
        if !(self.train.learning_rate > 0.0 && self.train.learning_rate <= 1.0) {
            problems.push(format!(
                "`train.learning_rate` must be in (0, 1], found {}",
                self.train.learning_rate
            ));
        }
        if self.train.max_leaves < 2 {
            problems.push("`train.max_leaves` must be at least 2".to_string());
        }
        if self.train.snapshots == 0 {
            problems.push("`train.snapshots` must be at least 1".to_string());
        }
        if self.train.snapshot_step_days == 0 {
            problems.push("`train.snapshot_step_days` must be at least 1".to_string());
        }
        if !(1..=10).contains(&self.score.high_risk_deciles) {
            problems.push(format!(
                "`score.high_risk_deciles` must be 1 to 10, found {}",
                self.score.high_risk_deciles
            ));
        }
        if !(1..=3).contains(&self.score.max_touchpoints) {
            problems.push(format!(
                "`score.max_touchpoints` must be 1 to 3, found {}",
                self.score.max_touchpoints
            ));
        }
        if self.score.budget.is_some_and(|b| b.is_nan() || b < 0.0) {
            problems.push("`score.budget` must be at least 0".to_string());
        }
        if self.score.offer_cost.is_nan() || self.score.offer_cost <= 0.0 {
            problems.push(format!(
                "`score.offer_cost` must be above 0, found {}",
                self.score.offer_cost
            ));
        }
        if !(0.0..=1.0).contains(&self.score.save_rate) {
            problems.push(format!(
                "`score.save_rate` must be between 0 and 1, found {}",
                self.score.save_rate
            ));
        }
        if self.train.as_of > self.score.as_of {
            problems.push(format!(
                "`train.as_of` ({}) is after `score.as_of` ({}): a model cannot learn from the future it scores",
                self.train.as_of, self.score.as_of
            ));
        }
        if let Some(g) = &self.generate
            && (g.subscribers == 0 || g.days == 0)
        {
            problems
                .push("`generate.subscribers` and `generate.days` must be at least 1".to_string());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
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

    #[test]
    fn unknown_fields_are_refused() {
        let err = toml::from_str::<PipelineConfig>("seeed = 1")
            .unwrap_err()
            .to_string();
        assert!(err.contains("seeed"), "{err}");
    }
}
