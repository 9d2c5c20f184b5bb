//! Broken or odd inputs: each must fail with exit code 2 and a message naming the
//! problem (or succeed where the SPEC says so), never panic, and leave the previous
//! output untouched.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};

mod common;
use common::{churnseg, s};

fn subscribers(ids: Vec<i64>) -> RecordBatch {
    let n = ids.len();
    RecordBatch::try_from_iter([
        ("subscriber_id", Arc::new(Int64Array::from(ids)) as ArrayRef),
        (
            "signup_date",
            Arc::new(Date32Array::from(vec![20_000; n])) as ArrayRef,
        ),
        (
            "churn_date",
            Arc::new(Date32Array::from(vec![None::<i32>; n])) as ArrayRef,
        ),
        (
            "monthly_revenue",
            Arc::new(Float64Array::from(vec![10.0; n])) as ArrayRef,
        ),
    ])
    .unwrap()
}

fn events(ts: ArrayRef, touchpoint: &str, n: usize) -> RecordBatch {
    RecordBatch::try_from_iter([
        (
            "subscriber_id",
            Arc::new(Int64Array::from(vec![1; n])) as ArrayRef,
        ),
        ("ts", ts),
        (
            "touchpoint",
            Arc::new(StringArray::from(vec![touchpoint; n])) as ArrayRef,
        ),
    ])
    .unwrap()
}

/// Runs `features` and asserts a clean failure naming `needles`, with `out` untouched.
fn fails_with(dir: &Path, extra: &[&str], needles: &[&str]) {
    let out = dir.join("out.parquet");
    std::fs::write(&out, b"previous good output").unwrap();
    let subs = dir.join("subscribers.parquet");
    let mut args = vec![
        "features",
        "--subscribers",
        s(&subs),
        "--as-of",
        "2026-01-01",
        "--out",
        s(&out),
    ];
    args.extend_from_slice(extra);
    let res = churnseg(&args);
    let err = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(2), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    for n in needles {
        assert!(err.contains(n), "expected {n:?} in: {err}");
    }
    assert_eq!(std::fs::read(&out).unwrap(), b"previous good output");
}

fn write(path: &Path, batch: &RecordBatch) {
    churnseg::write::write_parquet(path, batch).unwrap();
}

#[test]
fn missing_required_column() {
    let dir = tempfile::tempdir().unwrap();
    let b = subscribers(vec![1, 2]);
    let b = b.project(&[0, 1, 2]).unwrap(); // no monthly_revenue
    write(&dir.path().join("subscribers.parquet"), &b);
    fails_with(
        dir.path(),
        &[],
        &[
            "subscribers.parquet",
            "missing required column `monthly_revenue`",
        ],
    );
}

#[test]
fn duplicate_and_null_ids() {
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("subscribers.parquet"),
        &subscribers(vec![1, 2, 2]),
    );
    fails_with(dir.path(), &[], &["duplicate subscriber id 2"]);
    let b = subscribers(vec![1, 2]);
    let ids: ArrayRef = Arc::new(Int64Array::from(vec![Some(1), None]));
    let b = RecordBatch::try_new(
        b.schema(),
        vec![
            ids,
            b.column(1).clone(),
            b.column(2).clone(),
            b.column(3).clone(),
        ],
    );
    // a non-nullable field cannot hold a null: rebuild the schema as nullable
    let b = b.unwrap_or_else(|_| {
        RecordBatch::try_from_iter([
            (
                "subscriber_id",
                Arc::new(Int64Array::from(vec![Some(1), None])) as ArrayRef,
            ),
            (
                "signup_date",
                Arc::new(Date32Array::from(vec![20_000; 2])) as ArrayRef,
            ),
            (
                "monthly_revenue",
                Arc::new(Float64Array::from(vec![10.0; 2])) as ArrayRef,
            ),
        ])
        .unwrap()
    });
    write(&dir.path().join("subscribers.parquet"), &b);
    fails_with(dir.path(), &[], &["null id", "row 1"]);
}

#[test]
fn wrong_ts_type_names_the_column_and_an_example() {
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("subscribers.parquet"),
        &subscribers(vec![1]),
    );
    let ev = events(
        Arc::new(StringArray::from(vec!["2025-12-01"])),
        "complaint_ticket",
        1,
    );
    let path = dir.path().join("events.parquet");
    write(&path, &ev);
    fails_with(
        dir.path(),
        &["--interactions", s(&path)],
        &["events.parquet", "`ts`", "Utf8", "2025-12-01"],
    );
}

#[test]
fn corrupt_and_missing_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("subscribers.parquet"),
        &subscribers(vec![1]),
    );
    let path = dir.path().join("events.parquet");
    write(
        &path,
        &events(
            Arc::new(TimestampMicrosecondArray::from(vec![1_700_000_000_000_000])),
            "x",
            1,
        ),
    );
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    fails_with(
        dir.path(),
        &["--interactions", s(&path)],
        &["events.parquet"],
    );
    let missing = dir.path().join("nowhere");
    fails_with(
        dir.path(),
        &["--interactions", s(&missing)],
        &["nowhere", "does not exist"],
    );
}

#[test]
fn bad_taxonomies_name_the_touchpoint_or_the_line() {
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("subscribers.parquet"),
        &subscribers(vec![1]),
    );
    let tax = dir.path().join("tax.toml");
    std::fs::write(
        &tax,
        "[touchpoints.store_chat]\ncategory = \"nonsense\"\nstage = \"site\"\n",
    )
    .unwrap();
    fails_with(
        dir.path(),
        &["--taxonomy", s(&tax)],
        &["store_chat", "nonsense"],
    );
    std::fs::write(&tax, "[touchpoints.a]\ncategory = \"brand\"\nstage = \n").unwrap();
    fails_with(
        dir.path(),
        &["--taxonomy", s(&tax)],
        &["tax.toml", "line 3"],
    );
}

#[test]
fn unknown_touchpoints_count_as_other_and_fail_only_under_strict() {
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("subscribers.parquet"),
        &subscribers(vec![1]),
    );
    let path = dir.path().join("events.parquet");
    write(
        &path,
        &events(
            // 2025-12-01: recent, so that the health guards pass
            Arc::new(TimestampMicrosecondArray::from(vec![
                1_764_547_200_000_000;
                3
            ])),
            "hologram_visit",
            3,
        ),
    );
    fails_with(
        dir.path(),
        &["--interactions", s(&path), "--strict"],
        &["hologram_visit", "3 events"],
    );
    let out = dir.path().join("ok.parquet");
    let res = churnseg(&[
        "features",
        "--subscribers",
        s(&dir.path().join("subscribers.parquet")),
        "--interactions",
        s(&path),
        "--as-of",
        "2026-01-01",
        "--out",
        s(&out),
    ]);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let manifest = std::fs::read_to_string(dir.path().join("ok.manifest.json")).unwrap();
    assert!(manifest.contains("\"hologram_visit\": 3"), "{manifest}");
}

#[test]
fn empty_interactions_and_nan_revenue_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let b = subscribers(vec![1, 2]);
    let revenue: ArrayRef = Arc::new(Float64Array::from(vec![f64::NAN, 5.0]));
    let b = RecordBatch::try_new(
        b.schema(),
        vec![
            b.column(0).clone(),
            b.column(1).clone(),
            b.column(2).clone(),
            revenue,
        ],
    )
    .unwrap();
    write(&dir.path().join("subscribers.parquet"), &b);
    let path = dir.path().join("events.parquet");
    let ev = events(
        Arc::new(TimestampMicrosecondArray::from(Vec::<i64>::new()).with_timezone("UTC")),
        "x",
        0,
    );
    write(&path, &ev);
    let out = dir.path().join("f.parquet");
    let res = churnseg(&[
        "features",
        "--subscribers",
        s(&dir.path().join("subscribers.parquet")),
        "--interactions",
        s(&path),
        "--as-of",
        "2026-01-01",
        "--out",
        s(&out),
    ]);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    assert!(out.exists());
}
