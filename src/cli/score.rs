//! `churnseg score`: apply a trained model to the subscribers active at `as_of`.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;

use super::InputArgs;
use crate::artifact::ModelArtifact;
use crate::asof::AsOf;
use crate::console::Console;
use crate::pipeline::{self, Stage, job};
use crate::score::ScoreParams;

#[derive(Debug, Args)]
pub struct ScoreArgs {
    #[command(flatten)]
    pub inputs: InputArgs,
    /// Snapshot date to score.
    #[arg(long, value_parser = super::parse_as_of)]
    pub as_of: AsOf,
    /// Model directory written by `churnseg train`.
    #[arg(long)]
    pub model: PathBuf,
    /// Output Parquet file (its manifest goes beside it).
    #[arg(long)]
    pub out: PathBuf,
    /// Risk deciles counted as high risk (1–10).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=10))]
    pub high_risk_deciles: u8,
    /// Recommended touchpoints per subscriber (1–3).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=3))]
    pub max_touchpoints: u8,
}

pub fn run(args: ScoreArgs, console: Console) -> anyhow::Result<()> {
    let start = Instant::now();
    let artifact = ModelArtifact::load(&args.model)?;
    let spec = pipeline::input_spec(&args.inputs);
    let params = ScoreParams {
        high_risk_deciles: args.high_risk_deciles,
        max_touchpoints: args.max_touchpoints as usize,
        ..ScoreParams::default()
    };
    let outcome = job::score_to_file(
        &spec,
        args.inputs.strict,
        &artifact,
        args.as_of,
        &params,
        &args.out,
        &console,
    )?;
    pipeline::summary(&console, Stage::Score, &outcome.summary_lines(), start);
    Ok(())
}
