//! The nightly job: the steps shared by every command (load, featurise, summarise) and
//! the config-driven `run` that chains them (see [`config`]).

pub mod config;
pub mod dates;
pub mod history;
pub mod job;
pub mod sharded;

use std::time::Instant;

use crate::console::Console;
use crate::features;
use crate::features::accumulate::EventCounts;
use crate::load::{InputErrors, InputSpec, Inputs};
use crate::manifest::{RunManifest, StageTimings};
use crate::shard::Shard;
use crate::train::artifact::ModelArtifact;
use crate::write::OutputSet;

/// A command, for the summary's title.
#[derive(Debug, Clone, Copy)]
pub enum CommandName {
    Generate,
    Validate,
    Features,
    Train,
    Score,
    Run,
    Report,
}

impl CommandName {
    fn name(self) -> &'static str {
        match self {
            CommandName::Generate => "generate",
            CommandName::Validate => "validate",
            CommandName::Features => "features",
            CommandName::Train => "train",
            CommandName::Score => "score",
            CommandName::Run => "run",
            CommandName::Report => "report",
        }
    }
}

/// Why a pipeline step failed.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("{0}")]
    Inputs(#[from] InputErrors),
    #[error(transparent)]
    Features(#[from] features::FeatureError),
    #[error(
        "{} touchpoint name(s) are missing from the taxonomy and --strict is set: {}",
        .0.len(),
        .0.iter().map(|(k, v)| format!("`{k}` ({v} events)")).collect::<Vec<_>>().join(", ")
    )]
    UnknownTouchpoints(Vec<(String, u64)>),
}

/// Loads and checks the inputs, logging what was read. Under `strict`, touchpoints
/// missing from the taxonomy fail the run here, before any work starts.
pub fn load_inputs(
    spec: &InputSpec,
    strict: bool,
    console: &Console,
) -> Result<Inputs, PipelineError> {
    load_inputs_shard(spec, strict, Shard::ALL, console)
}

/// [`load_inputs`] with one shard's rows of the subscriber table.
pub fn load_inputs_shard(
    spec: &InputSpec,
    strict: bool,
    shard: Shard,
    console: &Console,
) -> Result<Inputs, PipelineError> {
    // custom features are checked before anything is read: every problem at once
    features::custom::check(spec).map_err(features::FeatureError::from)?;
    let step = console.progress(0, "load", "");
    let inputs = Inputs::load_shard(spec, shard)?;
    check_strict(&inputs, strict)?;
    let events = inputs
        .interactions
        .as_ref()
        .map_or("no interactions".to_string(), |i| {
            format!("{} events", i.rows)
        });
    step.finish(format!(
        "{} subscribers, {events}",
        inputs.subscribers.len()
    ));
    Ok(inputs)
}

/// Under `strict`, fails when the interactions hold touchpoints missing from the
/// taxonomy (before any work starts).
pub fn check_strict(inputs: &Inputs, strict: bool) -> Result<(), PipelineError> {
    if strict {
        let unknown = unknown_touchpoints(inputs).map_err(|e| InputErrors(vec![e.into()]))?;
        if !unknown.is_empty() {
            return Err(PipelineError::UnknownTouchpoints(unknown));
        }
    }
    Ok(())
}

/// One line saying what was skipped and why.
pub fn skipped_line(events: &EventCounts) -> String {
    let unknown: u64 = events.unknown_touchpoints.values().sum();
    let parts = [
        (events.at_or_after_as_of, "events at or after as_of"),
        (events.inactive_subscriber, "events of inactive subscribers"),
        (
            events.unknown_subscriber,
            "events of subscribers missing from the subscriber file",
        ),
        (events.null_subscriber_id, "events without subscriber_id"),
        (events.null_ts, "events without ts"),
        (
            unknown,
            "events of touchpoints missing from the taxonomy (counted as other)",
        ),
    ];
    let text: Vec<String> = parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .chain(
            events
                .out_of_domain
                .lines()
                .into_iter()
                .map(|(what, n, how)| format!("{n} events with {what} ({how})")),
        )
        .collect();
    if text.is_empty() {
        "nothing".into()
    } else {
        text.join("; ")
    }
}

/// The headline churn metrics on one line.
pub fn metrics_line(m: &crate::model::ChurnMetrics) -> String {
    format!(
        "ROC AUC {:.3}, PR AUC {:.3}, top-decile lift {:.2}, Brier {:.4}, ECE {:.4}",
        m.roc_auc, m.pr_auc, m.lift_top_decile, m.brier, m.ece
    )
}

/// The stage timings on one line.
pub fn timings_line(timings: &StageTimings) -> String {
    timings
        .stages
        .iter()
        .map(|(k, v)| format!("{k} {v:.2}s"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Prints the closing summary of a command.
pub fn summary(console: &Console, stage: CommandName, lines: &[(&str, String)], start: Instant) {
    console.summary(stage.name(), start.elapsed().as_secs_f64(), lines);
}

/// Says what opening a command's outputs found and did (a stale lock taken over, an
/// interrupted commit finished or undone, temporary files removed).
pub fn say_notes(console: &Console, outputs: &OutputSet) {
    for note in outputs.notes() {
        console.say(format!("note: {note}"));
    }
}

/// Records those notes in a manifest, under `recovered`, when there are any.
pub fn set_recovered(manifest: &mut RunManifest, outputs: &OutputSet) {
    if !outputs.notes().is_empty() {
        manifest.set("recovered", outputs.notes());
    }
}

/// The manifest of a model directory (`models/NAME/manifest.json`), written by `train`
/// and by a `run` that trains; `inputs` as [`Inputs::describe`] gives them (or their
/// sum over shards).
pub fn model_manifest(
    command: &str,
    inputs: serde_json::Value,
    artifact: &ModelArtifact,
    timings: &StageTimings,
) -> RunManifest {
    let mut manifest = RunManifest::new(command);
    manifest.set("inputs", inputs);
    manifest.set("model_version", &artifact.model_version);
    manifest.set("model_sha256", &artifact.sha256);
    manifest.set("window", &artifact.window);
    manifest.set("metrics", &artifact.metrics);
    manifest.finish(timings);
    manifest
}

/// Touchpoint names missing from the taxonomy, with their event counts.
pub fn unknown_touchpoints(inputs: &Inputs) -> Result<Vec<(String, u64)>, crate::load::LoadError> {
    match &inputs.interactions {
        None => Ok(Vec::new()),
        Some(events) => Ok(features::unknown_touchpoints(events, &inputs.taxonomy)?
            .into_iter()
            .collect()),
    }
}
