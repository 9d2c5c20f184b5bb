//! Health guards (SPEC §7): after the features are built and before anything is written,
//! check that the inputs are plausible, and stop with exit status 3 when they are not.
//!
//! A nightly job that goes silently wrong is worse than one that stops: an upstream id
//! change, a timestamp unit mistake or an empty extract all used to exit 0 and replace
//! last night's good file. Each check measures one figure of the snapshot just built
//! (from the feature table and the event counts of the fused pass, so it costs nothing
//! extra) and holds it to a documented threshold:
//!
//! | check | figure | default |
//! |---|---|---|
//! | `active_subscribers` | subscribers active at `as_of` | at least 1 |
//! | `matched_events` | share of the events read whose `subscriber_id` is in the subscriber file | at least 0.5 |
//! | `subscribers_with_events` | share of active subscribers with an event in the 90 days before `as_of` | at least 0.1 |
//! | `future_events` | share of active subscribers' dated events at or after `as_of` | at most 0.95 |
//! | `stale_events` | share of active subscribers' dated events before `as_of − 90 d` | at most 0.99 |
//! | `active_vs_previous` | active subscribers against the previous run's | at least 0.5 × |
//! | `events_vs_previous` | events read against the previous run's | at least 0.5 × |
//! | `matched_events_vs_previous` | `matched_events` against the previous run's | at most 0.2 lower |
//! | `subscribers_with_events_vs_previous` | `subscribers_with_events` against the previous run's | at most 0.2 lower |
//!
//! The event checks do not apply without interactions, or with an empty interactions
//! file (SPEC §2 allows both; `events_vs_previous` catches an extract that came empty);
//! the time checks do not apply when no active subscriber has a dated event; the
//! `_vs_previous` checks apply only when a previous run is known (`score --previous`, or
//! the scored table and manifest `run` finds in its output directory).
//!
//! A check that is allowed (`--allow NAME`, `guards.allow = ["NAME"]`, or `all`) is still
//! measured and recorded, and its failure is printed as a warning instead of stopping the
//! run. Every check's figure, threshold and outcome goes into the manifest's `guards`
//! section, passed or not, and `figures` there is what the next run compares against.

use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Int64Type};
use serde::{Deserialize, Serialize};

use crate::asof::AsOf;
use crate::features::FeatureTable;
use crate::features::accumulate::EventCounts;
use crate::load::Inputs;

/// The exit status of a command that a guard stopped (2 is bad input or failure).
pub const EXIT_CODE: u8 = 3;

/// One health check, by the name `--allow` and `guards.allow` take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Check {
    ActiveSubscribers,
    MatchedEvents,
    SubscribersWithEvents,
    FutureEvents,
    StaleEvents,
    ActiveVsPrevious,
    EventsVsPrevious,
    MatchedEventsVsPrevious,
    SubscribersWithEventsVsPrevious,
}

impl Check {
    pub const ALL: [Check; 9] = [
        Check::ActiveSubscribers,
        Check::MatchedEvents,
        Check::SubscribersWithEvents,
        Check::FutureEvents,
        Check::StaleEvents,
        Check::ActiveVsPrevious,
        Check::EventsVsPrevious,
        Check::MatchedEventsVsPrevious,
        Check::SubscribersWithEventsVsPrevious,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Check::ActiveSubscribers => "active_subscribers",
            Check::MatchedEvents => "matched_events",
            Check::SubscribersWithEvents => "subscribers_with_events",
            Check::FutureEvents => "future_events",
            Check::StaleEvents => "stale_events",
            Check::ActiveVsPrevious => "active_vs_previous",
            Check::EventsVsPrevious => "events_vs_previous",
            Check::MatchedEventsVsPrevious => "matched_events_vs_previous",
            Check::SubscribersWithEventsVsPrevious => "subscribers_with_events_vs_previous",
        }
    }
}

/// The word that allows every check.
pub const ALLOW_ALL: &str = "all";

/// Checks a name given to `--allow` or `guards.allow`.
pub fn parse_allow(name: &str) -> Result<String, String> {
    let name = name.trim();
    if name == ALLOW_ALL || Check::ALL.iter().any(|c| c.name() == name) {
        Ok(name.to_string())
    } else {
        Err(format!(
            "`{name}` is not a health guard; expected `{ALLOW_ALL}` or one of {}",
            Check::ALL
                .iter()
                .map(|c| format!("`{}`", c.name()))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
}

/// The thresholds and overrides (the `[guards]` table of a pipeline config, or the
/// flags of `validate`, `features`, `train` and `score`). Every field has a default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardSettings {
    /// Checks to measure and record but not stop on (names from [`Check`], or `all`).
    /// Default: none.
    #[serde(default)]
    pub allow: Vec<String>,
    /// `matched_events`: least share of events whose `subscriber_id` is in the
    /// subscriber file. Default 0.5.
    #[serde(default = "default_min_matched")]
    pub min_matched_event_share: f64,
    /// `subscribers_with_events`: least share of active subscribers with an event in the
    /// 90 days before `as_of`. Default 0.1.
    #[serde(default = "default_min_with_events")]
    pub min_subscribers_with_events_share: f64,
    /// `future_events`: largest share of dated events at or after `as_of`. Default 0.95.
    #[serde(default = "default_max_future")]
    pub max_future_event_share: f64,
    /// `stale_events`: largest share of dated events before `as_of − 90 d`. Default 0.99.
    #[serde(default = "default_max_stale")]
    pub max_stale_event_share: f64,
    /// `*_vs_previous` on shares: the most a share may fall below the previous run's,
    /// in absolute terms (0.2 = twenty points). Default 0.2.
    #[serde(default = "default_max_share_drop")]
    pub max_share_drop: f64,
    /// `active_vs_previous`, `events_vs_previous`: the least ratio of a count to the
    /// previous run's. Default 0.5.
    #[serde(default = "default_min_count_ratio")]
    pub min_count_ratio: f64,
}

/// The default thresholds (documented in the README).
pub mod defaults {
    pub const MIN_MATCHED_EVENT_SHARE: f64 = 0.5;
    pub const MIN_SUBSCRIBERS_WITH_EVENTS_SHARE: f64 = 0.1;
    pub const MAX_FUTURE_EVENT_SHARE: f64 = 0.95;
    pub const MAX_STALE_EVENT_SHARE: f64 = 0.99;
    pub const MAX_SHARE_DROP: f64 = 0.2;
    pub const MIN_COUNT_RATIO: f64 = 0.5;
}

fn default_min_matched() -> f64 {
    defaults::MIN_MATCHED_EVENT_SHARE
}
fn default_min_with_events() -> f64 {
    defaults::MIN_SUBSCRIBERS_WITH_EVENTS_SHARE
}
fn default_max_future() -> f64 {
    defaults::MAX_FUTURE_EVENT_SHARE
}
fn default_max_stale() -> f64 {
    defaults::MAX_STALE_EVENT_SHARE
}
fn default_max_share_drop() -> f64 {
    defaults::MAX_SHARE_DROP
}
fn default_min_count_ratio() -> f64 {
    defaults::MIN_COUNT_RATIO
}

impl Default for GuardSettings {
    fn default() -> Self {
        GuardSettings {
            allow: Vec::new(),
            min_matched_event_share: default_min_matched(),
            min_subscribers_with_events_share: default_min_with_events(),
            max_future_event_share: default_max_future(),
            max_stale_event_share: default_max_stale(),
            max_share_drop: default_max_share_drop(),
            min_count_ratio: default_min_count_ratio(),
        }
    }
}

impl GuardSettings {
    /// Every problem with the values, each naming its field under `prefix` (e.g. `guards.`).
    pub fn problems(&self, prefix: &str) -> Vec<String> {
        let mut problems: Vec<String> = self
            .allow
            .iter()
            .filter_map(|name| parse_allow(name).err())
            .map(|e| format!("`{prefix}allow`: {e}"))
            .collect();
        for (name, value) in [
            ("min_matched_event_share", self.min_matched_event_share),
            (
                "min_subscribers_with_events_share",
                self.min_subscribers_with_events_share,
            ),
            ("max_future_event_share", self.max_future_event_share),
            ("max_stale_event_share", self.max_stale_event_share),
            ("max_share_drop", self.max_share_drop),
            ("min_count_ratio", self.min_count_ratio),
        ] {
            if !(0.0..=1.0).contains(&value) {
                problems.push(format!(
                    "`{prefix}{name}` must be between 0 and 1, found {value}"
                ));
            }
        }
        problems
    }

    /// Whether `check` is allowed to fail.
    pub fn allows(&self, check: Check) -> bool {
        self.allow
            .iter()
            .any(|a| a == ALLOW_ALL || a == check.name())
    }
}

/// The figures the checks judge, as measured on one snapshot (and recorded in the
/// manifest for the next run to compare with). Shares are `None` where they do not apply.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    pub active_subscribers: u64,
    /// Events read (`None` without interactions).
    pub events_read: Option<u64>,
    pub matched_event_share: Option<f64>,
    pub subscribers_with_events_share: Option<f64>,
    pub future_event_share: Option<f64>,
    pub stale_event_share: Option<f64>,
}

/// The counts behind the figures, for the messages.
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    read: u64,
    matched: u64,
    with_events: u64,
    dated: u64,
    future: u64,
    stale: u64,
}

fn share(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// What the guards measure of one snapshot: the counts behind every figure, and the
/// names the messages give. Measured per feature table ([`Snapshot::measure`]); a
/// sharded run adds its shards' snapshots together ([`Snapshot::absorb`]) and judges
/// the sum, which is the whole table's. It travels as JSON between the processes of an
/// engine that builds shards elsewhere (`churnseg.spark`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    pub as_of: AsOf,
    /// The subscriber input, its rows, and the interactions (`None` without them).
    pub subscribers: String,
    pub subscriber_rows: u64,
    pub interactions: Option<String>,
    pub events: EventCounts,
    pub active: u64,
    /// Sum of `events_90d`, and active subscribers with an event in 90 days.
    pub recent: u64,
    pub with_events: u64,
}

impl Snapshot {
    /// Measures the feature table `table` built from `inputs`.
    pub fn measure(inputs: &Inputs, table: &FeatureTable) -> Snapshot {
        let events_90d = table
            .batch
            .column_by_name("events_90d")
            .filter(|c| *c.data_type() == DataType::Int64)
            .map(|c| c.as_primitive::<Int64Type>().clone());
        let (recent, with_events) = events_90d.map_or((0, 0), |c| {
            let values = c.values();
            (
                values.iter().map(|&v| v.max(0) as u64).sum::<u64>(),
                values.iter().filter(|&&v| v > 0).count() as u64,
            )
        });
        Snapshot {
            as_of: table.as_of,
            subscribers: inputs.subscribers.source.clone(),
            subscriber_rows: inputs.subscribers.len() as u64,
            interactions: inputs
                .interactions
                .as_ref()
                .map(|i| i.source.shown().to_string()),
            events: table.events.clone(),
            active: table.batch.num_rows() as u64,
            recent,
            with_events,
        }
    }

    /// Adds another shard's snapshot of the same inputs.
    pub fn absorb(&mut self, other: Snapshot) {
        self.subscriber_rows += other.subscriber_rows;
        self.events.absorb(other.events);
        self.active += other.active;
        self.recent += other.recent;
        self.with_events += other.with_events;
    }
}

impl Figures {
    fn measure(snapshot: &Snapshot) -> (Figures, Counts) {
        let e = &snapshot.events;
        let active = snapshot.active;
        let (recent, with_events) = (snapshot.recent, snapshot.with_events);
        let counts = Counts {
            read: e.read,
            matched: e
                .read
                .saturating_sub(e.unknown_subscriber + e.null_subscriber_id),
            with_events,
            dated: e.used + e.at_or_after_as_of,
            future: e.at_or_after_as_of,
            stale: e.used.saturating_sub(recent),
        };
        let has_events = snapshot.interactions.is_some() && e.read > 0;
        let figures = Figures {
            active_subscribers: active,
            events_read: snapshot.interactions.as_ref().map(|_| e.read),
            matched_event_share: share(counts.matched, counts.read).filter(|_| has_events),
            subscribers_with_events_share: share(with_events, active).filter(|_| has_events),
            future_event_share: share(counts.future, counts.dated),
            stale_event_share: share(counts.stale, counts.dated),
        };
        (figures, counts)
    }
}

/// What is known of the previous run: its scored table's row count and, when its
/// manifest is found, the figures it recorded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PreviousRun {
    /// The scored table, as given.
    pub scored: String,
    /// The manifest the figures were read from, when one was found.
    pub manifest: Option<String>,
    pub active_subscribers: u64,
    pub events_read: Option<u64>,
    pub matched_event_share: Option<f64>,
    pub subscribers_with_events_share: Option<f64>,
}

/// A column a scored table must have: its name, a test of its type, the type expected.
type ScoredColumn = (&'static str, fn(&DataType) -> bool, &'static str);

/// The columns a scored table must have to serve as the previous run.
const SCORED_COLUMNS: [ScoredColumn; 4] = [
    (
        "subscriber_id",
        |dt| dt.is_integer() || is_text(dt),
        "Int64 or Utf8",
    ),
    ("value_segment", is_text, "Utf8"),
    ("risk_decile", DataType::is_integer, "Int32"),
    ("churn_probability", DataType::is_floating, "Float64"),
];

fn is_text(dt: &DataType) -> bool {
    match dt {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, v) => is_text(v),
        _ => false,
    }
}

/// Why a file cannot serve as the previous run.
#[derive(Debug, thiserror::Error)]
#[error(
    "{path} is not a scored table written by `churnseg score` or `run`: {}",
    problems.join("; ")
)]
pub struct NotScored {
    pub path: String,
    pub problems: Vec<String>,
}

impl PreviousRun {
    /// Checks that `scored` (read from `path`) is a scored table, and reads the figures
    /// of its run from `manifest`, or else from the manifest beside it (`NAME.manifest.json`,
    /// or the `manifest.json` of the `run` that wrote it).
    pub fn from_scored(
        path: &Path,
        scored: &RecordBatch,
        manifest: Option<&Path>,
    ) -> Result<PreviousRun, NotScored> {
        let schema = scored.schema();
        let problems: Vec<String> = SCORED_COLUMNS
            .iter()
            .filter_map(|(name, ok, expected)| match schema.field_with_name(name) {
                Err(_) => Some(format!("it has no column `{name}`")),
                Ok(f) if !ok(f.data_type()) => Some(format!(
                    "column `{name}` is {}, not {expected}",
                    f.data_type()
                )),
                Ok(_) => None,
            })
            .collect();
        if !problems.is_empty() {
            return Err(NotScored {
                path: path.display().to_string(),
                problems,
            });
        }
        let mut previous = PreviousRun {
            scored: path.display().to_string(),
            manifest: None,
            active_subscribers: scored.num_rows() as u64,
            events_read: None,
            matched_event_share: None,
            subscribers_with_events_share: None,
        };
        let found = match manifest {
            Some(m) => read_json(m).map(|v| (m.to_path_buf(), v)),
            None => beside(path),
        };
        if let Some((manifest, json)) = found {
            let figures = json.pointer("/guards/figures");
            let number = |key: &str| figures.and_then(|f| f.get(key));
            previous.events_read = number("events_read")
                .or_else(|| json.pointer("/events/read"))
                .and_then(serde_json::Value::as_u64);
            previous.matched_event_share =
                number("matched_event_share").and_then(serde_json::Value::as_f64);
            previous.subscribers_with_events_share =
                number("subscribers_with_events_share").and_then(serde_json::Value::as_f64);
            previous.manifest = Some(manifest.display().to_string());
        }
        Ok(previous)
    }
}

fn read_json(path: &Path) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

/// The manifest of the command that wrote `scored`: `NAME.manifest.json` beside it
/// (`score`), or the `manifest.json` in its directory when that lists it (`run`).
fn beside(scored: &Path) -> Option<(PathBuf, serde_json::Value)> {
    let stem = scored.file_stem()?.to_string_lossy().into_owned();
    let own = scored.with_file_name(format!("{stem}.manifest.json"));
    if let Some(json) = read_json(&own) {
        return Some((own, json));
    }
    let run = scored.with_file_name("manifest.json");
    let json = read_json(&run)?;
    let name = scored.file_name()?.to_string_lossy().into_owned();
    let lists_it = json
        .get("outputs")?
        .as_array()?
        .iter()
        .filter_map(serde_json::Value::as_str)
        .any(|o| {
            Path::new(o)
                .file_name()
                .is_some_and(|f| f.to_string_lossy() == name)
        });
    lists_it.then_some((run, json))
}

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Passed,
    /// Failed, and stops the run.
    Failed,
    /// Failed, but allowed: the run goes on with a warning.
    Allowed,
    /// Nothing to judge (no interactions, no previous run, …).
    NotApplicable,
}

/// One check's outcome, as recorded in the manifest.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub check: &'static str,
    pub status: Status,
    /// Whether the figure is within its threshold (true when not applicable).
    pub passed: bool,
    pub figure: Option<f64>,
    /// `at_least` or `at_most`.
    pub rule: &'static str,
    /// The bound the figure is held to (for `_vs_previous`, computed from the previous figure).
    pub threshold: Option<f64>,
    /// The previous run's figure, for `_vs_previous`.
    pub previous: Option<f64>,
    pub message: String,
}

/// Every check of one snapshot.
#[derive(Debug, Clone, Serialize)]
pub struct GuardReport {
    pub as_of: AsOf,
    /// False when a check that is not allowed failed.
    pub passed: bool,
    pub figures: Figures,
    pub previous: Option<PreviousRun>,
    pub checks: Vec<CheckResult>,
}

/// The error of a run that a guard stopped; the command exits with [`EXIT_CODE`].
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.failure_text())]
pub struct GuardFailure(pub Box<GuardReport>);

fn pct(share: f64) -> String {
    let p = 100.0 * share;
    if p > 0.0 && p < 0.1 {
        format!("{p:.3}%")
    } else {
        format!("{p:.1}%")
    }
}

/// Measures the snapshot `table` (built from `inputs`) and judges every check.
pub fn check(
    inputs: &Inputs,
    table: &FeatureTable,
    settings: &GuardSettings,
    previous: Option<&PreviousRun>,
) -> GuardReport {
    judge(&Snapshot::measure(inputs, table), settings, previous)
}

/// Judges every check on a measured snapshot (of one table, or the sum of its shards).
pub fn judge(
    snapshot: &Snapshot,
    settings: &GuardSettings,
    previous: Option<&PreviousRun>,
) -> GuardReport {
    let (figures, c) = Figures::measure(snapshot);
    let as_of = snapshot.as_of;
    let subscribers = snapshot.subscribers.as_str();
    let events = snapshot
        .interactions
        .as_deref()
        .unwrap_or("the interactions");
    let prev_name = previous.map_or(String::new(), |p| {
        format!(
            "the previous run ({})",
            p.manifest.as_deref().unwrap_or(&p.scored)
        )
    });
    let mut checks = Vec::new();
    // `hint` is added to the message of a check that fails: what may have gone wrong.
    let mut add = |check: Check,
                   figure: Option<f64>,
                   bound: Option<f64>,
                   at_least: bool,
                   previous: Option<f64>,
                   message: String,
                   hint: &str| {
        let passed = match (figure, bound) {
            (Some(f), Some(b)) => {
                if at_least {
                    f >= b
                } else {
                    f <= b
                }
            }
            _ => true,
        };
        let status = match (figure.zip(bound), passed) {
            (None, _) => Status::NotApplicable,
            (Some(_), true) => Status::Passed,
            (Some(_), false) if settings.allows(check) => Status::Allowed,
            (Some(_), false) => Status::Failed,
        };
        checks.push(CheckResult {
            check: check.name(),
            status,
            passed,
            figure,
            rule: if at_least { "at_least" } else { "at_most" },
            threshold: bound,
            previous,
            message: if passed { message } else { message + hint },
        });
    };

    let rows = snapshot.subscriber_rows;
    add(
        Check::ActiveSubscribers,
        Some(figures.active_subscribers as f64),
        Some(1.0),
        true,
        None,
        if figures.active_subscribers == 0 {
            format!(
                "no subscriber of the {rows} in {subscribers} is active at {as_of} (signup_date before it and churn_date null or on or after it): the output would be empty"
            )
        } else {
            format!(
                "{} of the {rows} subscribers in {subscribers} are active at {as_of}",
                figures.active_subscribers
            )
        },
        "",
    );
    let floor = settings.min_matched_event_share;
    add(
        Check::MatchedEvents,
        figures.matched_event_share,
        Some(floor),
        true,
        None,
        match figures.matched_event_share {
            None => format!("no events to match in {events}"),
            Some(s) => format!(
                "{} of the {} events in {events} ({}) have a subscriber_id found in {subscribers}; at least {} must (`min_matched_event_share`)",
                c.matched,
                c.read,
                pct(s),
                pct(floor),
            ),
        },
        ": did the ids change format, or is this another system's extract?",
    );
    let floor = settings.min_subscribers_with_events_share;
    add(
        Check::SubscribersWithEvents,
        figures.subscribers_with_events_share,
        Some(floor),
        true,
        None,
        match figures.subscribers_with_events_share {
            None => format!("no events in {events} to judge, or no active subscriber"),
            Some(s) => format!(
                "{} of the {} subscribers active at {as_of} ({}) have an event in {events} in the 90 days before it; at least {} must (`min_subscribers_with_events_share`)",
                c.with_events,
                figures.active_subscribers,
                pct(s),
                pct(floor)
            ),
        },
        ": do the events come from the same system and period as the subscribers?",
    );
    let newest = snapshot
        .events
        .newest_ts
        .map(|t| AsOf::from_days(t.div_euclid(crate::asof::MICROS_PER_DAY) as i32));
    let ceiling = settings.max_future_event_share;
    add(
        Check::FutureEvents,
        figures.future_event_share,
        Some(ceiling),
        false,
        None,
        match figures.future_event_share {
            None => format!("no dated events of active subscribers in {events}"),
            Some(s) => format!(
                "{} of the {} dated events of active subscribers in {events} ({}) are at or after {as_of}{}; at most {} may be (`max_future_event_share`)",
                c.future,
                c.dated,
                pct(s),
                newest.map_or(String::new(), |n| format!(", the newest on {n}")),
                pct(ceiling),
            ),
        },
        ": is `ts` in the unit its type declares (values 1000 times too large fall in the far future), or is --as-of too early?",
    );
    let ceiling = settings.max_stale_event_share;
    add(
        Check::StaleEvents,
        figures.stale_event_share,
        Some(ceiling),
        false,
        None,
        match figures.stale_event_share {
            None => format!("no dated events of active subscribers in {events}"),
            Some(s) => format!(
                "{} of the {} dated events of active subscribers in {events} ({}) are before {}, 90 days before {as_of}; at most {} may be (`max_stale_event_share`)",
                c.stale,
                c.dated,
                pct(s),
                as_of.plus_days(-90),
                pct(ceiling),
            ),
        },
        ": is the extract stale, is `ts` 1000 times too small for its unit, or is --as-of too late?",
    );
    let ratio = settings.min_count_ratio;
    let counts = [
        (
            Check::ActiveVsPrevious,
            Some(figures.active_subscribers),
            previous.map(|p| p.active_subscribers),
            format!("subscribers active at {as_of}"),
        ),
        (
            Check::EventsVsPrevious,
            figures.events_read,
            previous.and_then(|p| p.events_read),
            format!("events read from {events}"),
        ),
    ];
    for (check, now, before, what) in counts {
        let applies = now.zip(before);
        add(
            check,
            applies.map(|(n, _)| n as f64),
            applies.map(|(_, b)| ratio * b as f64),
            true,
            applies.map(|(_, b)| b as f64),
            match applies {
                None => format!("no previous figure to compare the {what} with"),
                Some((n, b)) => format!(
                    "{n} {what}, against {b} in {prev_name}; at least {:.0}% of it must be (`min_count_ratio`)",
                    100.0 * ratio
                ),
            },
            ": is the extract complete?",
        );
    }
    let drop = settings.max_share_drop;
    let shares = [
        (
            Check::MatchedEventsVsPrevious,
            figures.matched_event_share,
            previous.and_then(|p| p.matched_event_share),
            "share of events matching a subscriber",
        ),
        (
            Check::SubscribersWithEventsVsPrevious,
            figures.subscribers_with_events_share,
            previous.and_then(|p| p.subscribers_with_events_share),
            "share of active subscribers with an event in 90 days",
        ),
    ];
    for (check, now, before, what) in shares {
        let applies = now.zip(before);
        add(
            check,
            applies.map(|(n, _)| n),
            applies.map(|(_, b)| b - drop),
            true,
            before,
            match applies {
                None => format!("no previous figure to compare the {what} with"),
                Some((n, b)) => format!(
                    "{} is the {what}, against {} in {prev_name}; it may fall by at most {:.0} points (`max_share_drop`)",
                    pct(n),
                    pct(b),
                    100.0 * drop
                ),
            },
            ": did part of the ids change, or part of the extract go missing?",
        );
    }
    GuardReport {
        as_of,
        passed: checks.iter().all(|c| c.status != Status::Failed),
        figures,
        previous: previous.cloned(),
        checks,
    }
}

impl GuardReport {
    /// The report when every check that is not allowed passed, else the failure.
    pub fn enforce(self) -> Result<GuardReport, GuardFailure> {
        if self.passed {
            Ok(self)
        } else {
            Err(GuardFailure(Box::new(self)))
        }
    }

    /// The checks with a status, in order.
    fn with_status(&self, status: Status) -> impl Iterator<Item = &CheckResult> {
        self.checks.iter().filter(move |c| c.status == status)
    }

    /// One warning line per allowed failure.
    pub fn warnings(&self) -> Vec<String> {
        self.with_status(Status::Allowed)
            .map(|c| {
                format!(
                    "warning: health guard `{}` failed but is allowed: {}",
                    c.check, c.message
                )
            })
            .collect()
    }

    /// The guards on one summary line.
    pub fn summary_line(&self) -> String {
        let count = |s| self.with_status(s).count();
        let (passed, allowed, failed) = (
            count(Status::Passed),
            count(Status::Allowed),
            count(Status::Failed),
        );
        let names = |s| {
            self.with_status(s)
                .map(|c| c.check)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut line = format!("{passed} passed");
        if allowed > 0 {
            line += &format!(
                ", {allowed} failed but allowed ({})",
                names(Status::Allowed)
            );
        }
        if failed > 0 {
            line += &format!(", {failed} failed ({})", names(Status::Failed));
        }
        let na = count(Status::NotApplicable);
        if na > 0 {
            line += &format!(", {na} not applicable");
        }
        line
    }

    fn failure_text(&self) -> String {
        let failed: Vec<&CheckResult> = self.with_status(Status::Failed).collect();
        let lines: Vec<String> = failed
            .iter()
            .map(|c| format!("  - `{}`: {}", c.check, c.message))
            .collect();
        let names: Vec<&str> = failed.iter().map(|c| c.check).collect();
        format!(
            "{} health guard(s) failed at {}, so nothing was written:\n{}\n  to go on anyway: --allow {} (or `allow = [{}]` under [guards] in a pipeline config)",
            failed.len(),
            self.as_of,
            lines.join("\n"),
            names.join(","),
            names
                .iter()
                .map(|n| format!("\"{n}\""))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_unknown_ones_are_refused() {
        for c in Check::ALL {
            assert_eq!(parse_allow(c.name()).unwrap(), c.name());
        }
        assert_eq!(parse_allow("all").unwrap(), "all");
        let err = parse_allow("matched").unwrap_err();
        assert!(err.contains("`matched_events`"), "{err}");
        let settings = GuardSettings {
            allow: vec!["future_events".into()],
            ..GuardSettings::default()
        };
        assert!(settings.allows(Check::FutureEvents));
        assert!(!settings.allows(Check::StaleEvents));
    }

    #[test]
    fn settings_out_of_range_are_named() {
        let settings = GuardSettings {
            allow: vec!["nope".into()],
            max_share_drop: 1.5,
            min_count_ratio: f64::NAN,
            ..GuardSettings::default()
        };
        let problems = settings.problems("guards.");
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].contains("`guards.allow`"), "{problems:?}");
        assert!(
            problems[1].contains("`guards.max_share_drop`"),
            "{problems:?}"
        );
        assert!(GuardSettings::default().problems("").is_empty());
    }
}
