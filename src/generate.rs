//! Synthetic subscribers and touchpoint history with the mechanics of SPEC §1, for demos,
//! tests and benchmarks (`churnseg generate`).
//!
//! Every subscriber gets latent traits — value (lognormal monthly revenue), proneness
//! to service problems, price sensitivity and product engagement — that drive both their
//! everyday touchpoints and their churn. Churn is three competing risks whose rates are
//! set so that about 70% of churners leave for service, 15% for price and 15% for product,
//! newcomers churn more, and contracts and automatic payment hold people. In the three
//! weeks to three months before a churn, its driver leaves a footprint (complaints left
//! unresolved, long calls and low ratings; tariff enquiries and price cancellations; usage
//! fading away), except for about one churner in seven who leaves silently. Non-churners show the same
//! kinds of events at lower rates, so the signal is probabilistic, not a giveaway.
//!
//! Cost to serve grows with service contact, so that ranked by 90-day profit the top 20%
//! make most of the profit and roughly the bottom 30% lose money: a whale curve.
//!
//! Generation is deterministic: subscribers are made in fixed blocks, each with its own
//! seeded RNG, generated in parallel and written in block order, so the same parameters
//! give byte-identical files on any number of threads. Blocks are written wave by wave,
//! so memory stays bounded however many events are asked for.
//!
//! The events are written in one of two [`Layout`]s. By default they are in time order
//! across subscribers, as a log appended day by day is: consecutive events belong to
//! different subscribers. Each wave's events are spilled into week-long buckets
//! (uncompressed Parquet in a hidden folder of the output directory, removed at the end),
//! then each bucket is read back, sorted by (instant, subscriber, order of generation)
//! and written, so memory stays bounded by one week of events. With
//! [`Layout::BySubscriber`] each subscriber's events are written together, in block order
//! (the layout of earlier versions, byte for byte).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, AsArray, BooleanArray, Date32Array, Float64Array, Int64Array, RecordBatch,
    StringArray, TimestampMicrosecondArray, TimestampMillisecondArray, TimestampNanosecondArray,
    TimestampSecondArray, UInt32Array,
};
use arrow::compute::{concat_batches, take_record_batch};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef, TimeUnit, UInt32Type};
use chrono::NaiveDate;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp, Normal, Poisson};
use rayon::prelude::*;

use crate::asof::{AsOf, MICROS_PER_DAY};
use crate::segment::ChurnDriver;
use crate::taxonomy::Taxonomy;
use crate::write::{OutputSet, ParquetSink, WriteError};

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenerateParams {
    pub subscribers: usize,
    /// Days of history, ending the day before `end`.
    pub days: u32,
    pub seed: u64,
    /// First day after the history.
    pub end: NaiveDate,
    /// Subscriber ids as strings (`S0000001`) instead of integers.
    pub string_ids: bool,
    pub ts_unit: TimeUnit,
    pub ts_zone: Option<String>,
    /// The order of the events in `interactions.parquet`.
    pub layout: Layout,
}

/// The order of the events in the generated `interactions.parquet`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// In time order across subscribers (ties by subscriber), like a log appended day by
    /// day.
    #[default]
    TimeOrdered,
    /// Each subscriber's events together, subscribers in id order.
    BySubscriber,
}

/// The day after the generated history ends by default (history up to 2026-06-30).
pub const DEFAULT_END: NaiveDate = crate::asof::calendar_date!(2026, 7, 1);

impl GenerateParams {
    /// Defaults: history up to 2026-06-30, microsecond UTC timestamps, integer ids, events
    /// in time order.
    pub fn new(subscribers: usize, days: u32, seed: u64) -> GenerateParams {
        GenerateParams {
            subscribers,
            days,
            seed,
            end: DEFAULT_END,
            string_ids: false,
            ts_unit: TimeUnit::Microsecond,
            ts_zone: Some("UTC".into()),
            layout: Layout::default(),
        }
    }
}

/// What was generated.
#[derive(Debug, Clone)]
pub struct GenerateSummary {
    pub subscribers: usize,
    pub events: u64,
    pub churners: usize,
    pub files: Vec<PathBuf>,
}

/// Why generation failed.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error("failed to build generated data: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("`--days` must be at least 1")]
    NoDays,
    #[error("failed to sort the generated events through `{path}`: {message}")]
    Spill { path: String, message: String },
}

/// Subscribers per block: the unit of seeding and parallel work.
const BLOCK: usize = 1024;
/// Blocks generated in parallel before they are written.
const WAVE: usize = 32;

struct Subscriber {
    signup: i32,
    churn: Option<i32>,
    driver: Option<ChurnDriver>,
    monthly_revenue: f64,
    monthly_cost: f64,
    plan: &'static str,
    region: &'static str,
    contract_months: i64,
    auto_pay: bool,
    age: i64,
}

#[derive(Default)]
struct Events {
    sub: Vec<u32>,
    ts: Vec<i64>,
    touchpoint: Vec<&'static str>,
    channel: Vec<Option<&'static str>>,
    duration: Vec<Option<f64>>,
    satisfaction: Vec<Option<f64>>,
    revenue: Vec<Option<f64>>,
    cost: Vec<Option<f64>>,
    resolved: Vec<Option<bool>>,
    reason: Vec<Option<&'static str>>,
}

/// One event before it is sorted into place.
struct Ev {
    ts: i64,
    touchpoint: &'static str,
    channel: Option<&'static str>,
    duration: Option<f64>,
    satisfaction: Option<f64>,
    revenue: Option<f64>,
    cost: Option<f64>,
    resolved: Option<bool>,
    reason: Option<&'static str>,
}

impl Ev {
    fn new(ts: i64, touchpoint: &'static str, channel: &'static str) -> Ev {
        Ev {
            ts,
            touchpoint,
            channel: Some(channel),
            duration: None,
            satisfaction: None,
            revenue: None,
            cost: None,
            resolved: None,
            reason: None,
        }
    }
}

fn pick<R: Rng>(rng: &mut R, items: &[&'static str]) -> &'static str {
    items[rng.random_range(0..items.len())]
}

fn poisson<R: Rng>(rng: &mut R, mean: f64) -> usize {
    if mean <= 0.0 {
        return 0;
    }
    Poisson::new(mean)
        .map(|p| p.sample(rng) as usize)
        .unwrap_or(0)
}

/// A uniformly random instant within days `[from, to)`.
fn instant<R: Rng>(rng: &mut R, from: i32, to: i32) -> i64 {
    let span = ((to - from).max(1) as i64) * MICROS_PER_DAY;
    from as i64 * MICROS_PER_DAY + rng.random_range(0..span) / 1_000_000 * 1_000_000
}

/// A 1–5 rating around `mean`, in half points.
fn rating<R: Rng>(rng: &mut R, mean: f64) -> f64 {
    let noise: f64 = Normal::new(0.0, 0.7).map(|n| n.sample(rng)).unwrap_or(0.0);
    ((mean + noise).clamp(1.0, 5.0) * 2.0).round() / 2.0
}

/// Generates one subscriber and their events into `out`.
fn subscriber<R: Rng>(
    rng: &mut R,
    index: u32,
    start: i32,
    end: i32,
    out: &mut Events,
) -> Subscriber {
    let z: f64 = Normal::new(0.0, 1.0).map(|n| n.sample(rng)).unwrap_or(0.0);
    let monthly_revenue = ((3.0 + 0.9 * z).exp() * 100.0).round() / 100.0;
    let service_prone: f64 = rng.random::<f64>().powi(2);
    let price_sensitive: f64 = rng.random();
    let engagement: f64 = Normal::new(0.0f64, 0.5)
        .map(|n| n.sample(rng))
        .unwrap_or(0.0)
        .exp();
    let plan = match monthly_revenue {
        r if r < 12.0 => "prepaid",
        r if r < 30.0 => "postpaid",
        r if r < 60.0 => "family",
        _ => "business",
    };
    let contract_months = match plan {
        "prepaid" => 0,
        _ => [0, 12, 24][rng.random_range(0..3)],
    };
    let auto_pay = rng.random::<f64>() < if plan == "prepaid" { 0.2 } else { 0.6 };
    let region = pick(rng, &["north", "south", "east", "west", "central"]);
    let age = rng.random_range(18..80);
    // Cost to serve: a base, a share of revenue (network, interconnect) and service load.
    let monthly_cost =
        ((7.0 + 0.2 * monthly_revenue + 10.0 * service_prone) * 100.0).round() / 100.0;

    // Existing base (signed up before the history) or acquired during it.
    let signup = if rng.random::<f64>() < 0.7 {
        start - rng.random_range(1..2500)
    } else {
        start + rng.random_range(0..(end - start).max(1))
    };
    let from = signup.max(start);

    // Competing churn risks (per day); overall about 2% a month, mixed 70/15/15.
    let base = 0.022 / 30.0;
    let hold = if auto_pay { 0.8 } else { 1.0 } * if contract_months > 0 { 0.75 } else { 1.0 };
    let young = if from - signup < 180 { 1.6 } else { 1.0 };
    let rate_service = 0.56 * base * hold * young * (0.1 + 4.5 * service_prone);
    let rate_price = 0.15
        * base
        * young
        * (0.2 + 1.6 * price_sensitive)
        * if contract_months > 0 { 0.6 } else { 1.3 };
    let rate_product = 0.15 * base * hold * young * (1.5f64 / engagement).min(3.0);
    let draw = |rng: &mut R, rate: f64| {
        Exp::new(rate)
            .map(|e| e.sample(rng))
            .unwrap_or(f64::INFINITY)
    };
    let risks = [
        (draw(rng, rate_service), ChurnDriver::Service),
        (draw(rng, rate_price), ChurnDriver::Price),
        (draw(rng, rate_product), ChurnDriver::Product),
    ];
    let (first, driver) =
        risks
            .iter()
            .copied()
            .fold((f64::INFINITY, ChurnDriver::Service), |a, b| {
                if b.0 < a.0 { b } else { a }
            });
    let churn_day = from as f64 + first.max(1.0);
    let (churn, driver) = if churn_day < end as f64 {
        (Some(churn_day as i32), Some(driver))
    } else {
        (None, None)
    };
    let last = churn.unwrap_or(end);

    let mut evs: Vec<Ev> = Vec::new();
    let span = (last - from).max(0) as f64;
    let days_between = |rng: &mut R, rate: f64| poisson(rng, rate * span);

    // Footprint window, three weeks to three months before a churn (some churners leave silently).
    let footprint = match (churn, driver) {
        (Some(c), Some(d)) if rng.random::<f64>() < 0.85 => {
            Some((c - rng.random_range(21..100), c, d))
        }
        _ => None,
    };
    let fading = |ts: i64| -> f64 {
        match footprint {
            Some((a, c, ChurnDriver::Product)) if ts >= a as i64 * MICROS_PER_DAY => {
                let f = (ts as f64 / MICROS_PER_DAY as f64 - a as f64) / (c - a).max(1) as f64;
                1.0 - 0.85 * f.clamp(0.0, 1.0)
            }
            _ => 1.0,
        }
    };

    // Everyday use (thinned as usage fades before a product churn).
    for (touchpoint, rate, channels) in [
        (
            "data_session",
            0.25 * engagement,
            &["app", "app", "web"][..],
        ),
        ("app_login", 0.08 * engagement, &["app"][..]),
    ] {
        for _ in 0..days_between(rng, rate) {
            let ts = instant(rng, from, last);
            if rng.random::<f64>() < fading(ts) {
                let mut e = Ev::new(ts, touchpoint, pick(rng, channels));
                e.duration = Some((rng.random::<f64>() * 1800.0).round());
                evs.push(e);
            }
        }
    }
    // Monthly bills.
    let mut day = signup + 30;
    while day < last {
        if day >= from {
            let mut e = Ev::new(
                day as i64 * MICROS_PER_DAY + rng.random_range(0..86_400) * 1_000_000,
                "bill_payment",
                if auto_pay {
                    "web"
                } else {
                    pick(rng, &["web", "app", "store"])
                },
            );
            e.cost = Some(0.3);
            evs.push(e);
        }
        day += 30;
    }
    // Communication and brand.
    for (touchpoint, rate, channels) in [
        ("promo_sms", 0.03, &["sms"][..]),
        ("promo_email", 0.03, &["email"][..]),
        ("ad_impression", 0.02, &["social", "web"][..]),
        ("ad_click", 0.005, &["social", "web"][..]),
        ("web_visit", 0.03, &["web"][..]),
        ("store_visit", 0.01, &["store"][..]),
        ("brand_event", 0.002, &["social", "field_sales"][..]),
    ] {
        for _ in 0..days_between(rng, rate) {
            let mut e = Ev::new(instant(rng, from, last), touchpoint, pick(rng, channels));
            if touchpoint == "store_visit" {
                e.cost = Some(2.0);
                e.duration = Some(rng.random_range(300.0..1800.0f64).round());
            }
            evs.push(e);
        }
    }
    let loyal_rate = if from - signup > 365 && monthly_revenue > 25.0 {
        0.012
    } else {
        0.002
    };
    for _ in 0..days_between(rng, loyal_rate) {
        let mut e = Ev::new(
            instant(rng, from, last),
            "loyalty_club_event",
            pick(rng, &["app", "store"]),
        );
        e.satisfaction = Some(rating(rng, 4.3 - service_prone));
        e.cost = Some(1.5);
        evs.push(e);
    }
    // Service contact, more for the service-prone.
    for _ in 0..days_between(rng, 0.008 + 0.03 * service_prone) {
        let mut e = Ev::new(instant(rng, from, last), "call_centre_call", "call_centre");
        let d = rng.random_range(120.0..900.0f64).round();
        e.duration = Some(d);
        e.cost = Some(2.0 + d / 120.0);
        e.satisfaction =
            (rng.random::<f64>() < 0.3).then(|| rating(rng, 4.2 - 1.5 * service_prone));
        evs.push(e);
    }
    for _ in 0..days_between(rng, 0.002 + 0.01 * service_prone) {
        let mut e = Ev::new(
            instant(rng, from, last),
            "complaint_ticket",
            pick(rng, &["call_centre", "store", "web", "app"]),
        );
        e.resolved = Some(rng.random::<f64>() < 0.8);
        e.reason = Some(pick(
            rng,
            &["service", "service", "operation", "price", "product"],
        ));
        e.cost = Some(8.0);
        evs.push(e);
    }
    for _ in 0..days_between(rng, 0.01) {
        let mut e = Ev::new(
            instant(rng, from, last),
            "survey_response",
            pick(rng, &["email", "sms"]),
        );
        e.satisfaction = Some(rating(rng, 4.4 - 1.8 * service_prone));
        evs.push(e);
    }
    // Shopping: trials, add-ons, devices, tariff questions, cancellations.
    for _ in 0..days_between(rng, 0.003 * engagement) {
        let ts = instant(rng, from, last);
        let mut e = Ev::new(ts, "trial_start", pick(rng, &["app", "store"]));
        e.cost = Some(1.0);
        evs.push(e);
        if rng.random::<f64>() < 0.5 && rng.random::<f64>() < fading(ts) {
            let mut p = Ev::new(
                ts + rng.random_range(1..14) * MICROS_PER_DAY,
                "addon_purchase",
                pick(rng, &["app", "web"]),
            );
            p.revenue = Some(rng.random_range(5.0..30.0f64).round());
            evs.push(p);
        }
    }
    for _ in 0..days_between(rng, 0.004 * engagement) {
        let ts = instant(rng, from, last);
        if rng.random::<f64>() < fading(ts) {
            let mut e = Ev::new(ts, "addon_purchase", pick(rng, &["app", "web", "store"]));
            e.revenue = Some(rng.random_range(5.0..30.0f64).round());
            evs.push(e);
        }
    }
    for _ in 0..days_between(rng, 0.001 * (monthly_revenue / 20.0).min(4.0)) {
        let mut e = Ev::new(
            instant(rng, from, last),
            "store_purchase",
            pick(rng, &["store", "field_sales"]),
        );
        let price = rng.random_range(50.0..400.0f64).round();
        e.revenue = Some(price);
        e.cost = Some((price * 0.8).round());
        evs.push(e);
    }
    for _ in 0..days_between(rng, 0.002 + 0.004 * price_sensitive) {
        let mut e = Ev::new(
            instant(rng, from, last),
            "tariff_enquiry",
            pick(rng, &["call_centre", "store", "web"]),
        );
        e.cost = Some(2.0);
        evs.push(e);
    }
    for _ in 0..days_between(rng, 0.0015) {
        let mut e = Ev::new(
            instant(rng, from, last),
            "addon_cancel",
            pick(rng, &["app", "web", "call_centre"]),
        );
        e.reason = Some(pick(rng, &["service", "price", "product", "operation"]));
        evs.push(e);
    }

    // The footprint of the coming churn.
    if let Some((a, c, d)) = footprint {
        let a = a.max(from);
        match d {
            ChurnDriver::Service => {
                for _ in 0..poisson(rng, 3.0) {
                    let mut e = Ev::new(
                        instant(rng, a, c),
                        "complaint_ticket",
                        pick(rng, &["call_centre", "store", "app"]),
                    );
                    e.resolved = Some(rng.random::<f64>() < 0.3);
                    e.reason = Some(pick(rng, &["service", "service", "operation"]));
                    e.cost = Some(8.0);
                    evs.push(e);
                }
                for _ in 0..poisson(rng, 3.5) {
                    let mut e = Ev::new(instant(rng, a, c), "call_centre_call", "call_centre");
                    let dur = rng.random_range(600.0..2400.0f64).round();
                    e.duration = Some(dur);
                    e.cost = Some(2.0 + dur / 120.0);
                    e.satisfaction = (rng.random::<f64>() < 0.6).then(|| rating(rng, 1.8));
                    evs.push(e);
                }
            }
            ChurnDriver::Price => {
                for _ in 0..poisson(rng, 2.5) {
                    let mut e = Ev::new(
                        instant(rng, a, c),
                        "tariff_enquiry",
                        pick(rng, &["call_centre", "store", "web"]),
                    );
                    e.cost = Some(2.0);
                    evs.push(e);
                }
                if rng.random::<f64>() < 0.6 {
                    let mut e = Ev::new(
                        instant(rng, a, c),
                        "addon_cancel",
                        pick(rng, &["app", "web", "call_centre"]),
                    );
                    e.reason = Some("price");
                    evs.push(e);
                }
            }
            ChurnDriver::Product => {
                if rng.random::<f64>() < 0.5 {
                    let mut e = Ev::new(
                        instant(rng, a, c),
                        "addon_cancel",
                        pick(rng, &["app", "web"]),
                    );
                    e.reason = Some("product");
                    evs.push(e);
                }
            }
        }
    }
    evs.retain(|e| e.ts >= from as i64 * MICROS_PER_DAY && e.ts < last as i64 * MICROS_PER_DAY);
    evs.sort_by_key(|e| e.ts);
    for e in evs {
        out.sub.push(index);
        out.ts.push(e.ts);
        out.touchpoint.push(e.touchpoint);
        out.channel.push(e.channel);
        out.duration.push(e.duration);
        out.satisfaction.push(e.satisfaction);
        out.revenue.push(e.revenue);
        out.cost.push(e.cost);
        out.resolved.push(e.resolved);
        out.reason.push(e.reason);
    }
    Subscriber {
        signup,
        churn,
        driver,
        monthly_revenue,
        monthly_cost,
        plan,
        region,
        contract_months,
        auto_pay,
        age,
    }
}

/// One block of subscribers and their events.
struct Block {
    first: usize,
    subscribers: Vec<Subscriber>,
    events: Events,
}

fn block(params: &GenerateParams, b: usize, start: i32, end: i32) -> Block {
    let seed = params
        .seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(b as u64);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let first = b * BLOCK;
    let last = (first + BLOCK).min(params.subscribers);
    let mut events = Events::default();
    let subscribers = (first..last)
        .map(|i| subscriber(&mut rng, i as u32, start, end, &mut events))
        .collect();
    Block {
        first,
        subscribers,
        events,
    }
}

fn id_array(params: &GenerateParams, ids: impl Iterator<Item = usize>) -> ArrayRef {
    if params.string_ids {
        Arc::new(StringArray::from_iter_values(
            ids.map(|i| format!("S{:07}", i + 1)),
        ))
    } else {
        Arc::new(Int64Array::from_iter_values(ids.map(|i| i as i64 + 1)))
    }
}

fn id_type(params: &GenerateParams) -> DataType {
    if params.string_ids {
        DataType::Utf8
    } else {
        DataType::Int64
    }
}

fn event_schema(params: &GenerateParams) -> SchemaRef {
    let zone: Option<Arc<str>> = params.ts_zone.as_deref().map(Arc::from);
    Arc::new(Schema::new(vec![
        Field::new("subscriber_id", id_type(params), false),
        Field::new("ts", DataType::Timestamp(params.ts_unit, zone), false),
        Field::new("touchpoint", DataType::Utf8, false),
        Field::new("channel", DataType::Utf8, true),
        Field::new("duration_s", DataType::Float64, true),
        Field::new("satisfaction", DataType::Float64, true),
        Field::new("revenue", DataType::Float64, true),
        Field::new("cost", DataType::Float64, true),
        Field::new("resolved", DataType::Boolean, true),
        Field::new("reason", DataType::Utf8, true),
    ]))
}

fn ts_array(params: &GenerateParams, micros: &[i64]) -> ArrayRef {
    let zone = params.ts_zone.clone();
    match params.ts_unit {
        TimeUnit::Second => Arc::new(
            TimestampSecondArray::from_iter_values(micros.iter().map(|t| t / 1_000_000))
                .with_timezone_opt(zone),
        ),
        TimeUnit::Millisecond => Arc::new(
            TimestampMillisecondArray::from_iter_values(micros.iter().map(|t| t / 1_000))
                .with_timezone_opt(zone),
        ),
        TimeUnit::Microsecond => Arc::new(
            TimestampMicrosecondArray::from_iter_values(micros.iter().copied())
                .with_timezone_opt(zone),
        ),
        TimeUnit::Nanosecond => Arc::new(
            TimestampNanosecondArray::from_iter_values(micros.iter().map(|t| t * 1_000))
                .with_timezone_opt(zone),
        ),
    }
}

/// The schema of events before they take their final form: the subscriber as its index
/// (`UInt32`) and the instant as microseconds (`Int64`), so that the time-ordered layout
/// can sort them before ids and timestamps are written out.
fn raw_schema(schema: &SchemaRef) -> SchemaRef {
    let mut fields: Vec<Field> = vec![
        Field::new("subscriber", DataType::UInt32, false),
        Field::new("micros", DataType::Int64, false),
    ];
    fields.extend(schema.fields().iter().skip(2).map(|f| f.as_ref().clone()));
    Arc::new(Schema::new(fields))
}

/// The events of `blocks` in block order, in the raw form of [`raw_schema`].
fn raw_batch(raw: &SchemaRef, blocks: &[Block]) -> Result<RecordBatch, GenerateError> {
    let ev = |f: &dyn Fn(&Events) -> usize| blocks.iter().map(|b| f(&b.events)).sum::<usize>();
    let n = ev(&|e| e.ts.len());
    let mut ids = Vec::with_capacity(n);
    let mut ts = Vec::with_capacity(n);
    let (mut tp, mut ch, mut du, mut sa, mut re, mut co, mut rs, mut rn) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for b in blocks {
        let e = &b.events;
        ids.extend_from_slice(&e.sub);
        ts.extend_from_slice(&e.ts);
        tp.extend_from_slice(&e.touchpoint);
        ch.extend_from_slice(&e.channel);
        du.extend_from_slice(&e.duration);
        sa.extend_from_slice(&e.satisfaction);
        re.extend_from_slice(&e.revenue);
        co.extend_from_slice(&e.cost);
        rs.extend_from_slice(&e.resolved);
        rn.extend_from_slice(&e.reason);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(UInt32Array::from(ids)),
        Arc::new(Int64Array::from(ts)),
        Arc::new(StringArray::from(tp)),
        Arc::new(StringArray::from(ch)),
        Arc::new(Float64Array::from(du)),
        Arc::new(Float64Array::from(sa)),
        Arc::new(Float64Array::from(re)),
        Arc::new(Float64Array::from(co)),
        Arc::new(BooleanArray::from(rs)),
        Arc::new(StringArray::from(rn)),
    ];
    Ok(RecordBatch::try_new(raw.clone(), columns)?)
}

/// Raw events (see [`raw_schema`]) in their final form: subscriber ids and timestamps
/// of the asked type.
fn event_batch(
    params: &GenerateParams,
    schema: &SchemaRef,
    raw: &RecordBatch,
) -> Result<RecordBatch, GenerateError> {
    let sub = raw.column(0).as_primitive::<UInt32Type>();
    let micros = raw.column(1).as_primitive::<Int64Type>();
    let mut columns: Vec<ArrayRef> = vec![
        id_array(params, sub.values().iter().map(|&s| s as usize)),
        ts_array(params, micros.values()),
    ];
    columns.extend(raw.columns().iter().skip(2).cloned());
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// Days of events per bucket of the time-ordered layout.
const BUCKET_DAYS: i64 = 7;

/// The time-ordered layout's spill: one uncompressed Parquet file per week of history,
/// each wave's events appended as one row group. Removed when dropped.
struct Spill {
    dir: PathBuf,
    start_micros: i64,
    raw: SchemaRef,
    writers: Vec<Option<ArrowWriter<std::io::BufWriter<std::fs::File>>>>,
}

impl Spill {
    fn create(
        out_dir: &Path,
        raw: SchemaRef,
        start: i32,
        end: i32,
    ) -> Result<Spill, GenerateError> {
        let dir = out_dir.join(format!(".generate-spill-{}", std::process::id()));
        let buckets = ((end - start) as i64).div_euclid(BUCKET_DAYS) as usize + 1;
        let spill = Spill {
            dir,
            start_micros: start as i64 * MICROS_PER_DAY,
            raw,
            writers: (0..buckets).map(|_| None).collect(),
        };
        std::fs::create_dir_all(&spill.dir).map_err(|e| spill.error(e))?;
        Ok(spill)
    }

    fn error(&self, e: impl std::fmt::Display) -> GenerateError {
        GenerateError::Spill {
            path: self.dir.display().to_string(),
            message: e.to_string(),
        }
    }

    fn path(&self, bucket: usize) -> PathBuf {
        self.dir.join(format!("week-{bucket:05}.parquet"))
    }

    /// Appends one wave's raw events, each to the bucket of its week.
    fn add(&mut self, raw: &RecordBatch) -> Result<(), GenerateError> {
        let micros = raw.column(1).as_primitive::<Int64Type>();
        let last = self.writers.len() - 1;
        let mut rows: Vec<Vec<u32>> = vec![Vec::new(); self.writers.len()];
        for (row, &t) in micros.values().iter().enumerate() {
            let week = (t - self.start_micros).div_euclid(BUCKET_DAYS * MICROS_PER_DAY);
            rows[week.clamp(0, last as i64) as usize].push(row as u32);
        }
        for (bucket, rows) in rows.into_iter().enumerate() {
            if rows.is_empty() {
                continue;
            }
            let part = take_record_batch(raw, &UInt32Array::from(rows))?;
            if self.writers[bucket].is_none() {
                let file = std::fs::File::create(self.path(bucket)).map_err(|e| self.error(e))?;
                let props = WriterProperties::builder()
                    .set_compression(Compression::UNCOMPRESSED)
                    .set_dictionary_enabled(false)
                    .build();
                let writer = ArrowWriter::try_new(
                    std::io::BufWriter::new(file),
                    self.raw.clone(),
                    Some(props),
                )
                .map_err(|e| self.error(e))?;
                self.writers[bucket] = Some(writer);
            }
            if let Some(w) = self.writers[bucket].as_mut() {
                let written = w.write(&part).and_then(|()| w.flush());
                written.map_err(|e| GenerateError::Spill {
                    path: self.dir.display().to_string(),
                    message: e.to_string(),
                })?;
            }
        }
        Ok(())
    }

    /// Writes every bucket, in week order, each sorted by (instant, subscriber, order of
    /// generation), into `sink`; returns the events written.
    fn drain(
        mut self,
        params: &GenerateParams,
        schema: &SchemaRef,
        sink: &mut ParquetSink,
    ) -> Result<u64, GenerateError> {
        let mut events = 0u64;
        for bucket in 0..self.writers.len() {
            let Some(writer) = self.writers[bucket].take() else {
                continue;
            };
            writer.close().map_err(|e| self.error(e))?;
            let file = std::fs::File::open(self.path(bucket)).map_err(|e| self.error(e))?;
            let reader = ParquetRecordBatchReaderBuilder::try_new(file)
                .and_then(|b| b.with_batch_size(1 << 20).build())
                .map_err(|e| self.error(e))?;
            let batches = reader
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| self.error(e))?;
            let raw = concat_batches(&self.raw, &batches)?;
            drop(batches);
            let sub = raw.column(0).as_primitive::<UInt32Type>().values();
            let micros = raw.column(1).as_primitive::<Int64Type>().values();
            let mut order: Vec<u32> = (0..raw.num_rows() as u32).collect();
            order.sort_unstable_by_key(|&r| (micros[r as usize], sub[r as usize], r));
            let sorted = take_record_batch(&raw, &UInt32Array::from(order))?;
            drop(raw);
            events += sorted.num_rows() as u64;
            sink.write(&event_batch(params, schema, &sorted)?)?;
            std::fs::remove_file(self.path(bucket)).map_err(|e| self.error(e))?;
        }
        Ok(events)
    }
}

impl Drop for Spill {
    fn drop(&mut self) {
        // best effort: the spill is scratch, never an output
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn subscriber_batch(
    params: &GenerateParams,
    subs: &[Subscriber],
) -> Result<RecordBatch, GenerateError> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("subscriber_id", id_type(params), false),
        Field::new("signup_date", DataType::Date32, false),
        Field::new("churn_date", DataType::Date32, true),
        Field::new("monthly_revenue", DataType::Float64, false),
        Field::new("monthly_cost", DataType::Float64, false),
        Field::new("plan", DataType::Utf8, false),
        Field::new("region", DataType::Utf8, false),
        Field::new("contract_months", DataType::Int64, false),
        Field::new("auto_pay", DataType::Boolean, false),
        Field::new("age", DataType::Int64, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        id_array(params, 0..subs.len()),
        Arc::new(Date32Array::from_iter_values(subs.iter().map(|s| s.signup))),
        Arc::new(Date32Array::from_iter(subs.iter().map(|s| s.churn))),
        Arc::new(Float64Array::from_iter_values(
            subs.iter().map(|s| s.monthly_revenue),
        )),
        Arc::new(Float64Array::from_iter_values(
            subs.iter().map(|s| s.monthly_cost),
        )),
        Arc::new(StringArray::from_iter_values(subs.iter().map(|s| s.plan))),
        Arc::new(StringArray::from_iter_values(subs.iter().map(|s| s.region))),
        Arc::new(Int64Array::from_iter_values(
            subs.iter().map(|s| s.contract_months),
        )),
        Arc::new(BooleanArray::from_iter(
            subs.iter().map(|s| Some(s.auto_pay)),
        )),
        Arc::new(Int64Array::from_iter_values(subs.iter().map(|s| s.age))),
    ];
    Ok(RecordBatch::try_new(schema, columns)?)
}

/// What the model cannot see: each subscriber's churn date and true churn driver (null
/// for those who stay), to check how well drivers are recovered. Kept out of
/// `subscribers.parquet` so that it never becomes a feature.
fn truth_batch(params: &GenerateParams, subs: &[Subscriber]) -> Result<RecordBatch, GenerateError> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("subscriber_id", id_type(params), false),
        Field::new("churn_date", DataType::Date32, true),
        Field::new("churn_driver", DataType::Utf8, true),
    ]));
    let columns: Vec<ArrayRef> = vec![
        id_array(params, 0..subs.len()),
        Arc::new(Date32Array::from_iter(subs.iter().map(|s| s.churn))),
        Arc::new(StringArray::from_iter(
            subs.iter().map(|s| s.driver.map(ChurnDriver::name)),
        )),
    ];
    Ok(RecordBatch::try_new(schema, columns)?)
}

fn window(params: &GenerateParams) -> (i32, i32) {
    let end = AsOf::from_date(params.end).days();
    (end - params.days as i32, end)
}

/// Generates the data set into `out_dir`. `progress` gets the subscribers done so far.
pub fn generate(
    params: &GenerateParams,
    out_dir: &Path,
    progress: &dyn Fn(u64),
) -> Result<GenerateSummary, GenerateError> {
    if params.days == 0 {
        return Err(GenerateError::NoDays);
    }
    let (start, end) = window(params);
    let events_path = out_dir.join("interactions.parquet");
    let subs_path = out_dir.join("subscribers.parquet");
    let tax_path = out_dir.join("taxonomy.toml");
    let truth_path = out_dir.join("truth.parquet");
    // the four files are one set: a failed or killed run leaves the previous set whole
    let mut outputs = OutputSet::begin(
        "generate",
        &[&events_path, &subs_path, &tax_path, &truth_path],
    )?;
    let schema = event_schema(params);
    let raw = raw_schema(&schema);
    let mut sink = ParquetSink::create_as_given(&events_path, schema.clone())?;
    let mut spill = match params.layout {
        Layout::TimeOrdered => Some(Spill::create(out_dir, raw.clone(), start, end)?),
        Layout::BySubscriber => None,
    };
    let mut subscribers = Vec::with_capacity(params.subscribers);
    let mut events = 0u64;
    let blocks = params.subscribers.div_ceil(BLOCK);
    for wave in (0..blocks).step_by(WAVE) {
        let generated: Vec<Block> = (wave..(wave + WAVE).min(blocks))
            .into_par_iter()
            .map(|b| block(params, b, start, end))
            .collect();
        let batch = raw_batch(&raw, &generated)?;
        match spill.as_mut() {
            Some(spill) => spill.add(&batch)?,
            None => {
                events += batch.num_rows() as u64;
                sink.write(&event_batch(params, &schema, &batch)?)?;
            }
        }
        for b in generated {
            debug_assert_eq!(b.first, subscribers.len());
            subscribers.extend(b.subscribers);
        }
        progress(subscribers.len() as u64);
    }
    if let Some(spill) = spill {
        events += spill.drain(params, &schema, &mut sink)?;
    }
    let churners = subscribers.iter().filter(|s| s.churn.is_some()).count();
    let subs_batch = subscriber_batch(params, &subscribers)?;
    outputs.add(sink.finish()?)?;
    outputs.stage_parquet(&subs_path, &subs_batch)?;
    outputs.stage_parquet(&truth_path, &truth_batch(params, &subscribers)?)?;
    outputs.stage_bytes(&tax_path, Taxonomy::shipped().to_toml().as_bytes())?;
    outputs.commit()?;
    Ok(GenerateSummary {
        subscribers: subscribers.len(),
        events,
        churners,
        files: vec![subs_path, events_path, tax_path, truth_path],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_bytes_and_drivers_mix() {
        let dir = tempfile::tempdir().unwrap();
        let params = GenerateParams::new(3000, 200, 5);
        let a = generate(&params, &dir.path().join("a"), &|_| {}).unwrap();
        let b = generate(&params, &dir.path().join("b"), &|_| {}).unwrap();
        assert_eq!(a.events, b.events);
        for f in [
            "subscribers.parquet",
            "interactions.parquet",
            "taxonomy.toml",
            "truth.parquet",
        ] {
            assert_eq!(
                std::fs::read(dir.path().join("a").join(f)).unwrap(),
                std::fs::read(dir.path().join("b").join(f)).unwrap()
            );
        }
        let per_sub = a.events as f64 / a.subscribers as f64;
        assert!(
            (60.0..200.0).contains(&per_sub),
            "{per_sub} events per subscriber in 200 days"
        );
        let file = std::fs::File::open(dir.path().join("a").join("truth.parquet")).unwrap();
        let batches: Vec<RecordBatch> =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                .unwrap()
                .build()
                .unwrap()
                .map(Result::unwrap)
                .collect();
        let truth = arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
        let drivers = truth
            .column_by_name("churn_driver")
            .unwrap()
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        let churned: Vec<&str> = drivers.iter().flatten().collect();
        assert_eq!(churned.len(), a.churners);
        let service =
            churned.iter().filter(|d| **d == "service").count() as f64 / churned.len() as f64;
        assert!((0.6..0.8).contains(&service), "service share {service}");
    }

    fn sha256(path: &Path) -> String {
        use sha2::Digest;
        let bytes = std::fs::read(path).unwrap();
        sha2::Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    use arrow::array::Array;

    fn events(path: &Path) -> RecordBatch {
        let file = std::fs::File::open(path).unwrap();
        let batches: Vec<RecordBatch> = ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap()
            .map(Result::unwrap)
            .collect();
        concat_batches(&batches[0].schema(), &batches).unwrap()
    }

    #[test]
    fn by_subscriber_layout_keeps_the_bytes_of_earlier_versions() {
        // the interactions file `generate --subscribers 3000 --days 200 --seed 5` wrote
        // before the time-ordered layout existed
        let dir = tempfile::tempdir().unwrap();
        let mut params = GenerateParams::new(3000, 200, 5);
        params.layout = Layout::BySubscriber;
        generate(&params, dir.path(), &|_| {}).unwrap();
        assert_eq!(
            sha256(&dir.path().join("interactions.parquet")),
            "667e4db7fcb51cbda2183da7f811daf8c5ec64a6052d787eadda6e472e516a71"
        );
    }

    #[test]
    fn time_ordered_layout_sorts_the_same_events_by_time_on_any_thread_count() {
        let dir = tempfile::tempdir().unwrap();
        let mut params = GenerateParams::new(2500, 120, 3);
        params.string_ids = true;
        params.layout = Layout::BySubscriber;
        generate(&params, &dir.path().join("s"), &|_| {}).unwrap();
        params.layout = Layout::TimeOrdered;
        for (threads, name) in [(1, "t1"), (3, "t3")] {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| generate(&params, &dir.path().join(name), &|_| {}))
                .unwrap();
        }
        let t1 = dir.path().join("t1").join("interactions.parquet");
        assert_eq!(
            std::fs::read(&t1).unwrap(),
            std::fs::read(dir.path().join("t3").join("interactions.parquet")).unwrap()
        );
        assert!(
            !dir.path().join("t1").read_dir().unwrap().any(|e| e
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(".generate-spill")),
            "the spill is removed"
        );
        let by_time = events(&t1);
        let by_sub = events(&dir.path().join("s").join("interactions.parquet"));
        assert_eq!(by_time.num_rows(), by_sub.num_rows());
        fn ts(b: &RecordBatch) -> &[i64] {
            b.column(1)
                .as_primitive::<arrow::datatypes::TimestampMicrosecondType>()
                .values()
        }
        let times = ts(&by_time).to_vec();
        assert!(
            times.windows(2).all(|w| w[0] <= w[1]),
            "events in time order"
        );
        // consecutive events mostly belong to different subscribers
        let ids = by_time.column(0).as_string::<i32>();
        let runs = (1..ids.len())
            .filter(|&i| ids.value(i) != ids.value(i - 1))
            .count();
        assert!(
            runs * 10 > ids.len() * 9,
            "{runs} changes of subscriber in {} events",
            ids.len()
        );
        // the same events: sort both by every column's text and compare
        let rows = |b: &RecordBatch| -> Vec<String> {
            let mut rows: Vec<String> = (0..b.num_rows())
                .map(|r| {
                    (0..b.num_columns())
                        .map(|c| match c {
                            1 => ts(b)[r].to_string(),
                            _ => {
                                arrow::util::display::array_value_to_string(b.column(c), r).unwrap()
                            }
                        })
                        .collect::<Vec<_>>()
                        .join("|")
                })
                .collect();
            rows.sort();
            rows
        };
        assert_eq!(rows(&by_time), rows(&by_sub));
    }
}
