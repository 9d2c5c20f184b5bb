//! `churnseg features`: the feature table for one `as_of`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Args;

use super::args::{GuardArgs, InputArgs, parse_as_of};
use crate::asof::AsOf;
use crate::console::{Console, human_bytes};
use crate::features::{FeatureParams, FeatureTable};
use crate::manifest::{RunManifest, StageTimings, manifest_path_for, peak_memory_bytes};
use crate::pipeline::{self, CommandName};
use crate::write::OutputSet;

#[derive(Debug, Args)]
pub struct FeaturesArgs {
    #[command(flatten)]
    pub inputs: InputArgs,
    #[command(flatten)]
    pub guards: GuardArgs,
    /// Snapshot date: features use only events before the start of this day (UTC).
    #[arg(long, value_parser = parse_as_of)]
    pub as_of: AsOf,
    /// Output Parquet file.
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
    let manifest_path = manifest_path_for(&args.out);
    let mut outputs = OutputSet::begin("features", &[&args.out, &manifest_path])?;
    pipeline::say_notes(&console, &outputs);
    let mut timings = StageTimings::default();
    let spec = args.inputs.spec();
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
    let mut manifest = RunManifest::new("features");
    manifest.set("inputs", inputs.describe());
    manifest.set("as_of", args.as_of);
    manifest.set("events", &table.events);
    manifest.set("guards", &guards);
    manifest.set("outputs", [args.out.display().to_string()]);
    pipeline::set_recovered(&mut manifest, &outputs);
    manifest.finish(&timings);
    outputs.stage_bytes(&manifest_path, &manifest.to_bytes()?)?;
    outputs.commit().context("writing the feature table")?;
    pipeline::summary(
        &console,
        CommandName::Features,
        &[
            ("subscribers in", inputs.subscribers.len().to_string()),
            ("events in", table.events.read.to_string()),
            (
                "rows out",
                format!("{} active at {}", table.batch.num_rows(), args.as_of),
            ),
            ("skipped", pipeline::skipped_line(&table.events)),
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
                    "{} ({} columns), {}",
                    args.out.display(),
                    table.batch.num_columns(),
                    manifest_path.display()
                ),
            ),
        ],
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
