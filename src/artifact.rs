//! The model artifact (SPEC §6): a directory in `models/` holding the trained churn and
//! value-segment models, the feature schema they expect (inside the churn model), the
//! training window, horizon, metrics and version. `model.json` is the whole artifact;
//! `metrics.json` repeats the metrics for people and dashboards.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::asof::AsOf;
use crate::model::ChurnModel;
use crate::segment::touchpoints::RetentionTable;
use crate::segment::value::ValueModel;
use crate::train::TrainMetrics;
use crate::write::{WriteError, write_bytes};

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
    ) -> ModelArtifact {
        let digest = {
            let models = serde_json::to_vec(&(&churn, &value, &touchpoints)).unwrap_or_default();
            fnv1a(&models)
        };
        ModelArtifact {
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
        }
    }

    /// Writes `model.json` and `metrics.json` into `dir`, each atomically.
    pub fn save(&self, dir: &Path) -> Result<(), ArtifactError> {
        let model = serde_json::to_vec(self).map_err(|e| ArtifactError::Unreadable {
            path: dir.display().to_string(),
            message: e.to_string(),
        })?;
        write_bytes(&dir.join("model.json"), &model)?;
        let metrics = serde_json::json!({
            "model_version": self.model_version,
            "window": self.window,
            "metrics": self.metrics,
            "feature_importance": self.churn.feature_importance(),
            "touchpoint_retention": self.touchpoints,
        });
        let text = serde_json::to_string_pretty(&metrics).unwrap_or_default();
        write_bytes(&dir.join("metrics.json"), format!("{text}\n").as_bytes())?;
        Ok(())
    }

    /// Reads a model directory (or its `model.json` directly).
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
        #[derive(Deserialize)]
        struct Header {
            format: u32,
        }
        let header: Header =
            serde_json::from_slice(&bytes).map_err(|e| ArtifactError::Unreadable {
                path: shown.clone(),
                message: e.to_string(),
            })?;
        if header.format != FORMAT {
            return Err(ArtifactError::Format {
                path: shown,
                found: header.format,
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| ArtifactError::Unreadable {
            path: shown,
            message: e.to_string(),
        })
    }
}

/// 64-bit FNV-1a: a stable digest for version strings (not for security).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    })
}
