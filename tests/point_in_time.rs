//! Point-in-time property (SPEC §3): adding, removing or changing events at or after
//! `as_of` never changes a feature (the extended ones, per-touchpoint counts and the
//! custom features computed with polars included). Also checks the fused pass against a
//! direct, row-by-row reading of the SPEC §4 definitions and of the per-touchpoint
//! counts, and the custom features against the same definitions computed by hand.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMillisecondArray,
};
use churnseg::asof::{AsOf, MICROS_PER_DAY};
use churnseg::console::Console;
use churnseg::custom_features::{CustomFeatures, FeaturesSection};
use churnseg::features::accumulate::TouchpointUse;
use churnseg::features::{self, FeatureParams, column_f64};
use churnseg::load::{InputSpec, Inputs};
use churnseg::taxonomy::Taxonomy;
use proptest::prelude::*;

const TOUCHPOINTS: [&str; 6] = [
    "complaint_ticket",
    "data_session",
    "ad_click",
    "loyalty_club_event",
    "trial_start",
    "mystery",
];
const CHANNELS: [Option<&str>; 4] = [Some("app"), Some("store"), None, Some("web")];

#[derive(Debug, Clone)]
struct Event {
    sub: i64,
    ts_ms: i64,
    tp: usize,
    ch: usize,
    satisfaction: Option<f64>,
    revenue: Option<f64>,
    resolved: Option<bool>,
}

fn event(as_of_ms: i64, range_days: i64) -> impl Strategy<Value = Event> {
    (
        0i64..12,
        // mostly anywhere, sometimes exactly on `as_of` or on a window's first instant
        prop_oneof![
            6 => -range_days * 86_400_000..range_days * 86_400_000,
            1 => prop::sample::select(vec![0, -7 * 86_400_000, -30 * 86_400_000, -90 * 86_400_000, -90 * 86_400_000 - 1]),
        ],
        0usize..TOUCHPOINTS.len(),
        0usize..CHANNELS.len(),
        prop::option::of(1.0f64..5.0),
        prop::option::of(-5.0f64..50.0),
        prop::option::of(any::<bool>()),
    )
        .prop_map(move |(sub, offset, tp, ch, satisfaction, revenue, resolved)| Event {
            sub,
            ts_ms: as_of_ms + offset,
            tp,
            ch,
            satisfaction: satisfaction.map(|s| (s * 2.0).round() / 2.0),
            revenue,
            resolved,
        })
}

fn write_inputs(dir: &Path, events: &[Event]) {
    // 10 subscribers (ids 0..9); ids 10 and 11 appear only in events. Subscriber 3 has churned.
    let ids: Vec<i64> = (0..10).collect();
    let signup: Vec<i32> = ids.iter().map(|i| 20_000 - 40 * *i as i32).collect();
    let churn: Vec<Option<i32>> = ids.iter().map(|&i| (i == 3).then_some(20_400)).collect();
    let subs = RecordBatch::try_from_iter([
        (
            "subscriber_id",
            Arc::new(Int64Array::from(ids.clone())) as ArrayRef,
        ),
        (
            "signup_date",
            Arc::new(Date32Array::from(signup)) as ArrayRef,
        ),
        ("churn_date", Arc::new(Date32Array::from(churn)) as ArrayRef),
        (
            "monthly_revenue",
            Arc::new(Float64Array::from_iter_values(
                ids.iter().map(|&i| 10.0 + i as f64),
            )),
        ),
        (
            "monthly_cost",
            Arc::new(Float64Array::from_iter(
                ids.iter().map(|&i| (i % 3 != 0).then_some(4.5)),
            )),
        ),
        (
            "plan",
            Arc::new(StringArray::from_iter_values(
                ids.iter().map(|&i| if i % 2 == 0 { "a" } else { "b" }),
            )),
        ),
    ])
    .unwrap();
    churnseg::write::write_parquet(&dir.join("subscribers.parquet"), &subs).unwrap();
    let ev = RecordBatch::try_from_iter([
        (
            "subscriber_id",
            Arc::new(Int64Array::from_iter_values(events.iter().map(|e| e.sub))) as ArrayRef,
        ),
        (
            "ts",
            Arc::new(
                TimestampMillisecondArray::from_iter_values(events.iter().map(|e| e.ts_ms))
                    .with_timezone("UTC"),
            ) as ArrayRef,
        ),
        (
            "touchpoint",
            Arc::new(StringArray::from_iter_values(
                events.iter().map(|e| TOUCHPOINTS[e.tp]),
            )) as ArrayRef,
        ),
        (
            "channel",
            Arc::new(StringArray::from_iter(
                events.iter().map(|e| CHANNELS[e.ch]),
            )) as ArrayRef,
        ),
        (
            "satisfaction",
            Arc::new(Float64Array::from_iter(
                events.iter().map(|e| e.satisfaction),
            )) as ArrayRef,
        ),
        (
            "revenue",
            Arc::new(Float64Array::from_iter(events.iter().map(|e| e.revenue))) as ArrayRef,
        ),
        (
            "cost",
            Arc::new(Float64Array::from_iter(
                events.iter().map(|e| e.revenue.map(|r| r / 4.0)),
            )) as ArrayRef,
        ),
        (
            "resolved",
            Arc::new(BooleanArray::from_iter(events.iter().map(|e| e.resolved))) as ArrayRef,
        ),
    ])
    .unwrap();
    churnseg::write::write_parquet(&dir.join("interactions.parquet"), &ev).unwrap();
}

/// The feature table and each row's touchpoint use (which recommendations read).
fn feature_batch(dir: &Path, as_of: AsOf) -> (RecordBatch, Vec<TouchpointUse>) {
    feature_batch_with(dir, as_of, true)
}

fn feature_batch_with(
    dir: &Path,
    as_of: AsOf,
    touchpoint_use: bool,
) -> (RecordBatch, Vec<TouchpointUse>) {
    let spec = InputSpec {
        subscribers: dir.join("subscribers.parquet"),
        interactions: Some(dir.join("interactions.parquet")),
        custom: custom_features(),
        ..InputSpec::default()
    };
    churnseg::features::custom::check(&spec).unwrap();
    let inputs = Inputs::load(&spec).unwrap();
    let table = features::build_logged(
        &inputs,
        FeatureParams {
            as_of,
            extended: true,
            touchpoint_use,
        },
        &Console::new(true),
    )
    .unwrap();
    let uses = table.touchpoint_use.map(|u| u.uses).unwrap_or_default();
    (table.batch, uses)
}

/// Custom features over every window and filter shape, and one of the subscriber table.
const CUSTOM: &str = r#"
[[features.custom]]
name = "app_revenue_30d"
window_days = 30
where = "channel = 'app'"
value = "sum(revenue)"
default = 0

[[features.custom]]
name = "events_7d_custom"
window_days = 7
value = "count(*)"

[[features.custom]]
name = "satisfaction_mean_ever"
value = "avg(satisfaction)"

[[features.custom]]
name = "low_satisfaction_share_90d"
window_days = 90
where = "satisfaction IS NOT NULL"
value = "avg(CASE WHEN satisfaction <= 2 THEN 1.0 ELSE 0.0 END)"

[[features.custom]]
name = "channels_30d_custom"
window_days = 30
value = "count(DISTINCT channel)"

[[features.custom]]
name = "resolved_complaints_90d"
window_days = 90
where = "touchpoint = 'complaint_ticket' AND resolved"
value = "count(*) + 0 * max(revenue)"
default = -1

[[features.custom]]
name = "revenue_per_tenure_day"
from = "subscribers"
value = "monthly_revenue / (tenure_days + 1)"
"#;

fn custom_features() -> CustomFeatures {
    #[derive(serde::Deserialize)]
    struct File {
        features: FeaturesSection,
    }
    let file: File = toml::from_str(CUSTOM).unwrap();
    CustomFeatures::from_section(&file.features, "custom.toml", CUSTOM)
}

fn as_of() -> AsOf {
    AsOf::from_days(20_500)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn events_at_or_after_as_of_change_nothing(
        before in prop::collection::vec(event(as_of().micros() / 1000, 120), 0..150),
        after in prop::collection::vec(event(as_of().micros() / 1000, 120), 0..80),
    ) {
        let as_of_ms = as_of().micros() / 1000;
        let before: Vec<Event> = before.into_iter().filter(|e| e.ts_ms < as_of_ms).collect();
        // half of the later events fall exactly on `as_of`, the first instant that must not count
        let mut later: Vec<Event> = after
            .into_iter()
            .enumerate()
            .map(|(i, mut e)| {
                e.ts_ms = if i % 2 == 0 { as_of_ms } else { as_of_ms + (e.ts_ms - as_of_ms).abs() };
                e
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        write_inputs(dir.path(), &before);
        let base = feature_batch(dir.path(), as_of());
        // the comparison below covers every per-touchpoint count
        let tp_columns = base.0.schema().fields().iter().filter(|f| f.name().starts_with("tp_")).count();
        prop_assert_eq!(tp_columns, 3 * Taxonomy::shipped().len());
        // interleave the later events among the earlier ones
        let mut all = before.clone();
        for (i, e) in later.drain(..).enumerate() {
            all.insert((i * 7) % (all.len() + 1), e);
        }
        write_inputs(dir.path(), &all);
        let with_future = feature_batch(dir.path(), as_of());
        prop_assert_eq!(base, with_future);
    }

    #[test]
    fn fused_pass_matches_the_definitions(events in prop::collection::vec(event(as_of().micros() / 1000, 120), 0..200)) {
        let dir = tempfile::tempdir().unwrap();
        write_inputs(dir.path(), &events);
        let (batch, uses) = feature_batch(dir.path(), as_of());
        check_against_reference(&batch, &uses, &events);
        // `features --extended` (no touchpoint use) builds the same table
        let (without_use, _) = feature_batch_with(dir.path(), as_of(), false);
        prop_assert_eq!(&batch, &without_use);
    }
}

/// The SPEC §4 definitions applied event by event, for comparison.
fn check_against_reference(batch: &RecordBatch, uses: &[TouchpointUse], events: &[Event]) {
    let taxonomy = Taxonomy::shipped();
    let as_of_us = as_of().micros();
    let ids = batch
        .column_by_name("subscriber_id")
        .unwrap()
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap()
        .clone();
    // subscriber 3 churned before as_of and is not featurised
    assert!(!ids.values().contains(&3));
    assert_eq!(ids.len(), 9);
    // one count per taxonomy touchpoint and window, grouped by window; none for `mystery`
    let tp_names: Vec<String> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .filter(|n| n.starts_with("tp_"))
        .collect();
    let mut want_names = Vec::new();
    for w in [7, 30, 90] {
        want_names.extend(taxonomy.iter().map(|(name, _)| format!("tp_{name}_{w}d")));
    }
    assert_eq!(tp_names, want_names);
    for name in &tp_names {
        let column = batch.column_by_name(name).unwrap();
        assert_eq!(
            column.data_type(),
            &arrow::datatypes::DataType::Int64,
            "{name}"
        );
        assert_eq!(column.null_count(), 0, "{name}");
    }
    for (row, id) in ids.values().iter().enumerate() {
        let mine: Vec<&Event> = events
            .iter()
            .filter(|e| e.sub == *id && e.ts_ms * 1000 < as_of_us)
            .collect();
        let age = |e: &Event| (as_of_us - e.ts_ms * 1000) as f64 / MICROS_PER_DAY as f64;
        for w in [7.0, 30.0, 90.0] {
            let inw: Vec<&&Event> = mine.iter().filter(|e| age(e) <= w).collect();
            let get = |name: String| column_f64(batch, &name)[row].unwrap();
            assert_eq!(
                get(format!("events_{w}d")),
                inw.len() as f64,
                "events_{w}d of {id}"
            );
            let complain = inw
                .iter()
                .filter(|e| {
                    taxonomy
                        .classify(TOUCHPOINTS[e.tp])
                        .and_then(|c| c.kind)
                        .map(|k| k.name())
                        == Some("complain")
                })
                .count();
            assert_eq!(get(format!("complain_{w}d")), complain as f64);
            let personnel = inw
                .iter()
                .filter(|e| {
                    taxonomy
                        .classify(TOUCHPOINTS[e.tp])
                        .map(|c| c.category.name())
                        == Some("personnel")
                })
                .count();
            assert_eq!(get(format!("personnel_{w}d")), personnel as f64);
            let site = inw
                .iter()
                .filter(|e| {
                    taxonomy.classify(TOUCHPOINTS[e.tp]).map(|c| c.stage.name()) == Some("site")
                })
                .count();
            assert_eq!(get(format!("site_{w}d")), site as f64);
            for (name, _) in taxonomy.iter() {
                let n = inw.iter().filter(|e| TOUCHPOINTS[e.tp] == name).count();
                assert_eq!(
                    get(format!("tp_{name}_{w}d")),
                    n as f64,
                    "tp_{name}_{w}d of {id}"
                );
            }
        }
        let last = mine
            .iter()
            .map(|e| age(e))
            .fold(None, |m: Option<f64>, a| Some(m.map_or(a, |m| m.min(a))));
        assert_eq!(column_f64(batch, "days_since_last_event")[row], last);
        let in90: Vec<&&Event> = mine.iter().filter(|e| age(e) <= 90.0).collect();
        let known: Vec<&str> = taxonomy.iter().map(|(name, _)| name).collect();
        for (k, name) in known.iter().enumerate() {
            let of: Vec<&&&Event> = in90.iter().filter(|e| TOUCHPOINTS[e.tp] == *name).collect();
            let rated = |keep: fn(f64) -> bool| {
                of.iter()
                    .filter(|e| e.satisfaction.is_some_and(keep))
                    .count() as u32
            };
            let want = TouchpointUse {
                events: of.len() as u32,
                good: rated(|s| s >= 4.0),
                low: rated(|s| s <= 2.0),
            };
            assert_eq!(uses[row * known.len() + k], want, "use of {name} by {id}");
        }
        let sats: Vec<f64> = in90.iter().filter_map(|e| e.satisfaction).collect();
        let mean = (!sats.is_empty()).then(|| sats.iter().sum::<f64>() / sats.len() as f64);
        assert_eq!(column_f64(batch, "satisfaction_mean_90d")[row], mean);
        assert_eq!(
            column_f64(batch, "low_satisfaction_90d")[row],
            Some(sats.iter().filter(|&&s| s <= 2.0).count() as f64)
        );
        let unresolved = in90
            .iter()
            .filter(|e| TOUCHPOINTS[e.tp] == "complaint_ticket" && e.resolved == Some(false))
            .count();
        assert_eq!(
            column_f64(batch, "complaints_unresolved_90d")[row],
            Some(unresolved as f64)
        );
        let mut channels: Vec<&str> = in90.iter().filter_map(|e| CHANNELS[e.ch]).collect();
        channels.sort();
        channels.dedup();
        assert_eq!(
            column_f64(batch, "channels_distinct_90d")[row],
            Some(channels.len() as f64)
        );
        let revenue: f64 =
            in90.iter().filter_map(|e| e.revenue).sum::<f64>() + 3.0 * (10.0 + *id as f64);
        let cost: f64 = in90
            .iter()
            .filter_map(|e| e.revenue.map(|r| r / 4.0))
            .sum::<f64>()
            + if id % 3 != 0 { 13.5 } else { 0.0 };
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * (1.0 + b.abs());
        assert!(close(
            column_f64(batch, "revenue_90d")[row].unwrap(),
            revenue
        ));
        assert!(close(column_f64(batch, "cost_90d")[row].unwrap(), cost));
        assert!(close(
            column_f64(batch, "profit_90d")[row].unwrap(),
            revenue - cost
        ));
        let use_n = |w: f64| {
            mine.iter()
                .filter(|e| age(e) <= w && TOUCHPOINTS[e.tp] == "data_session")
                .count() as f64
        };
        let trend = (use_n(90.0) - use_n(30.0) > 0.0)
            .then(|| use_n(30.0) / ((use_n(90.0) - use_n(30.0)) / 2.0));
        assert_eq!(column_f64(batch, "use_trend")[row], trend);
        assert_eq!(
            column_f64(batch, "tenure_days")[row],
            Some((20_500 - (20_000 - 40 * *id as i32)) as f64)
        );
    }
    assert!(batch.column_by_name("plan").is_some_and(|c| c.len() == 9));
    check_custom(batch, &ids, events);
}

/// The custom features of [`CUSTOM`], computed event by event with SQL's semantics: an
/// aggregate over no rows is null (`count` 0), `default` when no event passes.
fn check_custom(batch: &RecordBatch, ids: &Int64Array, events: &[Event]) {
    let names: Vec<String> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let n = names.len();
    assert_eq!(
        names[n - 7..].to_vec(),
        [
            "app_revenue_30d",
            "events_7d_custom",
            "satisfaction_mean_ever",
            "low_satisfaction_share_90d",
            "channels_30d_custom",
            "resolved_complaints_90d",
            "revenue_per_tenure_day"
        ],
        "custom features come last, in definition order"
    );
    let as_of_us = as_of().micros();
    let close = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * (1.0 + b.abs()),
        (a, b) => a == b,
    };
    for (row, id) in ids.values().iter().enumerate() {
        let age = |e: &Event| (as_of_us - e.ts_ms * 1000) as f64 / MICROS_PER_DAY as f64;
        let mine: Vec<&Event> = events
            .iter()
            .filter(|e| e.sub == *id && e.ts_ms * 1000 < as_of_us)
            .collect();
        let within = |w: f64| mine.iter().copied().filter(move |e| age(e) <= w);
        let sum = |v: Vec<f64>| (!v.is_empty()).then(|| v.iter().sum::<f64>());
        let mean = |v: Vec<f64>| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
        let app: Vec<&Event> = within(30.0)
            .filter(|e| CHANNELS[e.ch] == Some("app"))
            .collect();
        let app_revenue = if app.is_empty() {
            Some(0.0)
        } else {
            sum(app.iter().filter_map(|e| e.revenue).collect())
        };
        let in7 = within(7.0).count();
        let rated: Vec<f64> = within(90.0).filter_map(|e| e.satisfaction).collect();
        let low_share = mean(
            rated
                .iter()
                .map(|&s| if s <= 2.0 { 1.0 } else { 0.0 })
                .collect(),
        );
        let in30: Vec<&Event> = within(30.0).collect();
        let mut channels: Vec<&str> = in30.iter().filter_map(|e| CHANNELS[e.ch]).collect();
        channels.sort();
        channels.dedup();
        let resolved = within(90.0)
            .filter(|e| TOUCHPOINTS[e.tp] == "complaint_ticket" && e.resolved == Some(true))
            .collect::<Vec<_>>();
        let resolved_count = if resolved.is_empty() {
            Some(-1.0)
        } else {
            // `0 * max(revenue)` is null when no passing event has a revenue
            resolved
                .iter()
                .any(|e| e.revenue.is_some())
                .then_some(resolved.len() as f64)
        };
        let tenure = (20_500 - (20_000 - 40 * *id as i32)) as f64;
        let want = [
            ("app_revenue_30d", app_revenue),
            ("events_7d_custom", (in7 > 0).then_some(in7 as f64)),
            (
                "satisfaction_mean_ever",
                mean(mine.iter().filter_map(|e| e.satisfaction).collect()),
            ),
            ("low_satisfaction_share_90d", low_share),
            (
                "channels_30d_custom",
                (!in30.is_empty()).then_some(channels.len() as f64),
            ),
            ("resolved_complaints_90d", resolved_count),
            (
                "revenue_per_tenure_day",
                Some((10.0 + *id as f64) / (tenure + 1.0)),
            ),
        ];
        for (name, want) in want {
            let got = column_f64(batch, name)[row];
            assert!(
                close(got, want),
                "{name} of {id}: got {got:?}, want {want:?}"
            );
        }
    }
}
