//! Sharded runs on the real sets (issue 17): `features`, `score` and `train` give the
//! bytes of an unsharded run for `--shards 1`, `2` and `7` on each subscriber-only real
//! data set of `../shared/datasets` (Int64 and Utf8 ids, categorical columns, real
//! quirks). The sets live beside the repository, not in it: without them the test says
//! so and passes.

use std::path::{Path, PathBuf};

mod common;
use common::{churnseg, s};

// the two smaller sets (Utf8 and Int64 ids): the bank set's 10 000 rows add time, not cases
const SETS: [&str; 2] = [
    "iranian_telecom_subscribers.parquet",
    "ibm_hr_attrition_subscribers.parquet",
];

fn datasets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets")
}

fn succeed(args: &[&str]) {
    let o = churnseg(args);
    assert!(
        o.status.success(),
        "churnseg {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Runs `command` on `set` into `out` with `extra` flags; returns the written bytes
/// (`model.json` and `metrics.json` for `train`).
fn bytes(command: &str, set: &Path, out: &Path, model: &Path, extra: &[&str]) -> Vec<u8> {
    let mut args = vec![
        "-q",
        command,
        "--subscribers",
        s(set),
        "--as-of",
        "2026-01-01",
        "--out",
        s(out),
    ];
    match command {
        "train" => args.extend(["--horizon", "30", "--trees", "15", "--snapshots", "1"]),
        "score" => args.extend(["--model", s(model), "--budget", "500"]),
        _ => args.push("--extended"),
    }
    args.extend(extra);
    succeed(&args);
    match command {
        "train" => [
            std::fs::read(out.join("model.json")).unwrap(),
            std::fs::read(out.join("metrics.json")).unwrap(),
        ]
        .concat(),
        _ => std::fs::read(out).unwrap(),
    }
}

#[test]
fn the_real_sets_give_the_same_bytes_for_any_number_of_shards() {
    let dir = datasets();
    if !dir.join(SETS[0]).exists() {
        eprintln!("skipped: no real sets in {}", dir.display());
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    for set in SETS {
        let path = dir.join(set);
        let root = tmp.path().join(set);
        let model = root.join("model");
        let whole_model = bytes("train", &path, &model, &model, &[]);
        for command in ["train", "features", "score"] {
            let out = |k: &str| match command {
                // a model is named after its directory: the same name for every K
                "train" => root.join(format!("k{k}")).join("model"),
                _ => root.join(format!("{command}-{k}.parquet")),
            };
            let whole = match command {
                "train" => whole_model.clone(),
                _ => bytes(command, &path, &out("whole"), &model, &[]),
            };
            // training is the slow one: K = 7 against the whole
            let counts: &[&str] = if command == "train" {
                &["7"]
            } else {
                &["1", "2", "7"]
            };
            for &k in counts {
                let sharded = bytes(command, &path, &out(k), &model, &["--shards", k]);
                assert!(sharded == whole, "{set}: {command} --shards {k} differs");
            }
        }
    }
}
