//! `churnseg train` (being written).
use crate::console::Console;
use clap::Args;
#[derive(Debug, Args)]
pub struct TrainArgs {}
pub fn run(_args: TrainArgs, _console: Console) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
