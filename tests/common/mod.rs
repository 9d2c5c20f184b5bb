//! Helpers shared by the integration tests: run the `churnseg` binary, read Parquet.
#![allow(dead_code)] // each test binary uses its own subset

use std::path::Path;
use std::process::{Command, Output};

use arrow::array::{Array, AsArray, RecordBatch};

/// Runs the binary with `args`.
pub fn churnseg(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_churnseg"))
        .args(args)
        .output()
        .expect("the binary runs")
}

/// Runs the binary, asserts that it succeeded and returns what it logged (stderr).
pub fn ok(args: &[&str]) -> String {
    let out = churnseg(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "churnseg {args:?} failed:\n{stderr}");
    stderr
}

/// `churnseg score` of the generated data in `data` at `as_of` with `model` into `out`.
pub fn score(data: &Path, as_of: &str, model: &Path, out: &Path) -> Output {
    churnseg(&[
        "score",
        "--subscribers",
        s(&data.join("subscribers.parquet")),
        "--interactions",
        s(&data.join("interactions.parquet")),
        "--as-of",
        as_of,
        "--model",
        s(model),
        "--out",
        s(out),
    ])
}

/// A whole Parquet file as one batch.
pub fn read(path: &Path) -> RecordBatch {
    let file = std::fs::File::open(path).unwrap();
    let reader =
        parquet::arrow::arrow_reader::ParquetRecordBatchReader::try_new(file, 1 << 20).unwrap();
    let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
    arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap()
}

/// A Utf8 column as strings (`None` for nulls).
pub fn strings(batch: &RecordBatch, name: &str) -> Vec<Option<String>> {
    let c = batch.column_by_name(name).unwrap().as_string::<i32>();
    (0..c.len())
        .map(|i| c.is_valid(i).then(|| c.value(i).to_string()))
        .collect()
}

/// A path as `&str`, for arguments.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Small generated data (1500 subscribers, 240 days, seed 11; string ids when
/// `string_ids`) under `root/data`, and a by-date nightly job over it at
/// `root/nightly.toml`: retrain every 30 days, one snapshot, a budget, output in
/// `root/out`, the model in `root/models/nightly`.
pub fn nightly_setup(root: &Path, string_ids: bool) -> std::path::PathBuf {
    let data = root.join("data");
    let mut args = vec![
        "-q",
        "generate",
        "--subscribers",
        "1500",
        "--days",
        "240",
        "--seed",
        "11",
        "--out",
        s(&data),
    ];
    if string_ids {
        args.push("--string-ids");
    }
    ok(&args);
    let config = root.join("nightly.toml");
    std::fs::write(
        &config,
        format!(
            "name = \"nightly\"\nseed = 5\n[inputs]\nsubscribers = \"{}\"\ninteractions = \"{}\"\n\
             [train]\nretrain = \"every 30d\"\nas_of = \"-60d\"\nhorizon_days = 30\nboosting = {{ n_trees = 15 }}\nsnapshots = 1\nmodel = \"{}\"\n\
             [score]\nas_of = \"yesterday\"\nbudget = 400.0\noffer_cost = 2.0\n\
             [report]\ncurrency = \"¥\"\n[output]\ndir = \"{}\"\n",
            s(&data.join("subscribers.parquet")),
            s(&data.join("interactions.parquet")),
            s(&root.join("models/nightly")),
            s(&root.join("out")),
        ),
    )
    .unwrap();
    config
}
