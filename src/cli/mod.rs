//! The command line (SPEC §5): one module per subcommand. Arguments are parsed here and
//! handed to the pipeline's library modules; every command ends with a summary.

mod features;
mod generate;
mod report;
mod run;
mod score;
mod train;
mod validate;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::asof::AsOf;
use crate::console::Console;

/// Churn risk, 80/20/30 value segments and loyalty targets from subscriber records and
/// touchpoint history.
#[derive(Debug, Parser)]
#[command(name = "churnseg", version, about, long_about = None)]
pub struct Cli {
    /// Worker threads (default: all cores).
    #[arg(long, global = true)]
    pub threads: Option<usize>,
    /// Print nothing but errors.
    #[arg(long, short, global = true)]
    pub quiet: bool,
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
    #[command(after_help = "Example:\n  churnseg run pipelines/demo.toml")]
    Run(run::RunArgs),
    /// Write the HTML report of a scored file and its model.
    #[command(
        after_help = "Example:\n  churnseg report --scored out/demo/scored.parquet --model models/demo --out out/demo/report.html"
    )]
    Report(report::ReportArgs),
}

/// The inputs every data command reads.
#[derive(Debug, Clone, Args)]
pub struct InputArgs {
    /// Subscriber table: a Parquet file, a directory of them, or a glob.
    #[arg(long)]
    pub subscribers: PathBuf,
    /// Touchpoint events (optional: without them only subscriber columns are used).
    #[arg(long)]
    pub interactions: Option<PathBuf>,
    /// Touchpoint taxonomy TOML (default: the shipped pipelines/taxonomy.toml).
    #[arg(long)]
    pub taxonomy: Option<PathBuf>,
    /// Fail when interactions hold touchpoints missing from the taxonomy.
    #[arg(long)]
    pub strict: bool,
}

/// Parses an `--as-of` date.
pub fn parse_as_of(text: &str) -> Result<AsOf, String> {
    text.parse()
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    if let Some(threads) = cli.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .build_global()
            .ok();
    }
    let console = Console::new(cli.quiet);
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
