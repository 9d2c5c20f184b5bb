//! `churnseg score`: apply a trained model to the subscribers active at `as_of`.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;

use super::args::{CustomArgs, GuardArgs, InputArgs, ShardArgs, parse_as_of};
use crate::asof::AsOf;
use crate::console::Console;
use crate::pipeline::{self, CommandName};
use crate::score::ScoreParams;
use crate::train::artifact::ModelArtifact;

#[derive(Debug, Args)]
pub struct ScoreArgs {
    #[command(flatten)]
    pub inputs: InputArgs,
    #[command(flatten)]
    pub guards: GuardArgs,
    #[command(flatten)]
    pub shards: ShardArgs,
    // custom features: the model computes those it was trained with; a `--custom` file
    // must define exactly these (a changed or missing definition is a schema mismatch)
    #[command(flatten)]
    pub custom: CustomArgs,
    /// Snapshot date to score.
    #[arg(long, value_parser = parse_as_of)]
    pub as_of: AsOf,
    /// Model directory written by `churnseg train`.
    #[arg(long)]
    pub model: PathBuf,
    /// Output Parquet file (its manifest goes beside it), or a directory (ending in `/`)
    /// for part files.
    #[arg(long)]
    pub out: PathBuf,
    /// Risk deciles counted as high risk (1–10).
    #[arg(long, default_value_t = ScoreParams::default().high_risk_deciles, value_parser = clap::value_parser!(u8).range(1..=10))]
    pub high_risk_deciles: u8,
    /// Recommended touchpoints per subscriber (1–3).
    #[arg(long, default_value_t = ScoreParams::default().max_touchpoints as u8, value_parser = clap::value_parser!(u8).range(1..=3))]
    pub max_touchpoints: u8,
    /// Retention budget: mark `targeted` the subscribers with the best expected return.
    #[arg(long)]
    pub budget: Option<f64>,
    /// Cost of one retention offer.
    #[arg(long, default_value_t = ScoreParams::default().offer_cost)]
    pub offer_cost: f64,
    /// Share of would-be churners an offer keeps.
    #[arg(long, default_value_t = ScoreParams::default().save_rate)]
    pub save_rate: f64,
    /// A previous scored file (it may be --out itself): the summary, manifest and report
    /// then show segment and risk movement since it, and the health guards compare with
    /// the figures its manifest recorded.
    #[arg(long)]
    pub previous: Option<PathBuf>,
}

pub fn run(args: ScoreArgs, console: Console) -> anyhow::Result<()> {
    let start = Instant::now();
    let artifact = ModelArtifact::load(&args.model)?;
    if args.custom.custom.is_some() {
        args.custom
            .features()?
            .check_model(&artifact.custom_features, &artifact.model_version)?;
    }
    let spec = crate::load::InputSpec {
        custom: crate::custom_features::CustomFeatures::from_model(
            &artifact.custom_features,
            &artifact.model_version,
        ),
        ..args.inputs.spec()
    };
    let params = ScoreParams {
        high_risk_deciles: args.high_risk_deciles,
        max_touchpoints: args.max_touchpoints as usize,
        budget: args.budget,
        offer_cost: args.offer_cost,
        save_rate: args.save_rate,
        ..ScoreParams::default()
    };
    params.check()?;
    let plan = args.shards.plan(
        &spec,
        &args.out,
        crate::pipeline::sharded::TableKind::Scores,
    )?;
    let outcome = crate::pipeline::job::score_to_file(
        &spec,
        args.inputs.strict,
        &artifact,
        args.as_of,
        &params,
        args.previous.as_deref(),
        &args.guards.settings(),
        plan.as_ref(),
        &args.out,
        &console,
    )?;
    pipeline::summary(
        &console,
        CommandName::Score,
        &outcome.summary_lines(),
        start,
    );
    Ok(())
}
