//! `churnseg run` (being written).
use crate::console::Console;
use clap::Args;
#[derive(Debug, Args)]
pub struct RunArgs {}
pub fn run(_args: RunArgs, _console: Console) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
