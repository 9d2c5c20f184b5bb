//! The nightly job as a scheduler runs it (issue 19): `run --as-of` night after night
//! into one output directory gives a folder per night, movement against the night
//! before, a run index, realised performance once a horizon is over, retraining on a
//! cadence, and a contact list a campaign tool can read.

use std::fs;
use std::path::Path;

use arrow::array::AsArray;

mod common;
use common::{churnseg, nightly_setup, ok, read, s};

/// Three nights: the first a horizon (30 days) and more before the last.
const NIGHTS: [&str; 3] = ["2026-05-01", "2026-05-16", "2026-06-01"];

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

#[test]
fn three_nights_give_three_partitions_movement_an_index_and_realised_figures() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let config = nightly_setup(root, false);
    let out = root.join("out");
    for night in NIGHTS {
        ok(&["-q", "run", s(&config), "--as-of", night]);
    }

    // one folder per night, each complete
    for night in NIGHTS {
        let dir = out.join(format!("as_of={night}"));
        for f in [
            "scored.parquet",
            "manifest.json",
            "report.html",
            "contacts.csv",
        ] {
            assert!(dir.join(f).is_file(), "missing {}", dir.join(f).display());
        }
        let m = json(&dir.join("manifest.json"));
        assert_eq!(m["dates"]["as_of"], night);
        assert_eq!(m["dates"]["as_of_from"], "--as-of");
        assert_eq!(m["dates"]["train_as_of_rule"], "-60d");
    }
    assert_eq!(
        fs::read_to_string(out.join("latest")).unwrap(),
        "as_of=2026-06-01\n"
    );

    // movement against the night before, never against a later one
    let manifests: Vec<serde_json::Value> = NIGHTS
        .iter()
        .map(|n| json(&out.join(format!("as_of={n}/manifest.json"))))
        .collect();
    assert!(manifests[0]["movement"].is_null());
    assert!(manifests[0]["previous_as_of"].is_null());
    for k in 1..3 {
        assert_eq!(manifests[k]["previous_as_of"], NIGHTS[k - 1]);
        assert!(manifests[k]["movement"]["matched"].as_u64().unwrap() > 100);
    }

    // the train date follows the night (-60d), and the model is retrained every 30 days
    assert_eq!(manifests[0]["dates"]["train_as_of"], "2026-03-02");
    assert_eq!(manifests[2]["dates"]["train_as_of"], "2026-04-02");
    let trained: Vec<bool> = manifests
        .iter()
        .map(|m| m["retrain"]["trained"].as_bool().unwrap())
        .collect();
    assert_eq!(trained, [true, false, true], "{manifests:?}");
    let why = manifests[1]["retrain"]["reason"].as_str().unwrap();
    assert!(
        why.contains("15 days") && why.contains("every 30d"),
        "{why}"
    );

    // the run index: three rows, oldest first
    let index = fs::read_to_string(out.join("runs.jsonl")).unwrap();
    let rows: Vec<serde_json::Value> = index
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 3);
    for (row, night) in rows.iter().zip(NIGHTS) {
        assert_eq!(row["as_of"], night);
        assert!(row["scored"].as_u64().unwrap() > 500);
    }

    // realised: the first night's horizon (30 days) is over by the last night only
    assert!(rows[0]["realised"].as_array().unwrap().is_empty());
    assert!(rows[1]["realised"].as_array().unwrap().is_empty());
    let realised = rows[2]["realised"].as_array().unwrap();
    assert_eq!(realised.len(), 1, "{realised:?}");
    let r = &realised[0];
    assert_eq!(r["judged_as_of"], NIGHTS[0]);
    assert_eq!(r["observed_until"], "2026-05-31");
    let auc = r["roc_auc"].as_f64().unwrap();
    assert!(auc > 0.55 && auc <= 1.0, "realised ROC AUC {auc}");
    assert!(r["churned"].as_u64().unwrap() > 0);
    assert!(r["targeted"]["subscribers"].as_u64().unwrap() > 0);
    assert_eq!(manifests[2]["realised"], rows[2]["realised"]);
    let report = fs::read_to_string(out.join("as_of=2026-06-01/report.html")).unwrap();
    assert!(report.contains("Did the predictions come true?"));
    assert!(report.contains("Whom to contact") && report.contains("¥"));

    // the contact list reads back: one row per targeted subscriber, best first
    let night = out.join("as_of=2026-06-01");
    let mut reader = csv::Reader::from_path(night.join("contacts.csv")).unwrap();
    let header = reader.headers().unwrap().clone();
    assert_eq!(&header[1], "subscriber_id");
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let targeted = manifests[2]["scored"]["targeting"]["targeted"]
        .as_u64()
        .unwrap();
    assert_eq!(records.len() as u64, targeted);
    let returns: Vec<f64> = records.iter().map(|r| r[6].parse().unwrap()).collect();
    assert!(returns.windows(2).all(|w| w[0] >= w[1]), "{returns:?}");
    let scored = read(&night.join("scored.parquet"));
    let ids = arrow::compute::cast(
        scored.column_by_name("subscriber_id").unwrap(),
        &arrow::datatypes::DataType::Utf8,
    )
    .unwrap();
    let ids = ids.as_string::<i32>();
    assert!(ids.iter().any(|id| id == Some(&records[0][1])));
}

#[test]
fn a_refused_night_leaves_the_history_as_it_was() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let config = nightly_setup(root, false);
    let out = root.join("out");
    ok(&["-q", "run", s(&config), "--as-of", NIGHTS[0]]);
    let index = fs::read(out.join("runs.jsonl")).unwrap();
    // a training date whose horizon is not over by the night is refused, clearly
    let text = fs::read_to_string(&config)
        .unwrap()
        .replace("as_of = \"-60d\"", "as_of = \"-20d\"")
        .replace("every 30d", "always");
    fs::write(&config, text).unwrap();
    let refused = churnseg(&["run", s(&config), "--as-of", NIGHTS[1]]);
    assert_eq!(refused.status.code(), Some(2));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("`train.as_of = \"-20d\"`") && err.contains("-30d"),
        "{err}"
    );
    assert_eq!(fs::read(out.join("runs.jsonl")).unwrap(), index);
    assert!(!out.join(format!("as_of={}", NIGHTS[1])).exists());
    assert_eq!(
        fs::read_to_string(out.join("latest")).unwrap(),
        "as_of=2026-05-01\n"
    );
}

#[test]
fn json_logs_are_one_object_per_line() {
    let tmp = tempfile::tempdir().unwrap();
    let config = nightly_setup(tmp.path(), false);
    let out = churnseg(&[
        "--log-format",
        "json",
        "run",
        s(&config),
        "--as-of",
        NIGHTS[0],
    ]);
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    let summary = lines.last().unwrap();
    assert_eq!(summary["event"], "summary");
    assert_eq!(summary["command"], "run");
    assert!(
        summary["fields"]["dates"]
            .as_str()
            .unwrap()
            .contains("2026-05-01")
    );
    // a failure is one JSON object with its exit status
    let bad = churnseg(&["--log-format", "json", "run", "missing.toml"]);
    assert_eq!(bad.status.code(), Some(2));
    let err: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&bad.stderr).trim()).unwrap();
    assert_eq!(err["level"], "error");
    assert_eq!(err["exit_code"], 2);
}
