//! `churnseg validate`: check the inputs against SPEC §2 and report every problem.

use std::time::Instant;

use anyhow::bail;
use clap::Args;

use super::InputArgs;
use crate::console::Console;
use crate::load::Inputs;
use crate::pipeline::{self, Stage};

#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub inputs: InputArgs,
}

pub fn run(args: ValidateArgs, console: Console) -> anyhow::Result<()> {
    let start = Instant::now();
    let spec = pipeline::input_spec(&args.inputs);
    let inputs = match Inputs::load(&spec) {
        Ok(inputs) => inputs,
        Err(errors) => bail!("the inputs are not valid:\n{errors}"),
    };
    let unknown = pipeline::unknown_touchpoints(&inputs)?;
    let unknown_line = if unknown.is_empty() {
        "none".to_string()
    } else {
        unknown
            .iter()
            .map(|(k, v)| format!("`{k}` ({v})"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if args.inputs.strict && !unknown.is_empty() {
        bail!("touchpoints missing from the taxonomy (--strict): {unknown_line}");
    }
    let events = inputs
        .interactions
        .as_ref()
        .map_or("none".to_string(), |i| {
            format!("{} rows in {} file(s)", i.rows, i.source.files.len())
        });
    let skipped: Vec<String> = inputs
        .subscribers
        .skipped_columns
        .iter()
        .map(|(c, why)| format!("`{c}`: {why}"))
        .collect();
    pipeline::summary(
        &console,
        Stage::Validate,
        &[
            (
                "subscribers",
                format!("{} rows, valid", inputs.subscribers.len()),
            ),
            ("interactions", events),
            (
                "pass-through",
                inputs
                    .subscribers
                    .extra
                    .iter()
                    .map(|c| c.field.name().as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            (
                "not used",
                if skipped.is_empty() {
                    "nothing".into()
                } else {
                    skipped.join("; ")
                },
            ),
            ("unknown touchpoints", unknown_line),
            (
                "unknown revenue",
                format!(
                    "{} subscribers with null or NaN monthly_revenue",
                    inputs.subscribers.unknown_revenue()
                ),
            ),
        ],
        start,
    );
    Ok(())
}
