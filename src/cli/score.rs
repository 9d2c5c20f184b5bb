//! `churnseg score` (being written).
use crate::console::Console;
use clap::Args;
#[derive(Debug, Args)]
pub struct ScoreArgs {}
pub fn run(_args: ScoreArgs, _console: Console) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
