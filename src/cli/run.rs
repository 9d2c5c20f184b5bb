//! `churnseg run`: the nightly job described by a pipeline TOML file.

use std::path::PathBuf;

use clap::Args;

use super::args::ShardCountArgs;
use crate::asof::AsOf;
use crate::console::Console;
use crate::pipeline::job;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The pipeline config, e.g. pipelines/demo.toml.
    pub config: PathBuf,
    /// Report these health guards but do not stop on them, besides the config's
    /// `guards.allow` (comma-separated or repeated; `all` for every guard).
    #[arg(long, value_delimiter = ',', value_name = "GUARD", value_parser = crate::guard::parse_allow)]
    pub allow: Vec<String>,
    /// The night to score (YYYY-MM-DD), instead of the config's `score.as_of`; a
    /// relative `train.as_of` (`-120d`) follows it. What a scheduler passes, e.g.
    /// Airflow's `{{ ds }}`.
    #[arg(long, value_parser = super::parse_as_of)]
    pub as_of: Option<AsOf>,
    /// Instead of the config's `[sharding]`: the shard count or the memory budget.
    #[command(flatten)]
    pub shards: ShardCountArgs,
    /// Directory for the shards' partial results, instead of `sharding.scratch`
    /// (default: beside the scored table); removed at the end, also after a failure.
    #[arg(long, value_name = "DIR", help_heading = "Sharding")]
    pub scratch: Option<PathBuf>,
}

pub fn run(args: RunArgs, console: Console) -> anyhow::Result<()> {
    let request = job::RunRequest {
        allow: args.allow,
        as_of: args.as_of,
        shards: args.shards.shards,
        max_memory: args.shards.max_memory,
        scratch: args.scratch,
    };
    Ok(job::run_config(&args.config, &request, &console)?)
}
