//! `churnseg report` (being written).
use crate::console::Console;
use clap::Args;
#[derive(Debug, Args)]
pub struct ReportArgs {}
pub fn run(_args: ReportArgs, _console: Console) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
