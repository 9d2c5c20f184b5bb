//! The flags several commands share: the inputs, the health guards, the `--as-of` date.

use std::path::PathBuf;

use clap::Args;

use crate::asof::AsOf;
use crate::guard::{GuardSettings, defaults};
use crate::load::InputSpec;
use crate::pipeline::sharded::{MemoryEstimate, ShardError, ShardPlan, TableKind, TableOut};

/// The inputs every data command reads.
#[derive(Debug, Clone, Args)]
pub struct InputArgs {
    /// Subscriber table: a Parquet file, a directory of them, or a glob.
    #[arg(long)]
    pub subscribers: PathBuf,
    /// Touchpoint events (optional: without them only subscriber columns are used).
    #[arg(long)]
    pub interactions: Option<PathBuf>,
    /// Touchpoint taxonomy TOML (default: the shipped pipelines/taxonomy.toml).
    #[arg(long)]
    pub taxonomy: Option<PathBuf>,
    /// Fail when interactions hold touchpoints missing from the taxonomy.
    #[arg(long)]
    pub strict: bool,
    /// Subscriber columns not to use as features (comma-separated or repeated).
    #[arg(long, value_delimiter = ',', value_name = "COLUMN")]
    pub exclude_columns: Vec<String>,
}

impl InputArgs {
    /// The input paths of a command line, with the default column names.
    pub fn spec(&self) -> InputSpec {
        InputSpec {
            subscribers: self.subscribers.clone(),
            interactions: self.interactions.clone(),
            taxonomy: self.taxonomy.clone(),
            subscriber_columns: crate::load::SubscriberColumns {
                exclude: self.exclude_columns.clone(),
                ..Default::default()
            },
            ..InputSpec::default()
        }
    }
}

/// Custom features of a data command (see the README, "Custom features").
#[derive(Debug, Clone, Args)]
pub struct CustomArgs {
    /// Custom features: a TOML file of `[[features.custom]]` tables (window, SQL filter,
    /// SQL aggregate, default), computed with polars after the core features.
    #[arg(long, value_name = "FILE.toml")]
    pub custom: Option<PathBuf>,
}

impl CustomArgs {
    /// The definitions of `--custom` (none without it).
    pub fn features(
        &self,
    ) -> Result<crate::custom_features::CustomFeatures, crate::custom_features::CustomError> {
        match &self.custom {
            Some(path) => crate::custom_features::CustomFeatures::load(path),
            None => Ok(Default::default()),
        }
    }
}

/// The health guards of a data command (see the README, "Health guards"): which may fail
/// without stopping the run, and their thresholds.
#[derive(Debug, Clone, Args)]
pub struct GuardArgs {
    /// Report these guards but do not stop on them (comma-separated or repeated; `all`
    /// for every guard).
    #[arg(long, value_delimiter = ',', value_name = "GUARD", value_parser = crate::guard::parse_allow, help_heading = GUARDS)]
    pub allow: Vec<String>,
    /// Least share of events whose subscriber_id is in the subscriber file.
    #[arg(long, default_value_t = defaults::MIN_MATCHED_EVENT_SHARE, value_parser = parse_share, help_heading = GUARDS)]
    pub min_matched_event_share: f64,
    /// Least share of active subscribers with an event in the 90 days before as_of.
    #[arg(long, default_value_t = defaults::MIN_SUBSCRIBERS_WITH_EVENTS_SHARE, value_parser = parse_share, help_heading = GUARDS)]
    pub min_subscribers_with_events_share: f64,
    /// Largest share of dated events at or after as_of.
    #[arg(long, default_value_t = defaults::MAX_FUTURE_EVENT_SHARE, value_parser = parse_share, help_heading = GUARDS)]
    pub max_future_event_share: f64,
    /// Largest share of dated events before as_of - 90 days.
    #[arg(long, default_value_t = defaults::MAX_STALE_EVENT_SHARE, value_parser = parse_share, help_heading = GUARDS)]
    pub max_stale_event_share: f64,
    /// Most a share may fall below the previous run's (0.2 = twenty points).
    #[arg(long, default_value_t = defaults::MAX_SHARE_DROP, value_parser = parse_share, help_heading = GUARDS)]
    pub max_share_drop: f64,
    /// Least ratio of active subscribers and events read to the previous run's.
    #[arg(long, default_value_t = defaults::MIN_COUNT_RATIO, value_parser = parse_share, help_heading = GUARDS)]
    pub min_count_ratio: f64,
}

impl GuardArgs {
    pub fn settings(&self) -> GuardSettings {
        GuardSettings {
            allow: self.allow.clone(),
            min_matched_event_share: self.min_matched_event_share,
            min_subscribers_with_events_share: self.min_subscribers_with_events_share,
            max_future_event_share: self.max_future_event_share,
            max_stale_event_share: self.max_stale_event_share,
            max_share_drop: self.max_share_drop,
            min_count_ratio: self.min_count_ratio,
        }
    }
}

/// The help heading of the guard flags.
const GUARDS: &str = "Health guards";

/// Parses a share between 0 and 1.
fn parse_share(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("`{text}` is not a number between 0 and 1")),
    }
}

/// Parses an `--as-of` date.
pub fn parse_as_of(text: &str) -> Result<AsOf, String> {
    text.parse()
}

/// How many shards a command runs in: given, or picked from a memory budget.
#[derive(Debug, Clone, Args)]
pub struct ShardCountArgs {
    /// Run shard by shard: subscribers split by pmod(xxhash64(subscriber_id), K), as Spark
    /// computes it; the output does not depend on K.
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u32).range(1..=4096), help_heading = SHARDING)]
    pub shards: Option<u32>,
    /// Pick the number of shards from the input sizes so that peak memory stays under
    /// SIZE (e.g. 2GiB, 512MiB).
    #[arg(long, value_name = "SIZE", value_parser = crate::pipeline::sharded::parse_size, conflicts_with = "shards", help_heading = SHARDING)]
    pub max_memory: Option<u64>,
}

impl ShardCountArgs {
    /// The shard count asked for, or picked for the budget by `estimate`; `None` when
    /// neither flag is given.
    pub fn count(
        &self,
        estimate: impl FnOnce() -> Result<MemoryEstimate, ShardError>,
    ) -> Result<Option<u32>, ShardError> {
        match (self.shards, self.max_memory) {
            (Some(k), _) => Ok(Some(k)),
            (None, Some(budget)) => Ok(Some(estimate()?.shards_for(budget)?)),
            (None, None) => Ok(None),
        }
    }
}

/// How a data command splits its subscribers (see the README, "Sharding").
#[derive(Debug, Clone, Args)]
pub struct ShardArgs {
    #[command(flatten)]
    pub count: ShardCountArgs,
    /// Directory for the shards' partial results (default: beside the output); removed
    /// at the end, also after a failure.
    #[arg(long, value_name = "DIR", help_heading = SHARDING)]
    pub scratch: Option<PathBuf>,
}

impl ShardArgs {
    /// The shard plan of a command writing `out`: `None` (one piece, in memory) unless a
    /// flag asks for shards or `out` is a directory (part files).
    pub fn plan(
        &self,
        spec: &InputSpec,
        out: &std::path::Path,
        written: TableKind,
    ) -> Result<Option<ShardPlan>, ShardError> {
        let shards = self
            .count
            .count(|| MemoryEstimate::of_inputs(spec, written))?
            .or_else(|| matches!(TableOut::of(out), TableOut::Dir(_)).then_some(1));
        Ok(shards.map(|shards| ShardPlan {
            shards,
            scratch: self.scratch.clone(),
        }))
    }
}

/// The help heading of the shard flags.
const SHARDING: &str = "Sharding";
