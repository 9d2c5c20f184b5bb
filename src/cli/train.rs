//! `churnseg train`: fit the churn and value-segment models, validate out of time, write
//! the model artifact.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;

use super::args::{CustomArgs, GuardArgs, InputArgs, ShardCountArgs, parse_as_of};
use crate::asof::AsOf;
use crate::console::{Console, human_bytes};
use crate::manifest::{StageTimings, peak_memory_bytes};
use crate::model::ChurnParams;
use crate::pipeline::sharded::{self, MemoryEstimate, TableKind};
use crate::pipeline::{self, CommandName};
use crate::train::artifact::ModelArtifact;
use crate::train::{CandidateChoice, TrainParams, planned_dates, train};
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
    #[command(flatten)]
    pub shards: ShardCountArgs,
    /// Fit on a deterministic hash sample of N subscribers: those whose Spark
    /// xxhash64(subscriber_id) is among the N smallest, the same sample in any engine and
    /// for any --shards (the metrics say how many were sampled from how many).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..), help_heading = "Sharding")]
    pub sample: Option<u64>,
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
    let dates = planned_dates(&params, spec.interactions.is_some()).len() as u64;
    let shards = args.shards.count(|| {
        MemoryEstimate::of_sample(&spec, TableKind::Model { snapshots: dates }, args.sample)
    })?;
    let (trained, guards, described) = if shards.is_some() || args.sample.is_some() {
        let strict = args.inputs.strict;
        let k = shards.unwrap_or(1);
        let t = timings.time("train", || {
            sharded::train(&spec, strict, &params, k, args.sample, &console)
        })?;
        (t.artifact, t.guards, t.inputs)
    } else {
        let inputs = timings.time("load", || {
            pipeline::load_inputs(&spec, args.inputs.strict, &console)
        })?;
        let (trained, guards) = timings.time("train", || train(&inputs, &params, &console))?;
        (trained, guards, inputs.describe())
    };
    let artifact = timings.time("write", || trained.stage(&mut outputs, &args.out))?;
    let mut manifest = pipeline::model_manifest("train", described, &artifact, &timings);
    if let Some(k) = shards {
        manifest.set("shards", k);
    }
    manifest.set("guards", &guards);
    pipeline::set_recovered(&mut manifest, &outputs);
    outputs.stage_bytes(&manifest_path, &manifest.to_bytes()?)?;
    outputs.commit()?;
    let v = &artifact.metrics.validation;
    let sample = artifact.metrics.sample.map(|s| {
        (
            "sample",
            format!(
                "{} of {} subscribers (xxhash64 of subscriber_id at most {})",
                s.sampled, s.of, s.max_hash
            ),
        )
    });
    let lines = [
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
    ];
    let lines: Vec<(&str, String)> = sample.into_iter().chain(lines).collect();
    pipeline::summary(&console, CommandName::Train, &lines, start);
    Ok(())
}
