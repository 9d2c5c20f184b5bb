//! `churnseg report`: the HTML report of a scored file and its model.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;

use crate::console::Console;
use crate::load::read_scored;
use crate::pipeline::{self, CommandName};
use crate::report::{ReportOptions, render};
use crate::train::artifact::ModelArtifact;
use crate::write::OutputSet;

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Scored Parquet written by `churnseg score` or `churnseg run`.
    #[arg(long)]
    pub scored: PathBuf,
    /// The model directory that scored it.
    #[arg(long)]
    pub model: PathBuf,
    /// A previous night's scored file, to show segment and risk movement.
    #[arg(long)]
    pub previous: Option<PathBuf>,
    /// Output HTML file.
    #[arg(long)]
    pub out: PathBuf,
    /// Currency symbol put before money amounts, e.g. `¥` (default: none).
    #[arg(long)]
    pub currency: Option<String>,
}

pub fn run(args: ReportArgs, console: Console) -> anyhow::Result<()> {
    let start = Instant::now();
    let mut outputs = OutputSet::begin("report", &[&args.out])?;
    pipeline::say_notes(&console, &outputs);
    let artifact = ModelArtifact::load(&args.model)?;
    let scored = read_scored(&args.scored)?;
    let previous = args.previous.as_deref().map(read_scored).transpose()?;
    let options = ReportOptions {
        currency: args.currency.as_deref().unwrap_or_default(),
        previous: previous.as_ref(),
        ..ReportOptions::default()
    };
    let html = render(&scored, &artifact, &options)?;
    outputs.stage_bytes(&args.out, html.as_bytes())?;
    outputs.commit()?;
    pipeline::summary(
        &console,
        CommandName::Report,
        &[
            (
                "rows in",
                format!("{} scored subscribers", scored.num_rows()),
            ),
            ("model", artifact.model_version.clone()),
            ("outputs", args.out.display().to_string()),
        ],
        start,
    );
    Ok(())
}
