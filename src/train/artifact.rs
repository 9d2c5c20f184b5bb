//! The model artifact (SPEC §6): a directory in `models/` holding the trained churn and
//! value-segment models, the feature schema they expect (inside the churn model), the
//! training window, horizon, metrics and version. `model.json` is the whole artifact;
//! `metrics.json` repeats the metrics for people and dashboards.
//!
//! Reading a model checks its structure before anything applies it ([`crate::model::check`]
//! for the churn and value-segment models, [`validate`] for the rest): a damaged or
//! hand-edited file fails with every problem named, never a panic, a hang or quietly
//! different scores. The SHA-256 of the `model.json` bytes is kept with the artifact read
//! ([`ModelArtifact::sha256`]) for the manifests: SHA-256 rather than the FNV digest of the
//! version string because anyone can check it with `sha256sum models/NAME/model.json`,
//! and because it is made to tell any two files apart, where FNV only spreads values.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::metrics::TrainMetrics;
use crate::asof::AsOf;
use crate::model::ChurnModel;
use crate::model::check::{InvalidModel, Problems, validate_churn_model};
use crate::segment::forecast::ValueModel;
use crate::segment::touchpoints::RetentionTable;
use crate::segment::value::ValueSegment;
use crate::write::{OutputSet, WriteError};

/// Bumped when the artifact layout changes incompatibly.
pub const FORMAT: u32 = 1;

/// The dates a model was trained on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainingWindow {
    /// Snapshot of the final model.
    pub as_of: AsOf,
    pub horizon_days: u32,
    /// Snapshot of the out-of-time validation model.
    pub validation_as_of: AsOf,
    /// Labels cover churn up to (not including) this day.
    pub label_end: AsOf,
}

/// A trained model and everything needed to trust and apply it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelArtifact {
    pub format: u32,
    /// `NAME-YYYYMMDD-HASH`: the job, the training snapshot and a digest of the models.
    pub model_version: String,
    pub program_version: String,
    pub name: String,
    pub window: TrainingWindow,
    /// Whether the extended features were built (scoring builds the same set).
    pub extended_features: bool,
    pub metrics: TrainMetrics,
    pub churn: ChurnModel,
    pub value: ValueModel,
    /// How retention differs after each touchpoint, for recommendations (empty for
    /// models trained without interactions, or before this table existed).
    #[serde(default)]
    pub touchpoints: RetentionTable,
    /// The custom feature definitions the model was trained with, in column order
    /// (empty without any): scoring computes exactly these, and refuses other ones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub custom_features: Vec<crate::custom_features::CustomFeature>,
    /// SHA-256 (hex) of the `model.json` bytes this artifact was read from; `None` for a
    /// model not yet saved. Not part of the file.
    #[serde(skip)]
    pub sha256: Option<String>,
}

/// Why a model could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("model `{path}` not found (train one with `churnseg train --out {path}`)")]
    Missing { path: String },
    #[error("failed to read model `{path}`: {message}")]
    Unreadable { path: String, message: String },
    #[error("model `{path}` has format {found}, this churnseg reads format {FORMAT}: retrain it")]
    Format { path: String, found: u32 },
    #[error(
        "model `{path}` is damaged or was edited inconsistently, {problems}; restore the saved file or retrain it"
    )]
    Invalid {
        path: String,
        problems: InvalidModel,
    },
    #[error(transparent)]
    Write(#[from] WriteError),
}

impl ModelArtifact {
    pub fn new(
        name: &str,
        window: TrainingWindow,
        extended_features: bool,
        churn: ChurnModel,
        value: ValueModel,
        touchpoints: RetentionTable,
        metrics: TrainMetrics,
    ) -> Result<ModelArtifact, WriteError> {
        let digest = {
            let models = serde_json::to_vec(&(&churn, &value, &touchpoints)).map_err(|e| {
                WriteError::Serialize {
                    what: format!("model `{name}`"),
                    message: e.to_string(),
                }
            })?;
            fnv1a(&models)
        };
        Ok(ModelArtifact {
            format: FORMAT,
            model_version: format!(
                "{name}-{}-{:08x}",
                window.as_of.date().format("%Y%m%d"),
                digest as u32
            ),
            program_version: env!("CARGO_PKG_VERSION").to_string(),
            name: name.to_string(),
            window,
            extended_features,
            metrics,
            churn,
            value,
            touchpoints,
            custom_features: Vec::new(),
            sha256: None,
        })
    }

    /// `model.json`: the artifact as JSON.
    pub fn to_json(&self) -> Result<Vec<u8>, ArtifactError> {
        serde_json::to_vec(self).map_err(|e| ArtifactError::Unreadable {
            path: self.model_version.clone(),
            message: e.to_string(),
        })
    }

    /// `metrics.json`: the metrics, importance and touchpoint retention, for people.
    pub fn metrics_json(&self) -> Result<Vec<u8>, WriteError> {
        let metrics = serde_json::json!({
            "model_version": self.model_version,
            "window": self.window,
            "metrics": self.metrics,
            "feature_importance": self.churn.feature_importance(),
            "touchpoint_retention": self.touchpoints,
        });
        let text = serde_json::to_string_pretty(&metrics).map_err(|e| WriteError::Serialize {
            what: format!("the metrics of model `{}`", self.model_version),
            message: e.to_string(),
        })?;
        Ok(format!("{text}\n").into_bytes())
    }

    /// The files of a model directory.
    pub fn files(dir: &Path) -> [std::path::PathBuf; 2] {
        [dir.join("model.json"), dir.join("metrics.json")]
    }

    /// Stages `model.json` and `metrics.json` into `dir` (declared in `outputs`, see
    /// [`ModelArtifact::files`]), and returns the artifact as a later [`ModelArtifact::load`]
    /// will read it: parsed back from the staged bytes, checked, with their SHA-256.
    pub fn stage(
        &self,
        outputs: &mut OutputSet,
        dir: &Path,
    ) -> Result<ModelArtifact, ArtifactError> {
        let bytes = self.to_json()?;
        let reread = ModelArtifact::from_bytes(&bytes, &dir.display().to_string())?;
        let [model, metrics] = Self::files(dir);
        outputs.stage_bytes(&model, &bytes)?;
        outputs.stage_bytes(&metrics, &self.metrics_json()?)?;
        Ok(reread)
    }

    /// Writes `model.json` and `metrics.json` into `dir`, together.
    pub fn save(&self, dir: &Path) -> Result<(), ArtifactError> {
        let [model, metrics] = Self::files(dir);
        let mut outputs = OutputSet::begin("save", &[&model, &metrics])?;
        self.stage(&mut outputs, dir)?;
        outputs.commit()?;
        Ok(())
    }

    /// Reads and checks a model directory (or its `model.json` directly).
    pub fn load(path: &Path) -> Result<ModelArtifact, ArtifactError> {
        let file = if path.is_dir() {
            path.join("model.json")
        } else {
            path.to_path_buf()
        };
        let shown = path.display().to_string();
        if !file.exists() {
            return Err(ArtifactError::Missing { path: shown });
        }
        let bytes = std::fs::read(&file).map_err(|e| ArtifactError::Unreadable {
            path: shown.clone(),
            message: e.to_string(),
        })?;
        Self::from_bytes(&bytes, &shown)
    }

    /// Parses and checks the bytes of a `model.json`; `shown` names it in errors.
    pub fn from_bytes(bytes: &[u8], shown: &str) -> Result<ModelArtifact, ArtifactError> {
        let unreadable = |e: serde_json::Error| ArtifactError::Unreadable {
            path: shown.to_string(),
            message: e.to_string(),
        };
        #[derive(Deserialize)]
        struct Header {
            format: u32,
        }
        let header: Header = serde_json::from_slice(bytes).map_err(unreadable)?;
        if header.format != FORMAT {
            return Err(ArtifactError::Format {
                path: shown.to_string(),
                found: header.format,
            });
        }
        let mut artifact: ModelArtifact = serde_json::from_slice(bytes).map_err(unreadable)?;
        validate(&artifact).map_err(|problems| ArtifactError::Invalid {
            path: shown.to_string(),
            problems,
        })?;
        artifact.sha256 = Some(sha256_hex(bytes));
        Ok(artifact)
    }
}

/// Checks an artifact's structure: the churn model, one value-segment model per segment
/// (each checked as a churn model), a sane training window and a finite retention table.
pub fn validate(artifact: &ModelArtifact) -> Result<(), InvalidModel> {
    let mut p = Problems::default();
    validate_churn_model(&artifact.churn, "churn", &mut p);
    if let ValueModel::OneVsRest {
        models,
        move_margin,
    } = &artifact.value
    {
        if !(move_margin.is_finite() && *move_margin >= 0.0) {
            p.push(
                "value.move_margin",
                format!("{move_margin} is not a finite margin >= 0"),
            );
        }
        if models.len() != ValueSegment::ALL.len() {
            p.push(
                "value.models",
                format!(
                    "has {} models; one per value segment ({}) is needed",
                    models.len(),
                    ValueSegment::ALL.map(ValueSegment::name).join(", ")
                ),
            );
        }
        for (k, model) in models.iter().enumerate() {
            validate_churn_model(model, &format!("value.models[{k}]"), &mut p);
        }
    }
    if artifact.window.horizon_days == 0 {
        p.push(
            "window.horizon_days",
            "is 0 (a horizon has at least one day)",
        );
    }
    let table = &artifact.touchpoints;
    if !(table.churn_rate.is_finite() && (0.0..=1.0).contains(&table.churn_rate)) {
        p.push(
            "touchpoints.churn_rate",
            format!("{} is not a rate", table.churn_rate),
        );
    }
    for (k, t) in table.touchpoints.iter().enumerate() {
        let here = format!("touchpoints.touchpoints[{k}]");
        if !t.retention_lift.is_finite() {
            p.push(
                &format!("{here}.retention_lift"),
                format!("{} is not a finite number", t.retention_lift),
            );
        }
        if let Some(cost) = t.mean_cost
            && !(cost.is_finite() && cost >= 0.0)
        {
            p.push(
                &format!("{here}.mean_cost"),
                format!("{cost} is not a cost"),
            );
        }
        if t.churned > t.users {
            p.push(
                &format!("{here}.churned"),
                format!("{} churned of {} users", t.churned, t.users),
            );
        }
    }
    p.into_result()
}

/// SHA-256 of `bytes`, as lowercase hex (what `sha256sum` prints).
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// 64-bit FNV-1a: a stable digest for version strings (not for security).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    })
}
