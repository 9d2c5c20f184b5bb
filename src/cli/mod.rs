//! The command line (SPEC §5): one module per subcommand. Arguments are parsed here and
//! handed to the pipeline's library modules; every command ends with a summary.

mod args;
mod features;
mod generate;
mod report;
mod run;
mod score;
mod train;
mod validate;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::console::{Console, LogFormat};
use crate::guard::GuardFailure;
pub use args::{GuardArgs, InputArgs, ShardArgs, parse_as_of};

/// Churn risk, 80/20/30 value segments and loyalty targets from subscriber records and
/// touchpoint history.
#[derive(Debug, Parser)]
#[command(name = "churnseg", version, about, long_about = None)]
pub struct Cli {
    /// Worker threads (default: all cores; at most 4 per core, or 16).
    #[arg(long, global = true)]
    pub threads: Option<usize>,
    /// Print nothing but errors.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// How log lines on stderr are written: `text`, or `json` (one JSON object per line).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write realistic synthetic subscribers, interactions and a taxonomy.
    #[command(
        after_help = "Example:\n  churnseg generate --subscribers 20000 --days 365 --seed 42 --out data/demo"
    )]
    Generate(generate::GenerateArgs),
    /// Check inputs against the schema and report every problem.
    #[command(
        after_help = "Example:\n  churnseg validate --subscribers data/demo/subscribers.parquet --interactions data/demo/interactions.parquet"
    )]
    Validate(validate::ValidateArgs),
    /// Build the feature table: one row per subscriber active at --as-of.
    #[command(
        after_help = "Example:\n  churnseg features --subscribers data/demo/subscribers.parquet \\\n    --interactions data/demo/interactions.parquet --as-of 2026-07-01 --out out/features.parquet"
    )]
    Features(features::FeaturesArgs),
    /// Train the churn and value-segment models, validated out of time.
    #[command(
        after_help = "Example:\n  churnseg train --subscribers data/demo/subscribers.parquet \\\n    --interactions data/demo/interactions.parquet --as-of 2026-04-01 --horizon 90 --out models/demo"
    )]
    Train(train::TrainArgs),
    /// Score active subscribers: risk, segments, drivers, actions and touchpoints.
    #[command(
        after_help = "Example:\n  churnseg score --subscribers data/demo/subscribers.parquet \\\n    --interactions data/demo/interactions.parquet --as-of 2026-07-01 --model models/demo --out out/scored.parquet"
    )]
    Score(score::ScoreArgs),
    /// Run a nightly job described by a pipeline TOML file.
    #[command(after_help = "Example:\n  churnseg run pipelines/demo.toml --as-of 2026-07-01")]
    Run(run::RunArgs),
    /// Write the HTML report of a scored file and its model.
    #[command(
        after_help = "Example:\n  churnseg report --scored out/demo/as_of=2026-07-01/scored.parquet --model models/demo --currency ¥ --out out/report.html"
    )]
    Report(report::ReportArgs),
}

/// The most worker threads `--threads` may ask for: 4 per core, and at least 16.
pub fn thread_limit() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    (4 * cores).max(16)
}

/// The exit status of a failed command: 3 when a health guard stopped it, else 2.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    let stopped = err.chain().any(|cause| {
        cause.is::<GuardFailure>()
            || cause
                .downcast_ref::<crate::pipeline::job::JobError>()
                .is_some_and(crate::pipeline::job::JobError::stopped_by_guard)
            || cause
                .downcast_ref::<crate::pipeline::sharded::ShardError>()
                .is_some_and(crate::pipeline::sharded::ShardError::stopped_by_guard)
            || matches!(
                cause.downcast_ref::<crate::train::TrainError>(),
                Some(crate::train::TrainError::Guard(_))
            )
    });
    if stopped { crate::guard::EXIT_CODE } else { 2 }
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let console = Console::with_format(cli.quiet, cli.log_format);
    if let Some(threads) = cli.threads {
        let limit = thread_limit();
        if threads > limit {
            console.say(format!(
                "warning: --threads {threads} is more than this machine can use; using {limit} (4 per core, at least 16)"
            ));
        }
        let threads = threads.clamp(1, limit);
        // polars (custom features) sizes its own pool from this variable, at first use
        if std::env::var_os("POLARS_MAX_THREADS").is_none() {
            // SAFETY: set before any other thread of this process is started
            unsafe { std::env::set_var("POLARS_MAX_THREADS", threads.to_string()) };
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global()
            .with_context(|| format!("failed to start {threads} worker threads"))?;
    }
    match cli.command {
        Command::Generate(args) => generate::run(args, console),
        Command::Validate(args) => validate::run(args, console),
        Command::Features(args) => features::run(args, console),
        Command::Train(args) => train::run(args, console),
        Command::Score(args) => score::run(args, console),
        Command::Run(args) => run::run(args, console),
        Command::Report(args) => report::run(args, console),
    }
}
