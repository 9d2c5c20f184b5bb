//! Health guards, values out of their domain, and the CLI and config checks of issue 14:
//! each broken input goes through the real binary over an existing good output, and must
//! stop with the right exit status (3 for a guard, 2 for bad input) and a message naming
//! the problem, leaving the previous outputs byte-identical and no temp file behind.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, Float64Array, Int64Array, RecordBatch,
    StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, TimestampMicrosecondType};

mod common;
use common::{churnseg, ok, read, s};

/// Generated inputs (string ids), a model, and a good scored table at 2026-06-01 with
/// its manifest: the output every broken night must leave as it was.
struct Good {
    dir: PathBuf,
}

impl Good {
    fn subscribers(&self) -> PathBuf {
        self.dir.join("data/subscribers.parquet")
    }
    fn events(&self) -> PathBuf {
        self.dir.join("data/interactions.parquet")
    }
    fn model(&self) -> PathBuf {
        self.dir.join("model")
    }
    fn scored(&self) -> PathBuf {
        self.dir.join("good/scored.parquet")
    }
}

fn good() -> &'static Good {
    static GOOD: OnceLock<Good> = OnceLock::new();
    GOOD.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("churnseg-guards-{}", std::process::id()));
        let good = Good { dir };
        let data = good.dir.join("data");
        ok(&[
            "generate",
            "--subscribers",
            "1500",
            "--days",
            "300",
            "--seed",
            "11",
            "--string-ids",
            "--out",
            s(&data),
        ]);
        let (subs, events, model) = (good.subscribers(), good.events(), good.model());
        ok(&[
            "-q",
            "train",
            "--subscribers",
            s(&subs),
            "--interactions",
            s(&events),
            "--as-of",
            "2026-03-01",
            "--trees",
            "15",
            "--snapshots",
            "1",
            "--out",
            s(&model),
        ]);
        std::fs::create_dir_all(good.dir.join("good")).unwrap();
        ok(&[
            "-q",
            "score",
            "--subscribers",
            s(&subs),
            "--interactions",
            s(&events),
            "--as-of",
            "2026-06-01",
            "--model",
            s(&model),
            "--out",
            s(&good.scored()),
        ]);
        good
    })
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                out.insert(path.strip_prefix(dir).unwrap().to_path_buf(), bytes);
            }
        }
    }
    out
}

fn copy_dir(from: &Path, to: &Path) {
    for (rel, bytes) in snapshot(from) {
        let path = to.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

/// Runs the binary, asserts exit status `code` and no panic, and returns stderr.
fn fails(code: i32, args: &[&str]) -> String {
    let res = churnseg(args);
    let err = String::from_utf8_lossy(&res.stderr).into_owned();
    assert_eq!(res.status.code(), Some(code), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

fn write(path: &Path, batch: &RecordBatch) {
    churnseg::write::write_parquet(path, batch).unwrap();
}

/// The batch with column `name` replaced.
fn with_column(batch: &RecordBatch, name: &str, column: ArrayRef) -> RecordBatch {
    let schema = batch.schema();
    let idx = schema.index_of(name).unwrap();
    let mut columns = batch.columns().to_vec();
    columns[idx] = column.clone();
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields[idx] = Field::new(name, column.data_type().clone(), true);
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
}

/// The generated events with every timestamp multiplied by `factor` (or divided, below 1).
fn events_with_ts(factor: f64) -> RecordBatch {
    let ev = read(&good().events());
    let ts = ev.column_by_name("ts").unwrap();
    let ts = ts.as_primitive::<TimestampMicrosecondType>();
    let scaled: TimestampMicrosecondArray = ts
        .iter()
        .map(|v| v.map(|v| (v as f64 * factor) as i64))
        .collect();
    with_column(&ev, "ts", Arc::new(scaled.with_timezone("UTC")))
}

/// The generated events with the id prefix changed (`S…` → `C…`), as after an upstream
/// id change.
fn events_with_new_ids() -> RecordBatch {
    let ev = read(&good().events());
    let ids = ev
        .column_by_name("subscriber_id")
        .unwrap()
        .as_string::<i32>();
    let changed: StringArray = ids
        .iter()
        .map(|v| v.map(|v| format!("C{}", &v[1..])))
        .collect();
    with_column(&ev, "subscriber_id", Arc::new(changed))
}

fn keep_rows(batch: &RecordBatch, keep: impl Fn(usize) -> bool) -> RecordBatch {
    let mask: BooleanArray = (0..batch.num_rows()).map(|i| Some(keep(i))).collect();
    arrow::compute::filter_record_batch(batch, &mask).unwrap()
}

/// What `--previous` names: the good output copied to `dir/out` (which is also
/// `--out`), another file, or nothing.
enum Previous<'a> {
    Out,
    File(&'a Path),
    Absent,
}

/// A night's score at `as_of` into a copy of the good output in `dir/out`.
fn score_night(
    dir: &Path,
    (subs, events): (&Path, &Path),
    as_of: &str,
    previous: Previous,
    extra: &[&str],
) -> (Option<i32>, String) {
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    copy_dir(&good().dir.join("good"), &out);
    let scored = out.join("scored.parquet");
    let model = good().model();
    let mut args = vec![
        "score",
        "--subscribers",
        s(subs),
        "--interactions",
        s(events),
        "--as-of",
        as_of,
        "--model",
        s(&model),
        "--out",
        s(&scored),
    ];
    match previous {
        Previous::Out => args.extend(["--previous", s(&scored)]),
        Previous::File(p) => args.extend(["--previous", s(p)]),
        Previous::Absent => {}
    }
    args.extend_from_slice(extra);
    let res = churnseg(&args);
    let err = String::from_utf8_lossy(&res.stderr).into_owned();
    assert!(!err.contains("panicked"), "{err}");
    (res.status.code(), err)
}

/// A night's score at 2026-06-15 over the good output, which is also `--previous`.
fn score_over_good(
    dir: &Path,
    subs: &Path,
    events: &Path,
    extra: &[&str],
) -> (Option<i32>, String) {
    score_night(dir, (subs, events), "2026-06-15", Previous::Out, extra)
}

/// Asserts that the night was stopped by a guard (exit 3) with `needles` in the message
/// and the good output left byte-identical, with nothing else beside it.
fn stopped(dir: &Path, subs: &Path, events: &Path, extra: &[&str], needles: &[&str]) -> String {
    let (code, err) = score_over_good(dir, subs, events, extra);
    assert_eq!(code, Some(3), "{err}");
    for n in needles {
        assert!(err.contains(n), "expected {n:?} in: {err}");
    }
    assert_output_unchanged(dir);
    err
}

/// Asserts that `dir/out` holds the good output, byte for byte, and nothing else.
fn assert_output_unchanged(dir: &Path) {
    assert_eq!(
        snapshot(&dir.join("out")),
        snapshot(&good().dir.join("good")),
        "the previous output changed"
    );
}

/// [`stopped`] for a night whose interactions are `events` (the good subscribers).
fn stopped_by_events(events: &RecordBatch, needles: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ev.parquet");
    write(&path, events);
    stopped(dir.path(), &good().subscribers(), &path, &[], needles)
}

#[test]
fn a_normal_night_passes_every_guard_and_records_them() {
    let dir = tempfile::tempdir().unwrap();
    let (code, err) = score_over_good(dir.path(), &good().subscribers(), &good().events(), &[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("guards       9 passed"), "{err}");
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("out/scored.manifest.json")).unwrap(),
    )
    .unwrap();
    let checks = manifest["guards"]["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 9);
    for c in checks {
        assert_eq!(c["status"], "passed", "{c}");
        assert!(c["figure"].is_number() && c["threshold"].is_number(), "{c}");
    }
    // the comparisons were made against the previous run's recorded figures
    let previous = &manifest["guards"]["previous"];
    assert!(
        previous["matched_event_share"].as_f64().unwrap() > 0.99,
        "{previous}"
    );
    assert!(
        previous["manifest"]
            .as_str()
            .unwrap()
            .ends_with("scored.manifest.json")
    );
}

#[test]
fn an_upstream_id_change_stops_score() {
    let err = stopped_by_events(
        &events_with_new_ids(),
        &[
            "`matched_events`: 0 of the",
            "ev.parquet (0.0%) have a subscriber_id found in",
            "subscribers.parquet",
            "`subscribers_with_events`",
            "`matched_events_vs_previous`",
            "--allow matched_events",
        ],
    );
    assert!(err.contains("error: 4 health guard(s) failed"), "{err}");
}

#[test]
fn timestamps_1000_times_too_large_stop_score() {
    stopped_by_events(
        &events_with_ts(1000.0),
        &[
            "`future_events`",
            "(100.0%) are at or after 2026-06-15",
            "unit",
        ],
    );
}

#[test]
fn timestamps_1000_times_too_small_are_stale() {
    stopped_by_events(
        &events_with_ts(0.001),
        &["`stale_events`", "(100.0%) are before 2026-03-17"],
    );
}

#[test]
fn an_empty_subscriber_extract_stops_score() {
    let dir = tempfile::tempdir().unwrap();
    let subs = dir.path().join("subs.parquet");
    write(&subs, &read(&good().subscribers()).slice(0, 0));
    stopped(
        dir.path(),
        &subs,
        &good().events(),
        &[],
        &[
            "`active_subscribers`: no subscriber of the 0 in",
            "subs.parquet",
        ],
    );
}

#[test]
fn an_as_of_at_which_nobody_is_active_stops_score() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = (good().subscribers(), good().events());
    let (code, err) = score_night(
        dir.path(),
        (&inputs.0, &inputs.1),
        "1990-01-01",
        Previous::Absent,
        &[],
    );
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("no subscriber of the 1500"), "{err}");
    assert!(err.contains("active at 1990-01-01"), "{err}");
    assert_output_unchanged(dir.path());
}

#[test]
fn subscriber_counts_collapsing_against_the_previous_run_stop_score() {
    let dir = tempfile::tempdir().unwrap();
    // a third of the subscribers, with exactly their events: every share is normal
    let subs = read(&good().subscribers());
    let subs = subs.slice(0, subs.num_rows() / 3);
    let kept: HashSet<String> = subs
        .column(0)
        .as_string::<i32>()
        .iter()
        .flatten()
        .map(str::to_string)
        .collect();
    let ev = read(&good().events());
    let ids = ev
        .column_by_name("subscriber_id")
        .unwrap()
        .as_string::<i32>()
        .clone();
    let ev = keep_rows(&ev, |i| kept.contains(ids.value(i)));
    let (subs_path, events) = (
        dir.path().join("subs.parquet"),
        dir.path().join("ev.parquet"),
    );
    write(&subs_path, &subs);
    write(&events, &ev);
    let previous_rows = read(&good().scored()).num_rows();
    let err = stopped(
        dir.path(),
        &subs_path,
        &events,
        &[],
        &[
            "`active_vs_previous`",
            &format!("against {previous_rows} in the previous run"),
        ],
    );
    assert!(err.contains("error: 2 health guard(s)"), "{err}");
    assert!(err.contains("`events_vs_previous`"), "{err}");
}

#[test]
fn event_counts_collapsing_against_the_previous_run_stop_score() {
    let dir = tempfile::tempdir().unwrap();
    let ev = read(&good().events());
    let events = dir.path().join("ev.parquet");
    write(&events, &keep_rows(&ev, |i| i % 3 == 0));
    let err = stopped(
        dir.path(),
        &good().subscribers(),
        &events,
        &[],
        &[
            "`events_vs_previous`",
            &format!("against {} in the previous run", ev.num_rows()),
        ],
    );
    assert!(err.contains("error: 1 health guard(s)"), "{err}");
    // the threshold can be lowered
    let (code, err) = score_over_good(
        dir.path(),
        &good().subscribers(),
        &events,
        &["--min-count-ratio", "0.2"],
    );
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn allowed_guards_warn_and_are_recorded_as_failed() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("ev.parquet");
    write(&events, &events_with_new_ids());
    let (code, err) = score_over_good(
        dir.path(),
        &good().subscribers(),
        &events,
        &[
            "--allow",
            "matched_events,subscribers_with_events",
            "--allow",
            "matched_events_vs_previous",
        ],
    );
    // one guard is left: still stopped, and it is the only one named
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("1 health guard(s) failed"), "{err}");
    assert!(
        err.contains("--allow subscribers_with_events_vs_previous"),
        "{err}"
    );
    let (code, err) = score_over_good(
        dir.path(),
        &good().subscribers(),
        &events,
        &["--allow", "all"],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("warning: health guard `matched_events` failed but is allowed"),
        "{err}"
    );
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("out/scored.manifest.json")).unwrap(),
    )
    .unwrap();
    let checks = manifest["guards"]["checks"].as_array().unwrap();
    let matched = checks
        .iter()
        .find(|c| c["check"] == "matched_events")
        .unwrap();
    assert_eq!(matched["status"], "allowed");
    assert_eq!(matched["passed"], false);
    assert_eq!(matched["figure"], 0.0);
    assert_eq!(matched["threshold"], 0.5);
    let err = fails(2, &["score", "--allow", "nonsense", "--help"]);
    assert!(err.contains("`matched_events`"), "{err}");
}

/// A pipeline config over `inputs` writing to `dir/out`, with the shared model copied to
/// `dir/model`.
fn config(dir: &Path, subs: &Path, events: &Path, retrain: &str, guards: &str) -> PathBuf {
    copy_dir(&good().model(), &dir.join("model"));
    let path = dir.join("night.toml");
    std::fs::write(
        &path,
        format!(
            "[inputs]\nsubscribers = \"{}\"\ninteractions = \"{}\"\n\
             [train]\nas_of = \"2026-03-01\"\nboosting = {{ n_trees = 15 }}\nsnapshots = 1\nmodel = \"{}\"\nretrain = \"{retrain}\"\n\
             [score]\nas_of = \"2026-06-15\"\n[output]\ndir = \"{}\"\nlayout = \"flat\"\n{guards}",
            s(subs),
            s(events),
            s(&dir.join("model")),
            s(&dir.join("out"))
        ),
    )
    .unwrap();
    path
}

#[test]
fn run_stops_before_replacing_its_outputs_or_its_model() {
    let dir = tempfile::tempdir().unwrap();
    let (subs, events) = (
        dir.path().join("subs.parquet"),
        dir.path().join("ev.parquet"),
    );
    std::fs::copy(good().subscribers(), &subs).unwrap();
    std::fs::copy(good().events(), &events).unwrap();
    let cfg = config(dir.path(), &subs, &events, "if_missing", "");
    ok(&["-q", "run", s(&cfg)]);
    let before = snapshot(dir.path());
    // the night after, the interactions arrive with other ids
    write(&events, &events_with_new_ids());
    let broken = snapshot(dir.path());
    let err = fails(3, &["run", s(&cfg)]);
    assert!(err.contains("`matched_events`"), "{err}");
    assert!(err.contains("`matched_events_vs_previous`"), "{err}");
    assert_eq!(snapshot(dir.path()), broken, "run changed files");
    // retraining on the broken night stops before the model is replaced
    let cfg = config(dir.path(), &subs, &events, "always", "");
    let broken = snapshot(dir.path());
    let err = fails(3, &["run", s(&cfg)]);
    assert!(err.contains("failed at 2026-03-01"), "{err}");
    assert_eq!(snapshot(dir.path()), broken, "run changed files");
    // the config's [guards] table, or --allow, lets it go on
    let cfg = config(
        dir.path(),
        &subs,
        &events,
        "if_missing",
        "[guards]\nallow = [\"matched_events\", \"subscribers_with_events\"]\n",
    );
    fails(3, &["run", s(&cfg)]);
    ok(&["-q", "run", s(&cfg), "--allow", "all"]);
    let manifest = std::fs::read_to_string(dir.path().join("out/manifest.json")).unwrap();
    assert!(manifest.contains("\"status\": \"allowed\""), "{manifest}");
    assert_ne!(snapshot(dir.path()), before);
}

#[test]
fn train_and_features_stop_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("ev.parquet");
    write(&events, &events_with_ts(1000.0));
    let subs = good().subscribers();
    let model = dir.path().join("model");
    let err = fails(
        3,
        &[
            "train",
            "--subscribers",
            s(&subs),
            "--interactions",
            s(&events),
            "--as-of",
            "2026-03-01",
            "--out",
            s(&model),
        ],
    );
    assert!(err.contains("`future_events`"), "{err}");
    assert!(!model.exists());
    let out = dir.path().join("f.parquet");
    fails(
        3,
        &[
            "features",
            "--subscribers",
            s(&subs),
            "--interactions",
            s(&events),
            "--as-of",
            "2026-03-01",
            "--out",
            s(&out),
        ],
    );
    assert!(!out.exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "only ev.parquet"
    );
}

#[test]
fn validate_runs_the_same_guards() {
    let dir = tempfile::tempdir().unwrap();
    let (subs, events) = (good().subscribers(), good().events());
    let log = ok(&[
        "validate",
        "--subscribers",
        s(&subs),
        "--interactions",
        s(&events),
    ]);
    assert!(
        log.contains("(the day after the newest subscriber date)"),
        "{log}"
    );
    assert!(
        log.contains("guards       5 passed, 4 not applicable"),
        "{log}"
    );
    let broken = dir.path().join("ev.parquet");
    write(&broken, &events_with_ts(1000.0));
    let err = fails(
        3,
        &[
            "validate",
            "--subscribers",
            s(&subs),
            "--interactions",
            s(&broken),
        ],
    );
    assert!(err.contains("`future_events`"), "{err}");
    // at an explicit date long after the data, the events are stale
    let err = fails(
        3,
        &[
            "validate",
            "--subscribers",
            s(&subs),
            "--interactions",
            s(&events),
            "--as-of",
            "2027-06-01",
        ],
    );
    assert!(err.contains("`stale_events`"), "{err}");
    assert!(err.contains("2027-06-01 (--as-of)"), "{err}");
}

/// The batch with column `index` once more at the end, under the same name.
fn with_repeated_column(batch: &RecordBatch, index: usize) -> RecordBatch {
    let schema = batch.schema();
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(fields[index].clone());
    let mut columns = batch.columns().to_vec();
    columns.push(columns[index].clone());
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
}

/// Subscribers 1, 2, … with the given money and signup days (none churned).
fn small_subscribers(revenue: Vec<f64>, cost: Vec<f64>, signup: Vec<i32>) -> RecordBatch {
    let n = revenue.len();
    RecordBatch::try_from_iter([
        (
            "subscriber_id",
            Arc::new(Int64Array::from_iter_values(1..=n as i64)) as ArrayRef,
        ),
        (
            "signup_date",
            Arc::new(Date32Array::from(signup)) as ArrayRef,
        ),
        (
            "churn_date",
            Arc::new(Date32Array::from(vec![None::<i32>; n])) as ArrayRef,
        ),
        (
            "monthly_revenue",
            Arc::new(Float64Array::from(revenue)) as ArrayRef,
        ),
        (
            "monthly_cost",
            Arc::new(Float64Array::from(cost)) as ArrayRef,
        ),
    ])
    .unwrap()
}

const DEC_2025: i64 = 1_764_547_200_000_000; // 2025-12-01, µs

#[test]
fn values_out_of_their_domain_are_reported_counted_and_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let subs = dir.path().join("subs.parquet");
    write(
        &subs,
        &small_subscribers(
            vec![20.0, f64::INFINITY, 30.0],
            vec![5.0, 5.0, f64::NAN],
            vec![20_000, -40_000, 20_000], // 2024-10-04, and 1860
        ),
    );
    let n = 6;
    let events = RecordBatch::try_from_iter([
        (
            "subscriber_id",
            Arc::new(Int64Array::from(vec![1, 1, 1, 1, 2, 3])) as ArrayRef,
        ),
        (
            "ts",
            Arc::new(TimestampMicrosecondArray::from(vec![DEC_2025; n]).with_timezone("UTC"))
                as ArrayRef,
        ),
        (
            "touchpoint",
            Arc::new(StringArray::from(vec!["call_centre_call"; n])) as ArrayRef,
        ),
        (
            "satisfaction",
            Arc::new(Float64Array::from(vec![
                Some(4.0),
                Some(99.0),
                Some(-7.0),
                None,
                Some(f64::NAN),
                Some(2.0),
            ])) as ArrayRef,
        ),
        (
            "revenue",
            Arc::new(Float64Array::from(vec![
                Some(1.0),
                Some(f64::INFINITY),
                None,
                None,
                Some(2.0),
                Some(f64::NEG_INFINITY),
            ])) as ArrayRef,
        ),
        (
            "duration_s",
            Arc::new(Float64Array::from(vec![
                Some(60.0),
                Some(-5.0),
                Some(120.0),
                None,
                None,
                Some(f64::INFINITY),
            ])) as ArrayRef,
        ),
    ])
    .unwrap();
    let ev = dir.path().join("ev.parquet");
    write(&ev, &events);
    let log = ok(&[
        "validate",
        "--subscribers",
        s(&subs),
        "--interactions",
        s(&ev),
        "--as-of",
        "2026-01-01",
    ]);
    for needle in [
        "1 monthly_revenue ±inf or NaN (treated as missing)",
        "1 monthly_cost ±inf or NaN (treated as missing (0))",
        "1 signup_date before 1900 or after 2099 (kept)",
        "3 events with satisfaction outside 1-5 or NaN (ignored as no rating)",
        "2 events with revenue ±inf or NaN (ignored)",
        "2 events with duration_s negative or not finite (ignored)",
    ] {
        assert!(log.contains(needle), "expected {needle:?} in: {log}");
    }
    let out = dir.path().join("f.parquet");
    ok(&[
        "features",
        "--subscribers",
        s(&subs),
        "--interactions",
        s(&ev),
        "--as-of",
        "2026-01-01",
        "--extended",
        "--out",
        s(&out),
    ]);
    let f = read(&out);
    let col = |name: &str| {
        let c = f.column_by_name(name).unwrap();
        let c = arrow::compute::cast(c, &DataType::Float64).unwrap();
        c.as_primitive::<arrow::datatypes::Float64Type>()
            .iter()
            .collect::<Vec<_>>()
    };
    // subscriber 1: only the rating 4 counts, only revenue 1, only the durations 60 and 120
    assert_eq!(
        col("satisfaction_mean_90d"),
        vec![Some(4.0), None, Some(2.0)]
    );
    assert_eq!(
        col("low_satisfaction_90d"),
        vec![Some(0.0), Some(0.0), Some(1.0)]
    );
    assert_eq!(col("personnel_duration_mean_90d")[0], Some(90.0));
    assert_eq!(col("personnel_duration_mean_90d")[2], None);
    // infinite monthly revenue is missing revenue; NaN monthly cost counts as 0
    assert_eq!(col("revenue_90d"), vec![Some(61.0), None, Some(90.0)]);
    assert_eq!(col("cost_90d"), vec![Some(15.0), Some(15.0), Some(0.0)]);
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("f.manifest.json")).unwrap())
            .unwrap();
    let domain = &manifest["events"]["out_of_domain"];
    assert_eq!(domain["satisfaction_out_of_range"], 3);
    assert_eq!(domain["revenue_non_finite"], 2);
    assert_eq!(domain["duration_s_invalid"], 2);
    let subs_domain = &manifest["inputs"]["subscribers"]["out_of_domain"];
    assert_eq!(subs_domain["monthly_revenue_non_finite"], 1);
    assert_eq!(subs_domain["signup_date_out_of_range"], 1);
}

#[test]
fn too_many_threads_are_capped_with_a_message() {
    let (subs, events) = (good().subscribers(), good().events());
    let log = ok(&[
        "--threads",
        "100000",
        "validate",
        "--subscribers",
        s(&subs),
        "--interactions",
        s(&events),
    ]);
    assert!(
        log.contains("warning: --threads 100000 is more than this machine can use; using"),
        "{log}"
    );
}

#[test]
fn previous_must_be_a_scored_table() {
    let dir = tempfile::tempdir().unwrap();
    let subs = good().subscribers();
    let events = dir.path().join("ev.parquet");
    std::fs::copy(good().events(), &events).unwrap();
    // the subscriber file given as --previous by mistake
    let (code, err) = score_night(
        dir.path(),
        (&subs, &events),
        "2026-06-15",
        Previous::File(&subs),
        &[],
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("subscribers.parquet is not a scored table"),
        "{err}"
    );
    assert!(err.contains("no column `value_segment`"), "{err}");
    assert!(err.contains("no column `risk_decile`"), "{err}");
    assert_output_unchanged(dir.path());
}

#[test]
fn subscriber_columns_named_like_features_are_refused_or_excluded() {
    let dir = tempfile::tempdir().unwrap();
    let base = small_subscribers(vec![20.0, 30.0], vec![1.0, 1.0], vec![20_000, 20_000]);
    let clash = RecordBatch::try_from_iter(
        base.schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .zip(base.columns().iter().cloned())
            .chain([
                (
                    "tenure_days".to_string(),
                    Arc::new(Int64Array::from(vec![7, 8])) as ArrayRef,
                ),
                (
                    "profit_90d".to_string(),
                    Arc::new(Float64Array::from(vec![1.0, 2.0])) as ArrayRef,
                ),
            ]),
    )
    .unwrap();
    let subs = dir.path().join("subs.parquet");
    write(&subs, &clash);
    let out = dir.path().join("f.parquet");
    let (subs_arg, out_arg) = (s(&subs), s(&out));
    let args = |extra: &[&'static str]| {
        let mut a = vec![
            "features",
            "--subscribers",
            subs_arg,
            "--as-of",
            "2026-01-01",
            "--out",
            out_arg,
        ];
        a.extend_from_slice(extra);
        a
    };
    let err = fails(2, &args(&[]));
    assert!(
        err.contains("subs.parquet: column(s) `tenure_days`, `profit_90d` have the name"),
        "{err}"
    );
    assert!(!out.exists());
    ok(&args(&["--exclude-columns", "tenure_days,profit_90d"]));
    let f = read(&out);
    let names: Vec<&String> = f.schema_ref().fields().iter().map(|f| f.name()).collect();
    let unique: HashSet<&&String> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "{names:?}");
    let manifest = std::fs::read_to_string(dir.path().join("f.manifest.json")).unwrap();
    assert!(manifest.contains("excluded on request"), "{manifest}");
    // a column to exclude that the file lacks is named
    let err = fails(
        2,
        &args(&["--exclude-columns", "tenure_days,profit_90d,colour"]),
    );
    assert!(err.contains("column(s) `colour` to exclude"), "{err}");
}

#[test]
fn duplicate_column_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let base = small_subscribers(vec![20.0, 30.0], vec![1.0, 1.0], vec![20_000, 20_000]);
    let plan: ArrayRef = Arc::new(StringArray::from(vec!["a", "b"]));
    let with_plan = RecordBatch::try_from_iter(
        base.schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .zip(base.columns().iter().cloned())
            .chain([("plan".to_string(), plan)]),
    )
    .unwrap();
    let batch = with_repeated_column(&with_plan, 5);
    let subs = dir.path().join("subs.parquet");
    write(&subs, &batch);
    let out = dir.path().join("f.parquet");
    let err = fails(
        2,
        &[
            "validate",
            "--subscribers",
            s(&subs),
            "--as-of",
            "2026-01-01",
        ],
    );
    assert!(err.contains("duplicate column name(s) `plan`"), "{err}");
    assert!(!out.exists());
    // and in the interactions
    let ev = with_repeated_column(&read(&good().events()).slice(0, 10), 1);
    let events = dir.path().join("ev.parquet");
    write(&events, &ev);
    let subs = good().subscribers();
    let err = fails(
        2,
        &[
            "validate",
            "--subscribers",
            s(&subs),
            "--interactions",
            s(&events),
        ],
    );
    assert!(err.contains("ev.parquet has 1 problem(s)"), "{err}");
    assert!(err.contains("duplicate column name(s) `ts`"), "{err}");
}

#[test]
fn every_config_problem_is_reported_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(
        &cfg,
        "[inputs]\nsubscribers = 5\nexclude_columns = [\"a\", \"a\"]\n\
         [train]\nas_of = \"2026-03-01\"\nmodel = \"m\"\nboosting = { n_trees = \"many\" }\nhorizon_days = 0\n\
         [score]\nas_of = \"2026-06-01\"\nbudget = \"lots\"\n[output]\ndir = \"o\"\n\
         [guards]\nmin_matched_event_share = 2\nallow = [\"matched\"]\nshout = true\n",
    )
    .unwrap();
    let err = fails(2, &["run", s(&cfg)]);
    for needle in [
        "`inputs.subscribers`",
        "`train.boosting`",
        "`score.budget`",
        "`guards.shout`",
        "`train.horizon_days` must be at least 1",
        "`guards.min_matched_event_share` must be between 0 and 1",
        "`matched` is not a health guard",
        "names `a` twice",
    ] {
        assert!(err.contains(needle), "expected {needle:?} in: {err}");
    }
    assert!(!dir.path().join("o").exists());
    // columns to exclude that the subscriber file lacks come with the type errors
    let subs = good().subscribers();
    std::fs::write(
        &cfg,
        format!(
            "[inputs]\nsubscribers = \"{}\"\nexclude_columns = [\"plan\", \"colour\"]\n\
             [train]\nas_of = \"2026-03-01\"\nmodel = \"m\"\nn_trees = \"many\"\n\
             [score]\nas_of = \"2026-06-01\"\n[output]\ndir = \"o\"\n",
            s(&subs)
        ),
    )
    .unwrap();
    let err = fails(2, &["run", s(&cfg)]);
    assert!(err.contains("has 2 problem(s)"), "{err}");
    assert!(
        err.contains("`train.n_trees` is now `n_trees` in `[train.boosting]`"),
        "{err}"
    );
    assert!(
        err.contains("`inputs.exclude_columns` names column(s) `colour` that"),
        "{err}"
    );
}
