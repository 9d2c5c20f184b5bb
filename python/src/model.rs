//! The calls of the package: `features`, `train` and the `Model` they return, each the
//! CLI's code path on the same inputs (so the same bytes): `features` is
//! `churnseg features`, `train` is `churnseg train` with the artifact kept in memory
//! until `save`, `Model.score` is `churnseg score` without its files.

use std::path::{Path, PathBuf};

use arrow::pyarrow::PyArrowType;
use arrow::record_batch::RecordBatch;
use churnseg::asof::AsOf;
use churnseg::console::Console;
use churnseg::features::FeatureParams;
use churnseg::manifest::StageTimings;
use churnseg::progress::Silent;
use churnseg::score::ScoreParams;
use churnseg::train::artifact::ModelArtifact;
use churnseg::train::{CandidateChoice, TrainParams};
use churnseg::write::OutputSet;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::boundary::{self, Failure};
use crate::inputs::{Request, RequestArgs};

/// A result table, for pyarrow (one batch; its buffers handed over, not copied).
pub(crate) type PyTable = PyArrowType<arrow::pyarrow::Table>;

pub(crate) fn py_table(batch: RecordBatch) -> PyResult<PyTable> {
    arrow::pyarrow::Table::try_new(vec![batch.clone()], batch.schema())
        .map(PyArrowType)
        .map_err(|e| crate::boundary::ChurnsegError::new_err(e.to_string()))
}

pub(crate) fn parse_as_of(text: &str) -> PyResult<AsOf> {
    text.parse::<AsOf>()
        .map_err(|e| PyValueError::new_err(format!("`as_of`: {e}")))
}

/// `churnseg features`: the feature table at `as_of` (see the package's docstring).
#[pyfunction]
#[pyo3(signature = (inputs, as_of, extended, threads))]
#[allow(clippy::too_many_arguments)]
pub fn features(
    py: Python<'_>,
    inputs: RequestArgs<'_>,
    as_of: &str,
    extended: bool,
    threads: Option<usize>,
) -> PyResult<PyTable> {
    let as_of = parse_as_of(as_of)?;
    let request = Request::new(inputs)?;
    let batch = boundary::run(py, threads, move || {
        let guards = request.guards.clone();
        let inputs = request.load()?;
        let params = FeatureParams {
            as_of,
            extended,
            touchpoint_use: false,
        };
        let table = churnseg::features::build_logged(&inputs, params, &Silent)?;
        churnseg::guard::check(&inputs, &table, &guards, None).enforce()?;
        Ok(table.batch)
    })?;
    py_table(batch)
}

/// `churnseg train`: fits the models; the artifact stays in memory until `Model.save`.
#[pyfunction]
#[pyo3(signature = (inputs, as_of, horizon, name, seed, trees, snapshots, snapshot_step, candidate, touchpoint_windows, threads))]
#[allow(clippy::too_many_arguments)]
pub fn train(
    py: Python<'_>,
    inputs: RequestArgs<'_>,
    as_of: &str,
    horizon: u32,
    name: String,
    seed: u64,
    trees: usize,
    snapshots: usize,
    snapshot_step: u32,
    candidate: &str,
    touchpoint_windows: Vec<u32>,
    threads: Option<usize>,
) -> PyResult<Model> {
    let settings = TrainSettings {
        as_of: as_of.to_string(),
        horizon,
        name,
        seed,
        trees,
        snapshots,
        snapshot_step,
        candidate: candidate.to_string(),
        touchpoint_windows,
        allow: Vec::new(),
    };
    let mut params = settings.params()?;
    let request = Request::new(inputs)?;
    params.guards = request.guards.clone();
    boundary::run(py, threads, move || {
        let mut timings = StageTimings::default();
        let inputs = timings.time("load", || request.load())?;
        let (trained, guards) = timings.time("train", || {
            churnseg::train::train(&inputs, &params, &Silent)
        })?;
        Model::trained(trained, &params.name, |artifact| {
            let mut manifest =
                churnseg::pipeline::model_manifest("train", inputs.describe(), artifact, &timings);
            manifest.set("guards", &guards);
            Ok(Some(manifest.to_bytes()?))
        })
    })
}

/// The settings of a training call (`train`'s arguments; JSON from `churnseg.spark`).
#[derive(serde::Deserialize)]
pub(crate) struct TrainSettings {
    pub as_of: String,
    pub horizon: u32,
    pub name: String,
    pub seed: u64,
    pub trees: usize,
    pub snapshots: usize,
    pub snapshot_step: u32,
    pub candidate: String,
    pub touchpoint_windows: Vec<u32>,
    /// Health guards allowed to fail.
    pub allow: Vec<String>,
}

impl TrainSettings {
    /// The training parameters, checked (the guards: the CLI's, with `allow`).
    pub(crate) fn params(&self) -> PyResult<TrainParams> {
        let as_of = parse_as_of(&self.as_of)?;
        let candidate = CandidateChoice::parse(&self.candidate)
            .map_err(|e| PyValueError::new_err(format!("`candidate`: {e}")))?;
        let mut params = TrainParams::new(as_of, &self.name).with_seed(self.seed);
        params.horizon_days = self.horizon;
        params.churn.n_trees = self.trees;
        params.snapshots = self.snapshots;
        params.snapshot_step_days = self.snapshot_step;
        params.candidate = candidate.forced();
        params.touchpoint_windows = self.touchpoint_windows.clone();
        params.guards = churnseg::guard::GuardSettings {
            allow: self.allow.clone(),
            ..Default::default()
        };
        let problems = params.guards.problems("");
        if !problems.is_empty() {
            return Err(PyValueError::new_err(problems.join("; ")));
        }
        params
            .check()
            .map_err(|e| PyValueError::new_err(format!("training settings: {e}")))?;
        Ok(params)
    }
}

/// A trained model: the CLI's artifact (`model.json`), with the bytes of its files as
/// `save` writes them: `model.json` as read, `metrics.json` as `train` wrote it (from the
/// fitted values, which reading `model.json` back may change in the last digit) and,
/// for a model trained here or loaded with one, `manifest.json`.
#[pyclass(module = "churnseg._churnseg", name = "Model", frozen)]
pub struct Model {
    pub(crate) artifact: ModelArtifact,
    json: Vec<u8>,
    metrics: Vec<u8>,
    manifest: Option<Vec<u8>>,
}

impl Model {
    /// A model just trained, as `train --out` writes it: the artifact is what reading
    /// its bytes back gives, `metrics.json` comes from the fitted values; `manifest`
    /// makes the manifest of the artifact read back.
    pub(crate) fn trained(
        trained: ModelArtifact,
        name: &str,
        manifest: impl FnOnce(&ModelArtifact) -> Result<Option<Vec<u8>>, Failure>,
    ) -> Result<Model, Failure> {
        let json = trained.to_json()?;
        let metrics = trained.metrics_json()?;
        let artifact = ModelArtifact::from_bytes(&json, name)?;
        let manifest = manifest(&artifact)?;
        Ok(Model {
            artifact,
            json,
            metrics,
            manifest,
        })
    }

    fn read(
        json: Vec<u8>,
        metrics: Option<Vec<u8>>,
        manifest: Option<Vec<u8>>,
        shown: &str,
    ) -> Result<Model, Failure> {
        let artifact = ModelArtifact::from_bytes(&json, shown)?;
        let metrics = match metrics {
            Some(m) => m,
            None => artifact.metrics_json()?,
        };
        Ok(Model {
            artifact,
            json,
            metrics,
            manifest,
        })
    }
}

#[pymethods]
impl Model {
    /// Reads a model directory written by `churnseg train --out` or `Model.save` (or its
    /// `model.json`), checking it as the CLI does.
    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<Model> {
        boundary::run(py, None, move || {
            // the same checks and messages as the CLI's `--model`
            ModelArtifact::load(&path)?;
            let file = if path.is_dir() {
                path.join("model.json")
            } else {
                path.clone()
            };
            let read = |p: &Path| {
                std::fs::read(p).map_err(|e| {
                    Failure::Other(format!("failed to read model `{}`: {e}", p.display()))
                })
            };
            let beside = |name: &str| {
                let p = file.with_file_name(name);
                p.exists().then(|| read(&p)).transpose()
            };
            Model::read(
                read(&file)?,
                beside("metrics.json")?,
                beside("manifest.json")?,
                &path.display().to_string(),
            )
        })
    }

    /// A model from the bytes of its `model.json` (and `metrics.json`, `manifest.json`),
    /// as `to_json` and friends give them: for pickling and for shipping a model to
    /// Spark executors.
    #[staticmethod]
    #[pyo3(signature = (json, metrics=None, manifest=None))]
    fn from_json(
        py: Python<'_>,
        json: Vec<u8>,
        metrics: Option<Vec<u8>>,
        manifest: Option<Vec<u8>>,
    ) -> PyResult<Model> {
        boundary::run(py, None, move || {
            Model::read(json, metrics, manifest, "model.json")
        })
    }

    /// The `metrics.json` bytes.
    fn metrics_file<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.metrics)
    }

    /// The `model.json` bytes.
    fn to_json<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.json)
    }

    /// The `manifest.json` bytes, when the model has one.
    fn manifest_json<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.manifest.as_ref().map(|m| PyBytes::new(py, m))
    }

    /// Writes `model.json`, `metrics.json` (and `manifest.json`) into `dir`, together, as
    /// `churnseg train --out` does.
    fn save(&self, py: Python<'_>, dir: PathBuf) -> PyResult<()> {
        boundary::run(py, None, || {
            let [model_path, metrics_path] = ModelArtifact::files(&dir);
            let manifest_path = dir.join("manifest.json");
            let mut targets = vec![model_path.as_path(), metrics_path.as_path()];
            if self.manifest.is_some() {
                targets.push(&manifest_path);
            }
            let mut outputs = OutputSet::begin("save", &targets)?;
            outputs.stage_bytes(&model_path, &self.json)?;
            outputs.stage_bytes(&metrics_path, &self.metrics)?;
            if let Some(manifest) = &self.manifest {
                outputs.stage_bytes(&manifest_path, manifest)?;
            }
            outputs.commit()?;
            Ok(())
        })
    }

    /// `NAME-YYYYMMDD-HASH`, as the CLI prints it.
    #[getter]
    fn version(&self) -> &str {
        &self.artifact.model_version
    }

    /// The metrics (`metrics.json`'s `metrics`) as JSON text.
    fn metrics_json(&self) -> PyResult<String> {
        serde_json::to_string(&self.artifact.metrics)
            .map_err(|e| crate::boundary::ChurnsegError::new_err(e.to_string()))
    }

    /// The training window (`as_of`, `horizon_days`, `validation_as_of`, `label_end`) as
    /// JSON text.
    fn window_json(&self) -> PyResult<String> {
        serde_json::to_string(&self.artifact.window)
            .map_err(|e| crate::boundary::ChurnsegError::new_err(e.to_string()))
    }

    /// `churnseg score` on these inputs: the scored table as the CLI writes it.
    #[pyo3(signature = (inputs, as_of, budget, high_risk_deciles, max_touchpoints, offer_cost, save_rate, threads))]
    #[allow(clippy::too_many_arguments)]
    fn score(
        &self,
        py: Python<'_>,
        inputs: RequestArgs<'_>,
        as_of: &str,
        budget: Option<f64>,
        high_risk_deciles: u8,
        max_touchpoints: usize,
        offer_cost: f64,
        save_rate: f64,
        threads: Option<usize>,
    ) -> PyResult<PyTable> {
        let as_of = parse_as_of(as_of)?;
        let params = ScoreParams {
            high_risk_deciles,
            max_touchpoints,
            budget,
            offer_cost,
            save_rate,
            ..ScoreParams::default()
        };
        params
            .check()
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        let request = Request::new(inputs)?;
        let batch = boundary::run(py, threads, || {
            let guards = request.guards.clone();
            let inputs = request.load()?;
            let outcome = churnseg::pipeline::job::score_inputs(
                &inputs,
                &self.artifact,
                as_of,
                &params,
                None,
                &guards,
                &mut StageTimings::default(),
                &Console::new(true),
            )?;
            Ok(outcome.scored)
        })?;
        py_table(batch)
    }
}
