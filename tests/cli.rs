//! End-to-end tests that run the real `churnseg` binary on small generated data in a
//! temporary directory and check outputs and exit codes.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use arrow::array::{Array, AsArray};

mod common;
use common::{churnseg, ok, read, s};

/// Small generated data shared by the tests (generated once per test binary).
fn data() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("churnseg-cli-{}", std::process::id()));
        let out = dir.join("data");
        ok(&[
            "generate",
            "--subscribers",
            "3000",
            "--days",
            "300",
            "--seed",
            "7",
            "--out",
            out.to_str().unwrap(),
        ]);
        dir
    })
}

#[test]
fn generate_is_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    ok(&[
        "generate",
        "--subscribers",
        "500",
        "--days",
        "120",
        "--seed",
        "3",
        "--out",
        s(&a),
    ]);
    ok(&[
        "--threads",
        "1",
        "generate",
        "--subscribers",
        "500",
        "--days",
        "120",
        "--seed",
        "3",
        "--out",
        s(&b),
    ]);
    for f in [
        "subscribers.parquet",
        "interactions.parquet",
        "taxonomy.toml",
    ] {
        assert_eq!(
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
            "{f} differs"
        );
    }
}

#[test]
fn features_one_row_per_active_subscriber_and_identical_across_threads() {
    let d = data().join("data");
    let dir = tempfile::tempdir().unwrap();
    let (one, many) = (dir.path().join("f1.parquet"), dir.path().join("f4.parquet"));
    let subs = d.join("subscribers.parquet");
    let events = d.join("interactions.parquet");
    let common = [
        "--subscribers",
        s(&subs),
        "--interactions",
        s(&events),
        "--as-of",
        "2026-05-01",
    ];
    let log = ok(&[
        &["--threads", "1", "features"][..],
        &common,
        &["--out", s(&one)],
    ]
    .concat());
    assert!(log.contains("features done in"), "{log}");
    ok(&[
        &["--threads", "4", "features"][..],
        &common,
        &["--out", s(&many)],
    ]
    .concat());
    assert_eq!(std::fs::read(&one).unwrap(), std::fs::read(&many).unwrap());
    let batch = read(&one);
    for name in [
        "tenure_days",
        "events_7d",
        "brand_90d",
        "unsubscribe_30d",
        "days_since_last_complain",
        "use_trend",
        "profit_90d",
        "plan",
    ] {
        assert!(batch.column_by_name(name).is_some(), "missing {name}");
    }
    let ids = batch.column_by_name("subscriber_id").unwrap();
    assert_eq!(ids.null_count(), 0);
    assert!(batch.num_rows() > 1000);
    // the extended features (per-touchpoint counts merged across workers) too
    let (one_x, many_x) = (dir.path().join("x1.parquet"), dir.path().join("x4.parquet"));
    for (threads, out) in [("1", &one_x), ("4", &many_x)] {
        ok(&[
            &["--threads", threads, "features"][..],
            &common,
            &["--extended", "--out", s(out)],
        ]
        .concat());
    }
    assert_eq!(
        std::fs::read(&one_x).unwrap(),
        std::fs::read(&many_x).unwrap()
    );
    assert!(
        read(&one_x)
            .column_by_name("tp_complaint_ticket_30d")
            .is_some()
    );
}

#[test]
fn train_score_report_end_to_end() {
    let d = data().join("data");
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    let scored = dir.path().join("scored.parquet");
    let subs = d.join("subscribers.parquet");
    let events = d.join("interactions.parquet");
    let inputs = ["--subscribers", s(&subs), "--interactions", s(&events)];
    let log = ok(&[
        &["train"][..],
        &inputs,
        &[
            "--as-of",
            "2026-03-15",
            "--horizon",
            "90",
            "--trees",
            "60",
            "--out",
            s(&model),
        ],
    ]
    .concat());
    assert!(log.contains("out_of_time"), "{log}");
    ok(&[
        &["score"][..],
        &inputs,
        &[
            "--as-of",
            "2026-04-15",
            "--model",
            s(&model),
            "--out",
            s(&scored),
        ],
    ]
    .concat());
    let batch = read(&scored);
    for name in [
        "subscriber_id",
        "as_of",
        "churn_probability",
        "risk_decile",
        "profit_90d",
        "value_segment",
        "predicted_value_segment",
        "value_at_risk",
        "churn_driver",
        "driver_evidence",
        "reasons",
        "lifecycle_stage",
        "loyalty_action",
        "recommended_touchpoints",
        "model_version",
    ] {
        assert!(batch.column_by_name(name).is_some(), "missing {name}");
    }
    let p = batch
        .column_by_name("churn_probability")
        .unwrap()
        .as_primitive::<arrow::datatypes::Float64Type>();
    assert!(p.values().iter().all(|v| (0.0..=1.0).contains(v)));
    let touch = batch
        .column_by_name("recommended_touchpoints")
        .unwrap()
        .as_list::<i32>();
    assert!((0..touch.len()).all(|i| touch.value(i).len() <= 3));
    assert!(dir.path().join("scored.manifest.json").exists());

    paying_subscribers_are_not_being_acquired(&inputs, &model, &d, dir.path());

    // The same inputs and seed give byte-identical models and scores on 1 and 8 threads.
    std::fs::create_dir_all(dir.path().join("one")).unwrap();
    let model1 = dir.path().join("one").join("model");
    let scored1 = dir.path().join("scored1.parquet");
    ok(&[
        &["--threads", "1", "train"][..],
        &inputs,
        &[
            "--as-of",
            "2026-03-15",
            "--horizon",
            "90",
            "--trees",
            "60",
            "--out",
            s(&model1),
        ],
    ]
    .concat());
    ok(&[
        &["--threads", "8", "score"][..],
        &inputs,
        &[
            "--as-of",
            "2026-04-15",
            "--model",
            s(&model1),
            "--out",
            s(&scored1),
        ],
    ]
    .concat());
    let same = |a: &Path, b: &Path| std::fs::read(a).unwrap() == std::fs::read(b).unwrap();
    assert!(
        same(&model.join("model.json"), &model1.join("model.json")),
        "model differs between 1 and default threads"
    );
    assert!(
        same(&scored, &scored1),
        "scores differ between default and 8 threads"
    );

    // Scoring the same snapshot again against the first scores: nobody moved.
    let again = dir.path().join("again.parquet");
    ok(&[
        &["score"][..],
        &inputs,
        &[
            "--as-of",
            "2026-04-15",
            "--model",
            s(&model),
            "--previous",
            s(&scored),
            "--out",
            s(&again),
        ],
    ]
    .concat());
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("again.manifest.json")).unwrap())
            .unwrap();
    let mv = &manifest["movement"];
    assert_eq!(mv["matched"], batch.num_rows(), "{mv}");
    assert_eq!(
        (mv["new"].as_u64(), mv["gone"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(
        (mv["segment_up"].as_u64(), mv["risk_down"].as_u64()),
        (Some(0), Some(0))
    );

    // A subscriber table without `region` no longer matches the model's schema.
    let full = read(&subs);
    let keep: Vec<usize> = (0..full.num_columns())
        .filter(|&i| full.schema().field(i).name() != "region")
        .collect();
    let fewer = dir.path().join("fewer.parquet");
    churnseg::write::write_parquet(&fewer, &full.project(&keep).unwrap()).unwrap();
    let before = std::fs::read(&scored).unwrap();
    let res = churnseg(&[
        "score",
        "--subscribers",
        s(&fewer),
        "--interactions",
        s(&events),
        "--as-of",
        "2026-04-15",
        "--model",
        s(&model),
        "--out",
        s(&scored),
    ]);
    let err = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(2), "{err}");
    assert!(err.contains("region") && !err.contains("panicked"), "{err}");
    assert_eq!(
        std::fs::read(&scored).unwrap(),
        before,
        "the previous scored file must survive"
    );

    let report = dir.path().join("report.html");
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
    assert!(html.matches("<svg").count() >= 5);
    for id in ["lift", "calibration", "whale", "importance"] {
        assert!(html.contains(&format!("id=\"{id}\"")), "no {id} section");
    }
    assert!(
        !html.contains("http://")
            || html
                .matches("http://")
                .all(|_| html.contains("http://www.w3.org/2000/svg"))
    );
}

/// Scores with an older-style taxonomy that has no touchpoint of kind `subscribe` and
/// says nothing of reach or staffing (as a business that records no purchases would):
/// every generated subscriber pays a monthly fee, so none is still in `acquisition`, and
/// the recommendations follow the taxonomy's defaults: only touchpoints the company can
/// start, never a staffed one for `reduce_cost`.
fn paying_subscribers_are_not_being_acquired(
    inputs: &[&str],
    model: &Path,
    data: &Path,
    dir: &Path,
) {
    let text: String = std::fs::read_to_string(data.join("taxonomy.toml"))
        .unwrap()
        .lines()
        .filter(|l| {
            !(l.starts_with("reach") || l.starts_with("staffed") || *l == "kind = \"subscribe\"")
        })
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(
        !text.contains("= \"subscribe\"") && !text.contains("reach"),
        "{text}"
    );
    let old = dir.join("old_taxonomy.toml");
    std::fs::write(&old, &text).unwrap();
    let scored = dir.join("old_taxonomy.parquet");
    ok(&[
        &["score"][..],
        inputs,
        &[
            "--taxonomy",
            s(&old),
            "--as-of",
            "2026-04-15",
            "--model",
            s(model),
            "--out",
            s(&scored),
        ],
    ]
    .concat());
    // subscribers who joined in the 90 days before, all paying: not one is `acquisition`
    let subs = read(&data.join("subscribers.parquet"));
    let as_of = (chrono::NaiveDate::from_ymd_opt(2026, 4, 15).unwrap()
        - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap())
    .num_days() as i32;
    let signup = subs
        .column_by_name("signup_date")
        .unwrap()
        .as_primitive::<arrow::datatypes::Date32Type>();
    let revenue = subs
        .column_by_name("monthly_revenue")
        .unwrap()
        .as_primitive::<arrow::datatypes::Float64Type>();
    assert!(revenue.values().iter().all(|r| *r > 0.0));
    let young = signup
        .values()
        .iter()
        .filter(|&&d| d < as_of && d > as_of - 90)
        .count();
    assert!(
        young > 50,
        "{young} subscribers joined in the 90 days before"
    );
    let batch = read(&scored);
    let stages = common::strings(&batch, "lifecycle_stage");
    let acquiring = stages
        .iter()
        .filter(|s| s.as_deref() == Some("acquisition"))
        .count();
    assert_eq!(acquiring, 0, "paying subscribers in `acquisition`");
    assert!(stages.iter().any(|s| s.as_deref() == Some("conversion")));

    let taxonomy = churnseg::taxonomy::Taxonomy::from_toml(&text, "old").unwrap();
    let actions = common::strings(&batch, "loyalty_action");
    let touch = batch
        .column_by_name("recommended_touchpoints")
        .unwrap()
        .as_list::<i32>();
    let mut cost_steps = 0;
    for (i, action) in actions.iter().enumerate() {
        for p in touch.value(i).as_string::<i32>().iter().flatten() {
            let class = taxonomy.classify(p).unwrap();
            assert!(class.reach, "{p} is not a way to reach the subscriber");
            if action.as_deref() == Some("reduce_cost") {
                assert!(!class.staffed, "reduce_cost through staffed {p}");
                cost_steps += 1;
            }
        }
    }
    assert!(cost_steps > 0, "no reduce_cost recommendation to check");
}

#[test]
fn bad_input_fails_cleanly_and_keeps_the_previous_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("f.parquet");
    std::fs::write(&out, b"previous good output").unwrap();
    let missing = dir.path().join("nope.parquet");
    let res = churnseg(&[
        "features",
        "--subscribers",
        s(&missing),
        "--as-of",
        "2026-01-01",
        "--out",
        s(&out),
    ]);
    assert_eq!(res.status.code(), Some(2));
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(
        err.contains("nope.parquet") && err.contains("does not exist"),
        "{err}"
    );
    let corrupt = dir.path().join("corrupt.parquet");
    std::fs::write(&corrupt, b"PAR1 this is not parquet").unwrap();
    let res = churnseg(&[
        "features",
        "--subscribers",
        s(&corrupt),
        "--as-of",
        "2026-01-01",
        "--out",
        s(&out),
    ]);
    assert_eq!(res.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&res.stderr).contains("corrupt.parquet"));
    assert_eq!(std::fs::read(&out).unwrap(), b"previous good output");
}

/// `features --extended` counts each taxonomy touchpoint per window (`tp_{name}_{W}d`),
/// with the window's first instant in and `as_of` out, grouped by window in the
/// taxonomy's (name) order; a touchpoint missing from the taxonomy gets no column.
#[test]
fn extended_features_count_each_touchpoint_per_window() {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Date32Array, Float64Array, Int64Array, RecordBatch};
    use arrow::array::{StringArray, TimestampMillisecondArray};

    let dir = tempfile::tempdir().unwrap();
    let taxonomy = dir.path().join("taxonomy.toml");
    std::fs::write(
        &taxonomy,
        "[touchpoints.web]\ncategory = \"channel\"\nstage = \"site\"\n\
         [touchpoints.call]\ncategory = \"personnel\"\nstage = \"satisfaction\"\n\
         [touchpoints.shop]\ncategory = \"channel\"\nstage = \"shopping\"\nkind = \"subscribe\"\n",
    )
    .unwrap();
    // subscribers 1 and 2 active at 2026-06-01 (day 20605); 3 churned before it
    let subs = RecordBatch::try_from_iter([
        (
            "subscriber_id",
            Arc::new(Int64Array::from(vec![1, 2, 3])) as ArrayRef,
        ),
        (
            "signup_date",
            Arc::new(Date32Array::from(vec![20_000; 3])) as ArrayRef,
        ),
        (
            "churn_date",
            Arc::new(Date32Array::from(vec![None, None, Some(20_600)])) as ArrayRef,
        ),
        (
            "monthly_revenue",
            Arc::new(Float64Array::from(vec![10.0; 3])) as ArrayRef,
        ),
        (
            "plan",
            Arc::new(StringArray::from(vec!["a", "b", "a"])) as ArrayRef,
        ),
    ])
    .unwrap();
    let as_of_ms = 20_605i64 * 86_400_000;
    let day = 86_400_000i64;
    let events: [(i64, i64, &str); 11] = [
        (1, as_of_ms - 7 * day, "web"),       // 7, 30, 90
        (1, as_of_ms - 7 * day - 1, "web"),   // 30, 90
        (1, as_of_ms - 30 * day, "call"),     // 30, 90
        (1, as_of_ms - 90 * day, "call"),     // 90
        (1, as_of_ms - 90 * day - 1, "call"), // none: older than 90 days
        (1, as_of_ms, "web"),                 // none: at as_of
        (1, as_of_ms + day, "shop"),          // none: after as_of
        (1, as_of_ms - day, "mystery"),       // not in the taxonomy: no column
        (2, as_of_ms - 1, "shop"),            // 7, 30, 90
        (2, as_of_ms - 100 * day, "web"),     // none
        (3, as_of_ms - day, "web"),           // inactive subscriber
    ];
    let ev = RecordBatch::try_from_iter([
        (
            "subscriber_id",
            Arc::new(Int64Array::from_iter_values(events.iter().map(|e| e.0))) as ArrayRef,
        ),
        (
            "ts",
            Arc::new(
                TimestampMillisecondArray::from_iter_values(events.iter().map(|e| e.1))
                    .with_timezone("UTC"),
            ) as ArrayRef,
        ),
        (
            "touchpoint",
            Arc::new(StringArray::from_iter_values(events.iter().map(|e| e.2))) as ArrayRef,
        ),
    ])
    .unwrap();
    let (subs_path, events_path) = (
        dir.path().join("subscribers.parquet"),
        dir.path().join("interactions.parquet"),
    );
    churnseg::write::write_parquet(&subs_path, &subs).unwrap();
    churnseg::write::write_parquet(&events_path, &ev).unwrap();
    let out = dir.path().join("features.parquet");
    let args = [
        "features",
        "--subscribers",
        s(&subs_path),
        "--interactions",
        s(&events_path),
        "--taxonomy",
        s(&taxonomy),
        "--as-of",
        "2026-06-01",
        "--out",
        s(&out),
    ];
    ok(&args);
    let core = read(&out);
    assert!(
        core.schema()
            .fields()
            .iter()
            .all(|f| !f.name().starts_with("tp_"))
    );
    ok(&[&args[..], &["--extended"]].concat());
    let batch = read(&out);
    // after the other extended features, before the pass-through columns
    let names: Vec<String> = batch
        .schema_ref()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .skip_while(|n| n != "personnel_duration_mean_90d")
        .skip(1)
        .collect();
    assert_eq!(
        names,
        [
            "tp_call_7d",
            "tp_shop_7d",
            "tp_web_7d",
            "tp_call_30d",
            "tp_shop_30d",
            "tp_web_30d",
            "tp_call_90d",
            "tp_shop_90d",
            "tp_web_90d",
            "plan",
        ]
    );
    let ids = batch.column_by_name("subscriber_id").unwrap();
    assert_eq!(
        ids.as_primitive::<arrow::datatypes::Int64Type>().values(),
        &[1, 2]
    );
    let column = |name: &str| {
        let c = batch.column_by_name(name).unwrap();
        assert_eq!(c.data_type(), &arrow::datatypes::DataType::Int64, "{name}");
        assert_eq!(c.null_count(), 0, "{name}");
        c.as_primitive::<arrow::datatypes::Int64Type>()
            .values()
            .to_vec()
    };
    for (name, want) in [
        ("tp_call_7d", [0, 0]),
        ("tp_shop_7d", [0, 1]),
        ("tp_web_7d", [1, 0]),
        ("tp_call_30d", [1, 0]),
        ("tp_shop_30d", [0, 1]),
        ("tp_web_30d", [2, 0]),
        ("tp_call_90d", [2, 0]),
        ("tp_shop_90d", [0, 1]),
        ("tp_web_90d", [2, 0]),
        // the unknown touchpoint still counts as an event
        ("events_7d", [2, 1]),
    ] {
        assert_eq!(column(name), want, "{name}");
    }
}
