//! `churnseg features`: the feature table for one `as_of`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Args;

use super::args::{CustomArgs, GuardArgs, InputArgs, ShardArgs, parse_as_of};
use crate::asof::AsOf;
use crate::console::{Console, human_bytes};
use crate::features::{FeatureParams, FeatureTable};
use crate::load::InputSpec;
use crate::manifest::{RunManifest, StageTimings, manifest_path_for, peak_memory_bytes};
use crate::pipeline::sharded::{self, ShardPlan, TableOut};
use crate::pipeline::{self, CommandName};
use crate::write::OutputSet;

#[derive(Debug, Args)]
pub struct FeaturesArgs {
    #[command(flatten)]
    pub inputs: InputArgs,
    #[command(flatten)]
    pub guards: GuardArgs,
    #[command(flatten)]
    pub shards: ShardArgs,
    #[command(flatten)]
    pub custom: CustomArgs,
    /// Snapshot date: features use only events before the start of this day (UTC).
    #[arg(long, value_parser = parse_as_of)]
    pub as_of: AsOf,
    /// Output Parquet file, or a directory (ending in `/`) for part files.
    #[arg(long)]
    pub out: PathBuf,
    /// Also build the extended features the churn model uses (reason counts, handling
    /// time, per-touchpoint counts); they read two more columns. Default: the SPEC core
    /// features only.
    #[arg(long)]
    pub extended: bool,
    /// Only read the event columns the features would read, with the same reader and
    /// threads, and drop them; write nothing. The decode floor for benchmarks.
    #[arg(long, hide = true)]
    pub decode_only: bool,
}

pub fn run(args: FeaturesArgs, console: Console) -> anyhow::Result<()> {
    let start = Instant::now();
    if let Some(plan) =
        args.shards
            .plan(&args.inputs.spec(), &args.out, sharded::TableKind::Features)?
    {
        return run_sharded(args, plan, console, start);
    }
    let manifest_path = manifest_path_for(&args.out);
    let mut outputs = OutputSet::begin("features", &[&args.out, &manifest_path])?;
    pipeline::say_notes(&console, &outputs);
    let mut timings = StageTimings::default();
    let spec = InputSpec {
        custom: args.custom.features()?,
        ..args.inputs.spec()
    };
    let inputs = timings.time("load", || {
        pipeline::load_inputs(&spec, args.inputs.strict, &console)
    })?;
    if args.decode_only {
        return decode_only(&args, &inputs, &console, start);
    }
    let params = FeatureParams {
        as_of: args.as_of,
        extended: args.extended,
        touchpoint_use: false,
    };
    let table: FeatureTable = timings.time("features", || {
        crate::features::build_logged(&inputs, params, &console)
    })?;
    let guards = crate::guard::check(&inputs, &table, &args.guards.settings(), None).enforce()?;
    guards.warnings().iter().for_each(|w| console.say(w));
    timings
        .time("write", || outputs.stage_parquet(&args.out, &table.batch))
        .context("writing the feature table")?;
    let manifest = features_manifest(
        &args,
        inputs.describe(),
        None,
        &table.events,
        &guards,
        &outputs,
        &timings,
    );
    outputs.stage_bytes(&manifest_path, &manifest.to_bytes()?)?;
    outputs.commit().context("writing the feature table")?;
    let written = Written {
        subscribers: inputs.subscribers.len(),
        events: &table.events,
        rows: table.batch.num_rows(),
        columns: table.batch.num_columns(),
        shards: None,
    };
    summarise(
        &args,
        &written,
        &guards,
        &timings,
        &manifest_path,
        &console,
        start,
    );
    Ok(())
}

/// `--decode-only`: the decode floor of the feature pass, timed.
fn decode_only(
    args: &FeaturesArgs,
    inputs: &crate::load::Inputs,
    console: &Console,
    start: Instant,
) -> anyhow::Result<()> {
    let decoding = Instant::now();
    let rows = match &inputs.interactions {
        Some(events) => {
            crate::features::decode_floor(events, args.extended, &|_| {}).context("decoding")?
        }
        None => 0,
    };
    pipeline::summary(
        console,
        CommandName::Features,
        &[
            ("decoded", format!("{rows} events, nothing written")),
            (
                "timings",
                format!("decode {:.2}s", decoding.elapsed().as_secs_f64()),
            ),
        ],
        start,
    );
    Ok(())
}

/// `features --shards K`: shard by shard, the same table.
fn run_sharded(
    args: FeaturesArgs,
    plan: ShardPlan,
    console: Console,
    start: Instant,
) -> anyhow::Result<()> {
    let out = TableOut::of(&args.out);
    let manifest_path = out.manifest();
    let mut declared = out.files(plan.shards);
    declared.push(manifest_path.clone());
    let declared: Vec<&std::path::Path> = declared.iter().map(PathBuf::as_path).collect();
    let mut outputs = OutputSet::begin("features", &declared)?;
    pipeline::say_notes(&console, &outputs);
    let mut timings = StageTimings::default();
    let spec = InputSpec {
        custom: args.custom.features()?,
        ..args.inputs.spec()
    };
    let params = FeatureParams {
        as_of: args.as_of,
        extended: args.extended,
        touchpoint_use: false,
    };
    let (gathered, guards, columns) = timings
        .time("features", || {
            sharded::features(
                &spec,
                args.inputs.strict,
                params,
                &plan,
                &out,
                &args.guards.settings(),
                &mut outputs,
                &console,
            )
        })
        .context("writing the feature table")?;
    guards.warnings().iter().for_each(|w| console.say(w));
    let manifest = features_manifest(
        &args,
        gathered.describe(),
        Some(plan.shards),
        &gathered.events,
        &guards,
        &outputs,
        &timings,
    );
    outputs.stage_bytes(&manifest_path, &manifest.to_bytes()?)?;
    outputs.commit().context("writing the feature table")?;
    let written = Written {
        subscribers: gathered.subscribers,
        events: &gathered.events,
        rows: gathered.rows,
        columns,
        shards: Some(plan.shards),
    };
    summarise(
        &args,
        &written,
        &guards,
        &timings,
        &manifest_path,
        &console,
        start,
    );
    Ok(())
}

/// The manifest of a features run, in one piece or by shard (`shards`).
fn features_manifest(
    args: &FeaturesArgs,
    inputs: serde_json::Value,
    shards: Option<u32>,
    events: &crate::features::accumulate::EventCounts,
    guards: &crate::guard::GuardReport,
    outputs: &OutputSet,
    timings: &StageTimings,
) -> RunManifest {
    let mut manifest = RunManifest::new("features");
    manifest.set("inputs", inputs);
    manifest.set("as_of", args.as_of);
    if let Some(k) = shards {
        manifest.set("shards", k);
    }
    manifest.set("events", events);
    manifest.set("guards", guards);
    manifest.set("outputs", [args.out.display().to_string()]);
    pipeline::set_recovered(&mut manifest, outputs);
    manifest.finish(timings);
    manifest
}

/// What a features run wrote, for its summary.
struct Written<'a> {
    subscribers: usize,
    events: &'a crate::features::accumulate::EventCounts,
    rows: usize,
    columns: usize,
    shards: Option<u32>,
}

/// The closing summary of `features`.
fn summarise(
    args: &FeaturesArgs,
    w: &Written<'_>,
    guards: &crate::guard::GuardReport,
    timings: &StageTimings,
    manifest_path: &std::path::Path,
    console: &Console,
    start: Instant,
) {
    let mut lines = vec![
        ("subscribers in", w.subscribers.to_string()),
        ("events in", w.events.read.to_string()),
        ("rows out", format!("{} active at {}", w.rows, args.as_of)),
    ];
    lines.extend(w.shards.map(|k| ("shards", k.to_string())));
    lines.extend([
        ("skipped", pipeline::skipped_line(w.events)),
        ("guards", guards.summary_line()),
        ("timings", pipeline::timings_line(timings)),
        (
            "peak memory",
            peak_memory_bytes()
                .map(human_bytes)
                .unwrap_or_else(|| "unknown".into()),
        ),
        (
            "outputs",
            format!(
                "{} ({} columns), {}",
                args.out.display(),
                w.columns,
                manifest_path.display()
            ),
        ),
    ]);
    pipeline::summary(console, CommandName::Features, &lines, start);
}
