//! A business where every subscriber pays the same plan: `profit_90d` is equal for
//! everyone, so the 20/50/30 split follows the tie-break. Every output says so, with the
//! signs right, and the value-segment forecast does not claim to have learnt anything.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, RecordBatch};

mod common;
use common::{ok, read, s, strings};

/// `batch` with the named Float64 columns set to one value on every row.
fn with_constant(batch: &RecordBatch, values: &[(&str, f64)]) -> RecordBatch {
    let schema = batch.schema();
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .zip(batch.columns())
        .map(
            |(f, c)| match values.iter().find(|(name, _)| name == f.name()) {
                Some(&(_, v)) => {
                    Arc::new(Float64Array::from(vec![v; batch.num_rows()])) as ArrayRef
                }
                None => c.clone(),
            },
        )
        .collect();
    RecordBatch::try_new(schema, columns).unwrap()
}

#[test]
fn constant_profit_is_said_everywhere_and_never_forecast() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    let generated = path("generated");
    ok(&[
        "generate",
        "--subscribers",
        "1500",
        "--days",
        "300",
        "--seed",
        "5",
        "--out",
        s(&generated),
    ]);
    // Everyone pays 30 a month and costs 10; no event carries money.
    let subscribers = with_constant(
        &read(&generated.join("subscribers.parquet")),
        &[("monthly_revenue", 30.0), ("monthly_cost", 10.0)],
    );
    churnseg::write::write_parquet(&path("subscribers.parquet"), &subscribers).unwrap();
    let events = read(&generated.join("interactions.parquet"));
    let keep: Vec<usize> = (0..events.num_columns())
        .filter(|&i| !["revenue", "cost"].contains(&events.schema().field(i).name().as_str()))
        .collect();
    churnseg::write::write_parquet(
        &path("interactions.parquet"),
        &events.project(&keep).unwrap(),
    )
    .unwrap();
    let (subs, evs) = (path("subscribers.parquet"), path("interactions.parquet"));
    let inputs = ["--subscribers", s(&subs), "--interactions", s(&evs)];

    // The earlier snapshot (2025-12-31) has 118 days of history: only the flat profit
    // stops the forecast.
    let model = path("model");
    let log = ok(&[
        &["train"][..],
        &inputs,
        &[
            "--as-of",
            "2026-03-01",
            "--horizon",
            "60",
            "--trees",
            "20",
            "--out",
            s(&model),
        ],
    ]
    .concat());
    assert!(
        log.contains("value-segment model: persistence (no segment moves to learn: at 2025-12-31, profit_90d is 60.00 for every subscriber"),
        "{log}"
    );
    assert!(!log.contains("accuracy 1.000"), "{log}");

    let scored = path("scored.parquet");
    let log = ok(&[
        &["score"][..],
        &inputs,
        &[
            "--as-of",
            "2026-05-01",
            "--model",
            s(&model),
            "--out",
            s(&scored),
        ],
    ]
    .concat());
    let segments = log
        .lines()
        .find(|l| l.trim_start().starts_with("segments"))
        .unwrap();
    assert!(
        segments.contains("top20 makes 20% of profit, bottom30 makes 30%")
            && segments.contains("warning: profit_90d is 60.00 for every subscriber")
            && !segments.contains("loses"),
        "{segments}"
    );
    let batch = read(&scored);
    assert_eq!(
        strings(&batch, "predicted_value_segment"),
        strings(&batch, "value_segment"),
        "persistence forecasts no change"
    );

    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path("scored.manifest.json")).unwrap()).unwrap();
    let spread = &manifest["scored"]["whale"]["spread"];
    assert_eq!(spread["distinct"], 1, "{spread}");
    assert_eq!(spread["decided_by_tie_break"], batch.num_rows(), "{spread}");
    assert!(
        spread["warning"]
            .as_str()
            .unwrap()
            .contains("the order ties are broken in"),
        "{spread}"
    );
    let value = &manifest["model_metrics"]["value_segments"];
    assert_eq!(
        (value["method"].as_str(), value["shipped"].as_str()),
        (Some("none"), Some("persistence")),
        "{value}"
    );

    let report = path("report.html");
    ok(&[
        "report",
        "--scored",
        s(&scored),
        "--model",
        s(&model),
        "--out",
        s(&report),
    ]);
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(
        html.contains("bottom30 makes 30%") && html.contains("60.00 for every subscriber"),
        "the report's whale curve says what the profit is"
    );
}
