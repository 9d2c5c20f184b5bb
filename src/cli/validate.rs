//! `churnseg validate`: check the inputs against SPEC §2 and report every problem, the
//! values out of their domain, and the health guards at one `as_of`.
//!
//! The guards need an `as_of`: `--as-of`, or else the day after the newest plausible
//! `signup_date` or `churn_date` of the subscriber table — the extract's own date, which
//! does not depend on the events' timestamps being right (so a timestamp unit mistake
//! shows as events in the future). Validation builds the features at that date (the fused
//! pass, as `score` would), so it reads every event once.

use std::time::Instant;

use anyhow::bail;
use clap::Args;

use super::args::{GuardArgs, InputArgs, parse_as_of};
use crate::asof::AsOf;
use crate::console::Console;
use crate::features::FeatureParams;
use crate::load::Inputs;
use crate::load::subscribers::PLAUSIBLE_DAYS;
use crate::pipeline::{self, CommandName};

#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub inputs: InputArgs,
    /// Date at which to judge the health guards (default: the day after the newest
    /// signup_date or churn_date in the subscriber table).
    #[arg(long, value_parser = parse_as_of)]
    pub as_of: Option<AsOf>,
    #[command(flatten)]
    pub guards: GuardArgs,
}

/// The day after the newest plausible subscriber date, else today (UTC).
fn default_as_of(inputs: &Inputs) -> AsOf {
    let s = &inputs.subscribers;
    let newest = s
        .signup
        .iter()
        .chain(s.churn.iter().flatten())
        .filter(|d| PLAUSIBLE_DAYS.contains(d))
        .max();
    match newest {
        Some(&d) => AsOf::from_days(d + 1),
        None => {
            let secs = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            AsOf::from_days((secs / 86_400) as i32)
        }
    }
}

pub fn run(args: ValidateArgs, console: Console) -> anyhow::Result<()> {
    let start = Instant::now();
    let spec = args.inputs.spec();
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
    let (as_of, as_of_why) = match args.as_of {
        Some(a) => (a, "--as-of"),
        None => (
            default_as_of(&inputs),
            "the day after the newest subscriber date",
        ),
    };
    let params = FeatureParams {
        as_of,
        extended: true,
        touchpoint_use: false,
    };
    let table = crate::features::build_logged(&inputs, params, &console)?;
    let guards = crate::guard::check(&inputs, &table, &args.guards.settings(), None);
    let events = inputs
        .interactions
        .as_ref()
        .map_or("none".to_string(), |i| {
            format!("{} rows in {} file(s)", i.rows, i.source.file_count())
        });
    let skipped: Vec<String> = inputs
        .subscribers
        .skipped_columns
        .iter()
        .map(|(c, why)| format!("`{c}`: {why}"))
        .collect();
    let domain: Vec<String> = inputs
        .subscribers
        .out_of_domain
        .lines()
        .into_iter()
        .map(|(what, n, how)| format!("{n} {what} ({how})"))
        .chain(
            table
                .events
                .out_of_domain
                .lines()
                .into_iter()
                .map(|(what, n, how)| format!("{n} events with {what} ({how})")),
        )
        .collect();
    let mut lines = vec![
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
                "{} subscribers with null or non-finite monthly_revenue",
                inputs.subscribers.unknown_revenue()
            ),
        ),
        (
            "out of domain",
            if domain.is_empty() {
                "nothing".into()
            } else {
                domain.join("; ")
            },
        ),
        ("as of", format!("{as_of} ({as_of_why})")),
        ("guards", guards.summary_line()),
    ];
    lines.extend(
        guards
            .checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| (c.check, c.message.clone())),
    );
    pipeline::summary(&console, CommandName::Validate, &lines, start);
    guards.enforce()?;
    Ok(())
}
