//! `churnseg generate`: synthetic subscribers, interactions and a taxonomy.

use std::path::PathBuf;
use std::time::Instant;

use arrow::datatypes::TimeUnit;
use clap::{Args, ValueEnum};

use crate::asof::AsOf;
use crate::console::{Console, human_bytes};
use crate::generate::{GenerateParams, Layout, generate};
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
    /// Order of the events: `time-ordered` (across subscribers, as a log appended day by
    /// day) or `by-subscriber` (each subscriber's events together).
    #[arg(long, value_enum, default_value_t = LayoutArg::TimeOrdered)]
    pub layout: LayoutArg,
    /// Unit of the event timestamps (UTC): s, ms, us or ns.
    #[arg(long, value_enum, default_value_t = TsUnitArg::Us)]
    pub ts_unit: TsUnitArg,
}

/// `--layout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LayoutArg {
    TimeOrdered,
    BySubscriber,
}

/// `--ts-unit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TsUnitArg {
    S,
    Ms,
    Us,
    Ns,
}

pub fn run(args: GenerateArgs, console: Console) -> anyhow::Result<()> {
    let start = Instant::now();
    let mut params = GenerateParams::new(args.subscribers, args.days, args.seed);
    params.end = args.end.date();
    params.string_ids = args.string_ids;
    params.layout = match args.layout {
        LayoutArg::TimeOrdered => Layout::TimeOrdered,
        LayoutArg::BySubscriber => Layout::BySubscriber,
    };
    params.ts_unit = match args.ts_unit {
        TsUnitArg::S => TimeUnit::Second,
        TsUnitArg::Ms => TimeUnit::Millisecond,
        TsUnitArg::Us => TimeUnit::Microsecond,
        TsUnitArg::Ns => TimeUnit::Nanosecond,
    };
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
