//! `churnseg train`: fit the churn and value-segment models, validate out of time, write
//! the model artifact.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;

use super::args::{CustomArgs, GuardArgs, InputArgs, parse_as_of};
use crate::asof::AsOf;
use crate::console::{Console, human_bytes};
use crate::manifest::{StageTimings, peak_memory_bytes};
use crate::model::ChurnParams;
use crate::pipeline::{self, CommandName};
use crate::train::artifact::ModelArtifact;
use crate::train::{CandidateChoice, TrainParams, train};
use crate::write::OutputSet;

#[derive(Debug, Args)]
pub struct TrainArgs {
    #[command(flatten)]
    pub inputs: InputArgs,
    #[command(flatten)]
    pub guards: GuardArgs,
    #[command(flatten)]
    pub custom: CustomArgs,
    /// Snapshot of the final model; labels are churn in [as_of, as_of + horizon).
    #[arg(long, value_parser = parse_as_of)]
    pub as_of: AsOf,
    /// Churn horizon in days.
    #[arg(long, default_value_t = TrainParams::HORIZON_DAYS)]
    pub horizon: u32,
    /// Model directory to write (model.json, metrics.json).
    #[arg(long)]
    pub out: PathBuf,
    /// Random seed.
    #[arg(long, default_value_t = TrainParams::SEED)]
    pub seed: u64,
    /// Boosting rounds.
    #[arg(long, default_value_t = ChurnParams::default().n_trees)]
    pub trees: usize,
    /// Stack up to this many snapshots per model, --snapshot-step days apart, for more
    /// rows (only those with 90 days of history before them); the metrics then hold an
    /// out-of-time backtest of each. 1 trains on the --as-of snapshot alone.
    #[arg(long, default_value_t = TrainParams::SNAPSHOTS)]
    pub snapshots: usize,
    /// Days between stacked snapshots.
    #[arg(long, default_value_t = TrainParams::SNAPSHOT_STEP_DAYS)]
    pub snapshot_step: u32,
    /// The churn model to ship: `auto` (the one validation prefers), `gbdt`, `logistic`
    /// or `blend`.
    #[arg(long, default_value = "auto", value_parser = CandidateChoice::parse)]
    pub candidate: CandidateChoice,
    /// Windows (days, from 7, 30, 90) of the per-touchpoint counts `tp_{touchpoint}_{W}d`
    /// the models read.
    #[arg(long, value_delimiter = ',', default_value = "90", value_parser = clap::value_parser!(u32).range(1..))]
    pub touchpoint_windows: Vec<u32>,
}

pub fn run(args: TrainArgs, console: Console) -> anyhow::Result<()> {
    let start = Instant::now();
    let name = args
        .out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    let mut params = TrainParams::new(args.as_of, &name).with_seed(args.seed);
    params.horizon_days = args.horizon;
    params.churn.n_trees = args.trees;
    params.snapshots = args.snapshots;
    params.snapshot_step_days = args.snapshot_step;
    params.candidate = args.candidate.forced();
    params.touchpoint_windows = args.touchpoint_windows.clone();
    params.guards = args.guards.settings();
    params.check()?;
    // model.json, metrics.json and manifest.json are one set: declared and locked first
    let [model_path, metrics_path] = ModelArtifact::files(&args.out);
    let manifest_path = args.out.join("manifest.json");
    let mut outputs = OutputSet::begin("train", &[&model_path, &metrics_path, &manifest_path])?;
    pipeline::say_notes(&console, &outputs);
    let mut timings = StageTimings::default();
    let spec = crate::load::InputSpec {
        custom: args.custom.features()?,
        ..args.inputs.spec()
    };
    let inputs = timings.time("load", || {
        pipeline::load_inputs(&spec, args.inputs.strict, &console)
    })?;
    let (trained, guards) = timings.time("train", || train(&inputs, &params, &console))?;
    let artifact = timings.time("write", || trained.stage(&mut outputs, &args.out))?;
    let mut manifest = pipeline::model_manifest("train", &inputs, &artifact, &timings);
    manifest.set("guards", &guards);
    pipeline::set_recovered(&mut manifest, &outputs);
    outputs.stage_bytes(&manifest_path, &manifest.to_bytes()?)?;
    outputs.commit()?;
    let v = &artifact.metrics.validation;
    pipeline::summary(
        &console,
        CommandName::Train,
        &[
            (
                "rows",
                if artifact.metrics.snapshots > 1 {
                    format!(
                        "{} from {} snapshots {} days apart, ending {} ({} churned within {} days)",
                        artifact.metrics.rows,
                        artifact.metrics.snapshots,
                        args.snapshot_step,
                        args.as_of,
                        artifact.metrics.positives,
                        args.horizon
                    )
                } else {
                    format!(
                        "{} active at {} ({} churned within {} days)",
                        artifact.metrics.rows, args.as_of, artifact.metrics.positives, args.horizon
                    )
                },
            ),
            (
                "validation",
                format!(
                    "{}{}",
                    v.method,
                    v.note
                        .as_ref()
                        .map(|n| format!(" ({n})"))
                        .unwrap_or_default()
                ),
            ),
            (
                "candidates",
                v.candidates
                    .iter()
                    .map(|c| format!("{} ROC AUC {:.3}", c.name, c.churn.roc_auc))
                    .chain(
                        v.baselines
                            .iter()
                            .map(|(n, m)| format!("baseline {n} {:.3}", m.roc_auc)),
                    )
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            (
                "churn model",
                format!(
                    "{} ({}): {}",
                    v.chosen,
                    v.choice,
                    pipeline::metrics_line(&v.churn)
                ),
            ),
            ("segments", artifact.metrics.value_segments.summary()),
            ("guards", guards.summary_line()),
            ("timings", pipeline::timings_line(&timings)),
            (
                "peak memory",
                peak_memory_bytes()
                    .map(human_bytes)
                    .unwrap_or_else(|| "unknown".into()),
            ),
            (
                "outputs",
                format!(
                    "{} (version {})",
                    args.out.display(),
                    artifact.model_version
                ),
            ),
        ],
        start,
    );
    Ok(())
}
