//! The nightly job (`churnseg run pipelines/FILE.toml`) and the scoring step it shares
//! with `churnseg score`: generate inputs when the config asks and they are missing,
//! (re)train when asked, score, and write the scored table, the manifest and the report,
//! each atomically.

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
use crate::load::{InputSpec, Inputs};
use crate::manifest::{RunManifest, StageTimings, manifest_path_for, peak_memory_bytes};
use crate::model::ChurnParams;
use crate::score::{ScoreParams, ScoreSummary, score};
use crate::segment::Movement;
use crate::train::{TrainParams, train};

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
            (
                "drivers",
                s.drivers
                    .iter()
                    .map(|(a, n)| format!("{a} {n}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
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

/// Scores already-loaded inputs and writes the scored Parquet to `out`; compares with
/// `previous` (an earlier scored table) when given.
#[allow(clippy::too_many_arguments)]
pub fn score_inputs(
    inputs: &Inputs,
    artifact: &ModelArtifact,
    as_of: AsOf,
    params: &ScoreParams,
    previous: Option<&RecordBatch>,
    out: &Path,
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
    let step = console.progress(0, "score", "");
    let scored = timings
        .time("score", || score(&table, artifact, params))
        .with_context(|| format!("scoring with model `{}`", artifact.model_version))?;
    step.finish(format!("{} subscribers", scored.summary.rows));
    let movement = previous.map(|p| Movement::between(p, &scored.batch));
    timings.time("write", || crate::write::write_parquet(out, &scored.batch))?;
    Ok(ScoreOutcome {
        subscribers: inputs.subscribers.len(),
        events: table.events,
        summary: scored.summary,
        timings: std::mem::take(timings),
        model_version: artifact.model_version.clone(),
        outputs: vec![out.to_path_buf()],
        movement,
        scored: scored.batch,
    })
}

/// `churnseg score`: load, score, write the table and its manifest. `previous` (an
/// earlier scored file, which may be `out` itself) is read before anything is written.
#[allow(clippy::too_many_arguments)]
pub fn score_to_file(
    spec: &InputSpec,
    strict: bool,
    artifact: &ModelArtifact,
    as_of: AsOf,
    params: &ScoreParams,
    previous: Option<&Path>,
    out: &Path,
    console: &Console,
) -> anyhow::Result<ScoreOutcome> {
    let mut timings = StageTimings::default();
    let inputs = timings.time("load", || super::load_inputs(spec, strict, console))?;
    let previous = previous
        .map(|p| {
            crate::report::read_scored(p)
                .with_context(|| format!("reading the previous scored file {}", p.display()))
        })
        .transpose()?;
    let mut outcome = score_inputs(
        &inputs,
        artifact,
        as_of,
        params,
        previous.as_ref(),
        out,
        &mut timings,
        console,
    )?;
    let mut manifest = RunManifest::new("score");
    manifest.set("inputs", inputs.describe());
    manifest.set("as_of", as_of);
    manifest.set("events", &outcome.events);
    manifest.set("model_version", &artifact.model_version);
    manifest.set("model_metrics", &artifact.metrics);
    manifest.set("score_params", params);
    manifest.set("scored", &outcome.summary);
    manifest.set("movement", &outcome.movement);
    manifest.finish(&outcome.timings);
    let manifest_path = manifest_path_for(out);
    manifest.set(
        "outputs",
        [
            out.display().to_string(),
            manifest_path.display().to_string(),
        ],
    );
    manifest.write(&manifest_path)?;
    outcome.outputs.push(manifest_path);
    Ok(outcome)
}

/// `churnseg run`: the whole nightly job from a config file.
pub fn run_config(config_path: &Path, console: &Console) -> anyhow::Result<()> {
    let start = Instant::now();
    let config = PipelineConfig::load(config_path)?;
    let name = config.name.clone().unwrap_or_else(|| "pipeline".into());
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
    let model_dir = &config.train.model;
    let has_model = model_dir.join("model.json").exists();
    let must_train = match config.train.retrain {
        Retrain::Always => true,
        Retrain::IfMissing => !has_model,
        Retrain::Never => false,
    };
    if must_train {
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
        };
        let artifact = timings.time("train", || train(&inputs, &params, console))?;
        timings.time("save model", || artifact.save(model_dir))?;
        console.say(format!(
            "{:>12}  model {} ({}: ROC AUC {:.3})",
            "model",
            artifact.model_version,
            artifact.metrics.validation.method,
            artifact.metrics.validation.churn.roc_auc
        ));
    }
    let artifact = ModelArtifact::load(model_dir)?;
    let params = ScoreParams {
        high_risk_deciles: config.score.high_risk_deciles,
        max_touchpoints: config.score.max_touchpoints,
        budget: config.score.budget,
        offer_cost: config.score.offer_cost,
        save_rate: config.score.save_rate,
        ..ScoreParams::default()
    };
    let scored_path = config.output.dir.join("scored.parquet");
    // Last night's scores, if this job ran before: the baseline for drift.
    let previous = if scored_path.exists() {
        match crate::report::read_scored(&scored_path) {
            Ok(batch) => Some(batch),
            Err(e) => {
                console.say(format!(
                    "warning: the previous {} cannot be read, so no movement is shown: {e:#}",
                    scored_path.display()
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
        previous.as_ref(),
        &scored_path,
        &mut timings,
        console,
    )?;
    let report_path = config.output.dir.join("report.html");
    outcome.timings.time("report", || {
        crate::report::write_report(&report_path, &outcome.scored, &artifact, previous.as_ref())
    })?;
    outcome.outputs.push(report_path);
    let manifest_path = config.output.dir.join("manifest.json");
    outcome.outputs.push(manifest_path.clone());
    let mut manifest = RunManifest::new("run");
    manifest.set("config_path", config_path.display().to_string());
    manifest.set("config", &config);
    manifest.set("inputs", inputs.describe());
    manifest.set("trained", must_train);
    manifest.set("model_version", &artifact.model_version);
    manifest.set("model_metrics", &artifact.metrics);
    manifest.set("events", &outcome.events);
    manifest.set("scored", &outcome.summary);
    manifest.set("movement", &outcome.movement);
    manifest.set(
        "outputs",
        outcome
            .outputs
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>(),
    );
    manifest.finish(&outcome.timings);
    manifest.write(&manifest_path)?;
    super::summary(console, Stage::Run, &outcome.summary_lines(), start);
    Ok(())
}
