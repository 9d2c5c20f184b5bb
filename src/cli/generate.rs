//! `churnseg generate`: synthetic subscribers, interactions and a taxonomy.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;

use crate::asof::AsOf;
use crate::console::{Console, human_bytes};
use crate::generate::{GenerateParams, generate};
use crate::manifest::peak_memory_bytes;
use crate::pipeline::{self, CommandName};

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Number of subscribers.
    #[arg(long)]
    pub subscribers: usize,
    /// Days of history, ending the day before --end.
    #[arg(long)]
    pub days: u32,
    /// Random seed: the same seed gives byte-identical files.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Output directory.
    #[arg(long)]
    pub out: PathBuf,
    /// First day after the history.
    #[arg(long, default_value = "2026-07-01", value_parser = super::args::parse_as_of)]
    pub end: AsOf,
    /// Write subscriber ids as strings ("S0000001") instead of integers.
    #[arg(long)]
    pub string_ids: bool,
}

pub fn run(args: GenerateArgs, console: Console) -> anyhow::Result<()> {
    let start = Instant::now();
    let mut params = GenerateParams::new(args.subscribers, args.days, args.seed);
    params.end = args.end.date();
    params.string_ids = args.string_ids;
    let step = console.progress(args.subscribers as u64, "generate", "subscribers");
    let summary = generate(&params, &args.out, &|done| step.set(done))?;
    step.finish(format!(
        "{} subscribers, {} events",
        summary.subscribers, summary.events
    ));
    let files: Vec<String> = summary
        .files
        .iter()
        .map(|f| f.display().to_string())
        .collect();
    pipeline::summary(
        &console,
        CommandName::Generate,
        &[
            (
                "subscribers",
                format!(
                    "{} ({} churned within the history)",
                    summary.subscribers, summary.churners
                ),
            ),
            ("events", summary.events.to_string()),
            (
                "history",
                format!(
                    "{} days up to {} (seed {})",
                    args.days,
                    args.end.plus_days(-1),
                    args.seed
                ),
            ),
            (
                "peak memory",
                peak_memory_bytes()
                    .map(human_bytes)
                    .unwrap_or_else(|| "unknown".into()),
            ),
            ("outputs", files.join(", ")),
        ],
        start,
    );
    Ok(())
}
