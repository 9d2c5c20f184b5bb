//! The nightly job (`churnseg run pipelines/FILE.toml`) and the scoring step it shares
//! with `churnseg score`: generate inputs when the config asks and they are missing,
//! (re)train when asked, score, and write the scored table, the manifest and the report.
//!
//! `run` is one atomic unit. Before any work it declares and locks everything it may
//! write ([`RunOutputs`]: the model's `model.json`, `metrics.json` and `manifest.json`
//! when it may train, then `scored.parquet`, `report.html` and `manifest.json` in
//! `output.dir`; one `manifest.json`, the run's, when the two are one directory), so an unwritable, busy or misnamed output fails the run before anything
//! is replaced. Each output is staged as it is made, and all are committed together once
//! everything has succeeded; the guarantee, kill -9 inside the commit included, is
//! [`crate::write::commit`]'s. Scoring reads the freshly trained model from its staged
//! bytes, so the model on disk is never new while the scores are old, or the reverse. A
//! check that must stop the run goes right before the commit, where nothing has been
//! replaced yet. `score` commits its table and `NAME.manifest.json` the same way.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use arrow::array::RecordBatch;

use super::Stage;
use super::config::{PipelineConfig, Retrain};
use crate::artifact::ModelArtifact;
use crate::asof::AsOf;
use crate::console::{Console, human_bytes};
use crate::features::FeatureParams;
use crate::features::accumulate::EventCounts;
use crate::guard::{GuardReport, GuardSettings, PreviousRun};
use crate::load::{InputSpec, Inputs};
use crate::manifest::{RunManifest, StageTimings, manifest_path_for, peak_memory_bytes};
use crate::model::ChurnParams;
use crate::score::{ScoreParams, ScoreSummary, score};
use crate::segment::Movement;
use crate::train::{TrainParams, train};
use crate::write::OutputSet;

/// What a scoring run did, for its summary.
pub struct ScoreOutcome {
    pub subscribers: usize,
    pub events: EventCounts,
    pub summary: ScoreSummary,
    pub timings: StageTimings,
    pub model_version: String,
    pub outputs: Vec<PathBuf>,
    /// Movement since the previous scored table, when one was given.
    pub movement: Option<Movement>,
    /// The scored table as written.
    pub scored: RecordBatch,
    /// The health guards on the scored snapshot.
    pub guards: GuardReport,
}

impl ScoreOutcome {
    /// The closing summary's lines.
    pub fn summary_lines(&self) -> Vec<(&'static str, String)> {
        let s = &self.summary;
        vec![
            (
                "rows in",
                format!(
                    "{} subscribers, {} events",
                    self.subscribers, self.events.read
                ),
            ),
            (
                "rows out",
                format!("{} scored (model {})", s.rows, self.model_version),
            ),
            ("skipped", super::skipped_line(&self.events)),
            ("guards", self.guards.summary_line()),
            (
                "segments",
                format!(
                    "top20 {} / middle50 {} / bottom30 {}; {}",
                    s.segments[0],
                    s.segments[1],
                    s.segments[2],
                    s.whale.summary()
                ),
            ),
            (
                "risk",
                format!(
                    "mean churn probability {:.3}, value at risk {:.0}",
                    s.mean_churn_probability, s.value_at_risk
                ),
            ),
            (
                "actions",
                s.actions
                    .iter()
                    .map(|(a, n)| format!("{a} {n}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            ("drivers", s.drivers_line()),
            ("targeting", targeting_line(&s.targeting)),
            (
                "movement",
                self.movement
                    .as_ref()
                    .map(Movement::summary)
                    .unwrap_or_else(|| "no previous run given".into()),
            ),
            ("timings", super::timings_line(&self.timings)),
            (
                "peak memory",
                peak_memory_bytes()
                    .map(human_bytes)
                    .unwrap_or_else(|| "unknown".into()),
            ),
            (
                "outputs",
                self.outputs
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
        ]
    }
}

fn targeting_line(t: &crate::score::Targeting) -> String {
    match t.budget {
        None => "no budget given (nobody targeted)".to_string(),
        Some(b) => format!(
            "{} targeted for {:.0} of {:.0}; expected saved profit {:.0}, net return {:.0}",
            t.targeted, t.spend, b, t.expected_saved_profit, t.expected_return
        ),
    }
}

/// Scores already-loaded inputs; compares with `previous` (an earlier scored table, and
/// what is known of its run) when given. The health guards are judged before anything
/// is scored. Writes nothing: the caller stages the table.
#[allow(clippy::too_many_arguments)]
pub fn score_inputs(
    inputs: &Inputs,
    artifact: &ModelArtifact,
    as_of: AsOf,
    params: &ScoreParams,
    previous: Option<(&RecordBatch, &PreviousRun)>,
    guards: &GuardSettings,
    timings: &mut StageTimings,
    console: &Console,
) -> anyhow::Result<ScoreOutcome> {
    let features = FeatureParams {
        as_of,
        extended: artifact.extended_features,
        touchpoint_use: true,
    };
    let table = timings.time("features", || {
        super::build_features(inputs, features, console)
    })?;
    let guards = crate::guard::check(inputs, &table, guards, previous.map(|p| p.1)).enforce()?;
    guards.warnings().iter().for_each(|w| console.say(w));
    let previous = previous.map(|p| p.0);
    let step = console.progress(0, "score", "");
    let scored = timings
        .time("score", || score(&table, artifact, params))
        .with_context(|| format!("scoring with model `{}`", artifact.model_version))?;
    step.finish(format!("{} subscribers", scored.summary.rows));
    let movement = previous.map(|p| Movement::between(p, &scored.batch));
    Ok(ScoreOutcome {
        subscribers: inputs.subscribers.len(),
        events: table.events,
        summary: scored.summary,
        timings: std::mem::take(timings),
        model_version: artifact.model_version.clone(),
        outputs: Vec::new(),
        movement,
        scored: scored.batch,
        guards,
    })
}

/// `churnseg score`: load, score, write the table and its manifest, together. `previous`
/// (an earlier scored file, which may be `out` itself) is read before anything is written.
#[allow(clippy::too_many_arguments)]
pub fn score_to_file(
    spec: &InputSpec,
    strict: bool,
    artifact: &ModelArtifact,
    as_of: AsOf,
    params: &ScoreParams,
    previous: Option<&Path>,
    guards: &GuardSettings,
    out: &Path,
    console: &Console,
) -> anyhow::Result<ScoreOutcome> {
    let manifest_path = manifest_path_for(out);
    let mut outputs = OutputSet::begin("score", &[out, &manifest_path])?;
    super::say_notes(console, &outputs);
    let mut timings = StageTimings::default();
    let inputs = timings.time("load", || super::load_inputs(spec, strict, console))?;
    let previous = previous
        .map(|p| {
            let batch = crate::load::read_scored(p)
                .with_context(|| format!("reading the previous scored file {}", p.display()))?;
            let run = PreviousRun::from_scored(p, &batch, None)?;
            anyhow::Ok((batch, run))
        })
        .transpose()?;
    let mut outcome = score_inputs(
        &inputs,
        artifact,
        as_of,
        params,
        previous.as_ref().map(|(b, r)| (b, r)),
        guards,
        &mut timings,
        console,
    )?;
    outcome
        .timings
        .time("write", || outputs.stage_parquet(out, &outcome.scored))?;
    outcome.outputs = vec![out.to_path_buf(), manifest_path.clone()];
    let mut manifest = RunManifest::new("score");
    manifest.set("inputs", inputs.describe());
    manifest.set("as_of", as_of);
    manifest.set("events", &outcome.events);
    manifest.set("model_version", &artifact.model_version);
    manifest.set("model_sha256", &artifact.sha256);
    manifest.set("model_metrics", &artifact.metrics);
    manifest.set("score_params", params);
    manifest.set("scored", &outcome.summary);
    manifest.set("movement", &outcome.movement);
    manifest.set("guards", &outcome.guards);
    super::set_recovered(&mut manifest, &outputs);
    manifest.finish(&outcome.timings);
    manifest.set(
        "outputs",
        [
            out.display().to_string(),
            manifest_path.display().to_string(),
        ],
    );
    // A check that must stop scoring goes here: nothing has been replaced yet.
    outputs.stage_bytes(&manifest_path, &manifest.to_bytes()?)?;
    outputs.commit()?;
    Ok(outcome)
}

/// Every file `run` may write.
pub struct RunOutputs {
    /// `model.json` and `metrics.json` of the model directory.
    pub model: [PathBuf; 2],
    /// The model directory's `manifest.json`; `None` when the model directory is the
    /// output directory, whose `manifest.json` is the run's (and names the model).
    pub model_manifest: Option<PathBuf>,
    pub scored: PathBuf,
    pub report: PathBuf,
    pub manifest: PathBuf,
}

impl RunOutputs {
    pub fn of(config: &PipelineConfig) -> RunOutputs {
        let (model_dir, dir) = (&config.train.model, &config.output.dir);
        RunOutputs {
            model: ModelArtifact::files(model_dir),
            model_manifest: (!same_dir(model_dir, dir)).then(|| model_dir.join("manifest.json")),
            scored: dir.join("scored.parquet"),
            report: dir.join("report.html"),
            manifest: dir.join("manifest.json"),
        }
    }

    /// The model's files: written only when the run trains.
    fn model_files(&self) -> impl Iterator<Item = &PathBuf> {
        self.model.iter().chain(&self.model_manifest)
    }

    /// The files to declare: the model's only when the run may train.
    pub fn declared(&self, may_train: bool) -> Vec<&Path> {
        let model = self.model_files().filter(|_| may_train);
        model
            .chain([&self.scored, &self.report, &self.manifest])
            .map(PathBuf::as_path)
            .collect()
    }
}

/// Whether two directory paths name the same directory (existing or not yet).
fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => std::path::absolute(a).ok() == std::path::absolute(b).ok(),
    }
}

/// `churnseg run`: the whole nightly job from a config file, committed as one unit;
/// `allow` adds to the config's `guards.allow`.
pub fn run_config(config_path: &Path, allow: &[String], console: &Console) -> anyhow::Result<()> {
    let start = Instant::now();
    let config = PipelineConfig::load(config_path)?;
    let mut guards = config.guards.clone();
    guards.allow.extend_from_slice(allow);
    let name = config.name.clone().unwrap_or_else(|| "pipeline".into());
    let model_dir = &config.train.model;
    let has_model = || model_dir.join("model.json").exists();
    let may_train = match config.train.retrain {
        Retrain::Always => true,
        Retrain::IfMissing => !has_model(),
        Retrain::Never => false,
    };
    let paths = RunOutputs::of(&config);
    let mut outputs = OutputSet::begin("run", &paths.declared(may_train)).with_context(|| {
        format!(
            "opening the outputs of {} (`train.model` {}, `output.dir` {})",
            config_path.display(),
            model_dir.display(),
            config.output.dir.display()
        )
    })?;
    super::say_notes(console, &outputs);
    let mut timings = StageTimings::default();
    if let Some(g) = &config.generate
        && !config.inputs.subscribers.exists()
    {
        let step = console.progress(g.subscribers as u64, "generate", "subscribers");
        let mut params = crate::generate::GenerateParams::new(g.subscribers, g.days, config.seed);
        params.end = g.end.date();
        let summary = timings
            .time("generate", || {
                crate::generate::generate(&params, &g.out, &|done| step.set(done))
            })
            .with_context(|| format!("generating the demo data into {}", g.out.display()))?;
        step.finish(format!(
            "{} subscribers, {} events into {}",
            summary.subscribers,
            summary.events,
            g.out.display()
        ));
    }
    let spec = InputSpec {
        subscribers: config.inputs.subscribers.clone(),
        interactions: config.inputs.interactions.clone(),
        taxonomy: config.inputs.taxonomy.clone(),
        subscriber_columns: crate::load::SubscriberColumns {
            exclude: config.inputs.exclude_columns.clone(),
            ..Default::default()
        },
        ..InputSpec::default()
    };
    let strict = config.inputs.strict;
    let inputs = timings.time("load", || super::load_inputs(&spec, strict, console))?;
    // (opening the outputs may just have finished an interrupted commit of the model)
    let must_train = may_train && (config.train.retrain == Retrain::Always || !has_model());
    let mut trained_guards = None;
    let artifact = if must_train {
        let params = TrainParams {
            as_of: config.train.as_of,
            horizon_days: config.train.horizon_days,
            churn: ChurnParams {
                n_trees: config.train.n_trees,
                learning_rate: config.train.learning_rate,
                max_leaves: config.train.max_leaves,
                seed: config.seed,
                ..ChurnParams::default()
            },
            seed: config.seed,
            name: name.clone(),
            extended: true,
            snapshots: config.train.snapshots,
            snapshot_step_days: config.train.snapshot_step_days,
            candidate: config.train.candidate.forced(),
            touchpoint_windows: config.train.touchpoint_windows.clone(),
            guards: guards.clone(),
        };
        let (trained, train_guards) = timings.time("train", || train(&inputs, &params, console))?;
        trained_guards = Some(train_guards);
        let artifact = timings.time("save model", || trained.stage(&mut outputs, model_dir))?;
        if let Some(path) = &paths.model_manifest {
            let manifest = super::model_manifest("run", &inputs, &artifact, &timings);
            outputs.stage_bytes(path, &manifest.to_bytes()?)?;
        }
        console.say(format!(
            "{:>12}  model {} ({} shipped, {}: ROC AUC {:.3})",
            "model",
            artifact.model_version,
            artifact.metrics.validation.chosen,
            artifact.metrics.validation.method,
            artifact.metrics.validation.churn.roc_auc
        ));
        artifact
    } else {
        ModelArtifact::load(model_dir)?
    };
    let params = ScoreParams {
        high_risk_deciles: config.score.high_risk_deciles,
        max_touchpoints: config.score.max_touchpoints,
        budget: config.score.budget,
        offer_cost: config.score.offer_cost,
        save_rate: config.score.save_rate,
        ..ScoreParams::default()
    };
    // Last night's scores, if this job ran before: the baseline for drift and guards.
    let previous = if paths.scored.exists() {
        let read = crate::load::read_scored(&paths.scored)
            .map_err(anyhow::Error::from)
            .and_then(|batch| {
                let run = PreviousRun::from_scored(&paths.scored, &batch, Some(&paths.manifest))?;
                Ok((batch, run))
            });
        match read {
            Ok(previous) => Some(previous),
            Err(e) => {
                console.say(format!(
                    "warning: the previous {} cannot be read, so no movement is shown and the guards do not compare with it: {e:#}",
                    paths.scored.display()
                ));
                None
            }
        }
    } else {
        None
    };
    let mut outcome = score_inputs(
        &inputs,
        &artifact,
        config.score.as_of,
        &params,
        previous.as_ref().map(|(b, r)| (b, r)),
        &guards,
        &mut timings,
        console,
    )?;
    outcome.timings.time("write", || {
        outputs.stage_parquet(&paths.scored, &outcome.scored)
    })?;
    outcome.timings.time("report", || {
        let options = crate::report::ReportOptions {
            previous: previous.as_ref().map(|p| &p.0),
            ..Default::default()
        };
        let html = crate::report::render(&outcome.scored, &artifact, &options)?;
        anyhow::Ok(outputs.stage_bytes(&paths.report, html.as_bytes())?)
    })?;
    outcome.outputs = vec![
        paths.scored.clone(),
        paths.report.clone(),
        paths.manifest.clone(),
    ];
    if must_train {
        outcome.outputs.extend(paths.model_files().cloned());
    }
    let mut manifest = RunManifest::new("run");
    manifest.set("config_path", config_path.display().to_string());
    manifest.set("config", &config);
    manifest.set("inputs", inputs.describe());
    manifest.set("trained", must_train);
    manifest.set("model_version", &artifact.model_version);
    manifest.set("model_sha256", &artifact.sha256);
    manifest.set("model_metrics", &artifact.metrics);
    manifest.set("events", &outcome.events);
    manifest.set("scored", &outcome.summary);
    manifest.set("movement", &outcome.movement);
    manifest.set("guards", &outcome.guards);
    if let Some(g) = &trained_guards {
        manifest.set("train_guards", g);
    }
    super::set_recovered(&mut manifest, &outputs);
    manifest.set(
        "outputs",
        outcome
            .outputs
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>(),
    );
    manifest.finish(&outcome.timings);
    // A check that must stop the run goes here (adding its figures to `manifest` first):
    // everything is staged, nothing has been replaced yet.
    outputs.stage_bytes(&paths.manifest, &manifest.to_bytes()?)?;
    outputs
        .commit()
        .context("committing the outputs of the run")?;
    super::summary(console, Stage::Run, &outcome.summary_lines(), start);
    Ok(())
}
