//! `churnseg run`: the nightly job described by a pipeline TOML file.

use std::path::PathBuf;

use clap::Args;

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
}

pub fn run(args: RunArgs, console: Console) -> anyhow::Result<()> {
    job::run_config(&args.config, &args.allow, &console)
}
