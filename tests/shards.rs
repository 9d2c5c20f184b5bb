//! Sharded runs (issue 17): `features`, `score` and `train` give the same bytes for any
//! `--shards K` (and `train --sample N` the same sample), write part files and
//! `_SUCCESS` for a directory, remove their scratch directory after success and failure,
//! and keep clear errors and the previous outputs.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use arrow::array::{Array, AsArray, RecordBatch, RecordBatchReader};
use proptest::prelude::*;

mod common;
use common::{churnseg, ok, read, s};

/// Small generated data with string ids and a model trained on it (once per binary).
fn data() -> &'static (PathBuf, PathBuf) {
    static DIR: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("churnseg-shards-{}", std::process::id()));
        let data = dir.join("data");
        let model = dir.join("model");
        ok(&[
            "generate",
            "--subscribers",
            "1500",
            "--days",
            "200",
            "--seed",
            "3",
            "--string-ids",
            "--out",
            s(&data),
        ]);
        ok(&[
            "train",
            "--subscribers",
            s(&data.join("subscribers.parquet")),
            "--interactions",
            s(&data.join("interactions.parquet")),
            "--as-of",
            "2026-03-01",
            "--horizon",
            "60",
            "--trees",
            "20",
            "--out",
            s(&model),
        ]);
        (data, model)
    })
}

fn inputs(data: &Path) -> [String; 4] {
    [
        "--subscribers".into(),
        data.join("subscribers.parquet").display().to_string(),
        "--interactions".into(),
        data.join("interactions.parquet").display().to_string(),
    ]
}

/// Runs `command` on the shared data with `extra` flags, writing `out`.
fn run(command: &str, out: &Path, extra: &[&str]) -> std::process::Output {
    let (data, model) = data();
    let mut args: Vec<String> = vec![command.into()];
    args.extend(inputs(data));
    args.extend([
        "--as-of".into(),
        "2026-06-01".into(),
        "--out".into(),
        out.display().to_string(),
    ]);
    if command == "score" {
        args.extend([
            "--model".into(),
            model.display().to_string(),
            "--budget".into(),
            "800".into(),
        ]);
    }
    args.extend(extra.iter().map(|a| a.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    churnseg(&refs)
}

fn succeed(command: &str, out: &Path, extra: &[&str]) {
    let o = run(command, out, extra);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// The unsharded outputs, written once.
fn reference(command: &'static str) -> &'static Vec<u8> {
    static FEATURES: OnceLock<Vec<u8>> = OnceLock::new();
    static SCORE: OnceLock<Vec<u8>> = OnceLock::new();
    let cell = if command == "score" {
        &SCORE
    } else {
        &FEATURES
    };
    cell.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("reference.parquet");
        succeed(
            command,
            &out,
            &["--extended"]
                .into_iter()
                .filter(|_| command == "features")
                .collect::<Vec<_>>(),
        );
        std::fs::read(out).unwrap()
    })
}

/// Everything in `dir` whose name starts with a dot (scratch and temporary files).
fn hidden(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect()
}

#[test]
fn score_is_byte_identical_for_1_2_and_7_shards() {
    let dir = tempfile::tempdir().unwrap();
    for k in ["1", "2", "7"] {
        let out = dir.path().join(format!("scored-{k}.parquet"));
        succeed("score", &out, &["--shards", k]);
        assert!(
            std::fs::read(&out).unwrap() == *reference("score"),
            "--shards {k} differs"
        );
    }
    assert_eq!(
        hidden(dir.path()),
        Vec::<String>::new(),
        "scratch left behind"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4, ..ProptestConfig::default() })]
    #[test]
    fn features_do_not_depend_on_the_number_of_shards(k in 1u32..10) {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("features.parquet");
        succeed("features", &out, &["--extended", "--shards", &k.to_string()]);
        prop_assert!(std::fs::read(&out).unwrap() == *reference("features"), "--shards {} differs", k);
        prop_assert_eq!(hidden(dir.path()), Vec::<String>::new());
    }
}

fn sorted_ids(batch: &RecordBatch) -> Vec<String> {
    let ids = batch
        .column_by_name("subscriber_id")
        .unwrap()
        .as_string::<i32>();
    let mut v: Vec<String> = (0..ids.len()).map(|i| ids.value(i).to_string()).collect();
    v.sort();
    v
}

#[test]
fn a_directory_gets_one_part_per_shard_and_success_last() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("scored");
    // a first run with more shards leaves parts the second must empty
    succeed("score", &out.join(""), &["--shards", "5"]);
    succeed("score", &out.join(""), &["--shards", "3"]);
    let parts: Vec<PathBuf> = (0..5)
        .map(|k| out.join(format!("part-{k:05}.parquet")))
        .collect();
    let success = out.join("_SUCCESS");
    assert!(success.exists());
    let modified = |p: &Path| std::fs::metadata(p).unwrap().modified().unwrap();
    for p in &parts {
        assert!(
            modified(p) <= modified(&success),
            "{} after _SUCCESS",
            p.display()
        );
    }
    let batches: Vec<RecordBatch> = parts.iter().map(|p| read_or_empty(p)).collect();
    assert!(
        batches[3].num_rows() == 0 && batches[4].num_rows() == 0,
        "stale parts not emptied"
    );
    let whole = read(&{
        let f = dir.path().join("whole.parquet");
        std::fs::write(&f, reference("score")).unwrap();
        f
    });
    let mut rows = Vec::new();
    for b in &batches {
        rows.extend(sorted_ids(b));
    }
    rows.sort();
    assert_eq!(rows, sorted_ids(&whole));
    // each shard's part holds exactly the ids that hash to it
    for (k, b) in batches.iter().take(3).enumerate() {
        for id in sorted_ids(b) {
            assert_eq!(
                churnseg::shard::pmod(churnseg::shard::xxhash64_str(&id), 3),
                k as u32
            );
        }
    }
    assert!(out.join("manifest.json").exists());
}

fn read_or_empty(path: &Path) -> RecordBatch {
    let file = std::fs::File::open(path).unwrap();
    let reader =
        parquet::arrow::arrow_reader::ParquetRecordBatchReader::try_new(file, 1 << 20).unwrap();
    let schema = reader.schema();
    let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
    arrow::compute::concat_batches(&schema, &batches).unwrap()
}

/// The shared subscriber table with the first id that `pick` accepts written twice, as
/// `bad_subscribers.parquet` in `dir`; returns its path and the id.
fn with_duplicate(dir: &Path, pick: impl Fn(&str) -> bool) -> (PathBuf, String) {
    let (data, _) = data();
    let subs = read(&data.join("subscribers.parquet"));
    let ids = subs
        .column_by_name("subscriber_id")
        .unwrap()
        .as_string::<i32>();
    let row = (ids.len() / 2..ids.len())
        .find(|&r| pick(ids.value(r)))
        .unwrap();
    let twice = ids.value(row).to_string();
    let extra = subs.slice(row, 1);
    let bad = arrow::compute::concat_batches(&subs.schema(), &[subs.clone(), extra]).unwrap();
    let bad_path = dir.join("bad_subscribers.parquet");
    let file = std::fs::File::create(&bad_path).unwrap();
    let mut w =
        parquet::arrow::ArrowWriter::try_new(file, Arc::clone(&bad.schema()), None).unwrap();
    w.write(&bad).unwrap();
    w.close().unwrap();
    (bad_path, twice)
}

#[test]
fn a_duplicate_id_in_one_shard_is_named_and_the_previous_output_kept() {
    let (data, model) = data();
    let dir = tempfile::tempdir().unwrap();
    // the subscriber table with one id written twice
    let (bad_path, twice) = with_duplicate(dir.path(), |_| true);

    let out = dir.path().join("scored.parquet");
    succeed("score", &out, &["--shards", "7"]);
    let before = std::fs::read(&out).unwrap();

    let o = churnseg(&[
        "score",
        "--subscribers",
        s(&bad_path),
        "--interactions",
        s(&data.join("interactions.parquet")),
        "--as-of",
        "2026-06-01",
        "--model",
        s(model),
        "--shards",
        "7",
        "--out",
        s(&out),
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("duplicate subscriber id {twice:?}"))
            && stderr.contains("bad_subscribers.parquet"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        std::fs::read(&out).unwrap(),
        before,
        "previous output replaced"
    );
    assert_eq!(
        hidden(dir.path()),
        Vec::<String>::new(),
        "scratch left behind after the failure"
    );
}

#[test]
fn max_memory_picks_shards_and_refuses_a_budget_too_small() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("scored.parquet");
    let o = run("score", &out, &["--max-memory", "1MiB"]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--max-memory 1.0 MiB is too small"),
        "{stderr}"
    );
    succeed("score", &out, &["--max-memory", "4GiB"]);
    assert!(std::fs::read(&out).unwrap() == *reference("score"));
}

/// Trains on the shared data with `extra` flags into `dir/model` (the model is named
/// after its directory, so every run names it alike); returns model.json and
/// metrics.json.
fn train(dir: &Path, extra: &[&str]) -> (Vec<u8>, Vec<u8>) {
    let out = dir.join("model");
    let (data, _) = data();
    let mut args: Vec<String> = vec!["train".into()];
    args.extend(inputs(data));
    for a in [
        "--as-of",
        "2026-03-01",
        "--horizon",
        "60",
        "--trees",
        "20",
        "--out",
    ] {
        args.push(a.into());
    }
    args.push(out.display().to_string());
    args.extend(extra.iter().map(|a| a.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = churnseg(&refs);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    (
        std::fs::read(out.join("model.json")).unwrap(),
        std::fs::read(out.join("metrics.json")).unwrap(),
    )
}

#[test]
fn train_is_byte_identical_for_1_2_and_7_shards() {
    let dir = tempfile::tempdir().unwrap();
    let reference = train(&dir.path().join("whole"), &[]);
    for k in ["1", "2", "7"] {
        let sharded = train(&dir.path().join(format!("k{k}")), &["--shards", k]);
        assert!(
            sharded.0 == reference.0,
            "model.json differs for --shards {k}"
        );
        assert!(
            sharded.1 == reference.1,
            "metrics.json differs for --shards {k}"
        );
    }
}

/// The sample of one shard, drawn once.
fn sampled_reference() -> &'static (Vec<u8>, Vec<u8>) {
    static CELL: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    CELL.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        train(&dir.path().join("sampled"), &["--sample", "900"])
    })
}

#[test]
fn a_sample_says_how_many_it_kept_of_how_many() {
    let (model, metrics) = sampled_reference();
    let metrics: serde_json::Value = serde_json::from_slice(metrics).unwrap();
    assert_eq!(metrics["metrics"]["sample"]["asked"], 900);
    assert_eq!(metrics["metrics"]["sample"]["sampled"], 900);
    assert_eq!(metrics["metrics"]["sample"]["of"], 1500);
    let dir = tempfile::tempdir().unwrap();
    let whole = train(&dir.path().join("whole"), &[]);
    assert!(
        whole.0 != *model,
        "the sample trained the same model as everyone"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3, ..ProptestConfig::default() })]
    #[test]
    fn a_sample_does_not_depend_on_the_number_of_shards(k in 2u32..9) {
        let dir = tempfile::tempdir().unwrap();
        let sharded = train(dir.path(), &["--sample", "900", "--shards", &k.to_string()]);
        prop_assert!(sharded == *sampled_reference(), "--sample 900 --shards {} differs", k);
    }
}

#[test]
fn a_duplicate_id_in_shard_5_is_named_when_training() {
    let dir = tempfile::tempdir().unwrap();
    let (bad_path, twice) = with_duplicate(dir.path(), |id| {
        churnseg::shard::pmod(churnseg::shard::xxhash64_str(id), 7) == 5
    });
    let (data, _) = data();
    let out = dir.path().join("model");
    let o = churnseg(&[
        "train",
        "--subscribers",
        s(&bad_path),
        "--interactions",
        s(&data.join("interactions.parquet")),
        "--as-of",
        "2026-03-01",
        "--shards",
        "7",
        "--out",
        s(&out),
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("duplicate subscriber id {twice:?}"))
            && stderr.contains("bad_subscribers.parquet"),
        "{stderr}"
    );
    assert!(stderr.contains("shard 6 of 7"), "{stderr}");
    assert!(
        !stderr.contains("panicked") && !out.join("model.json").exists(),
        "{stderr}"
    );
}
