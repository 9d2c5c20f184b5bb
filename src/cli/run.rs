//! `churnseg run`: the nightly job described by a pipeline TOML file.

use std::path::PathBuf;

use clap::Args;

use crate::console::Console;
use crate::pipeline::job;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The pipeline config, e.g. pipelines/demo.toml.
    pub config: PathBuf,
}

pub fn run(args: RunArgs, console: Console) -> anyhow::Result<()> {
    job::run_config(&args.config, &console)
}
