//! The nightly job shard by shard (issue 17): `run --shards 3` gives the bytes of an
//! unsharded run — the scored table, the report, the contact list, the model and the
//! run index — and the same manifest figures (timings and shard counts apart), over
//! two nights, the second of which retrains, judges the first (realised performance)
//! and measures movement against it.

use std::fs;
use std::path::Path;

mod common;
use common::{churnseg, nightly_setup, ok, s};

const NIGHTS: [&str; 2] = ["2026-05-01", "2026-06-01"];

/// A manifest without what may differ between runs: timings, peak memory, shard counts.
fn figures(path: &Path) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
    for key in [
        "timings_s",
        "total_s",
        "peak_memory_bytes",
        "shards",
        "train_shards",
    ] {
        v.as_object_mut().unwrap().remove(key);
    }
    v
}

#[test]
fn a_sharded_night_writes_what_an_unsharded_one_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let config = nightly_setup(root, true);
    for night in NIGHTS {
        ok(&["-q", "run", s(&config), "--as-of", night]);
    }
    fs::rename(root.join("out"), root.join("whole")).unwrap();
    fs::rename(root.join("models"), root.join("whole-models")).unwrap();
    for night in NIGHTS {
        ok(&["-q", "run", s(&config), "--as-of", night, "--shards", "3"]);
    }
    let (whole, sharded) = (root.join("whole"), root.join("out"));
    for night in NIGHTS {
        let dir = format!("as_of={night}");
        for file in ["scored.parquet", "report.html", "contacts.csv"] {
            assert!(
                fs::read(whole.join(&dir).join(file)).unwrap()
                    == fs::read(sharded.join(&dir).join(file)).unwrap(),
                "{dir}/{file} differs with --shards 3"
            );
        }
        let m = figures(&sharded.join(&dir).join("manifest.json"));
        assert_eq!(figures(&whole.join(&dir).join("manifest.json")), m, "{dir}");
    }
    for file in ["runs.jsonl", "latest"] {
        assert_eq!(
            fs::read(whole.join(file)).unwrap(),
            fs::read(sharded.join(file)).unwrap(),
            "{file}"
        );
    }
    for file in ["model.json", "metrics.json"] {
        assert!(
            fs::read(root.join("whole-models/nightly").join(file)).unwrap()
                == fs::read(root.join("models/nightly").join(file)).unwrap(),
            "{file} differs with --shards 3"
        );
    }
    assert_eq!(
        figures(&root.join("whole-models/nightly/manifest.json")),
        figures(&root.join("models/nightly/manifest.json"))
    );
    // the second night trained, judged the first and compared with it, shard by shard
    let last = |key: &str| {
        let m: serde_json::Value = serde_json::from_slice(
            &fs::read(sharded.join(format!("as_of={}/manifest.json", NIGHTS[1]))).unwrap(),
        )
        .unwrap();
        m[key].clone()
    };
    assert_eq!(last("shards"), 3);
    assert_eq!(last("train_shards"), 3);
    assert_eq!(last("trained"), true);
    assert_eq!(last("realised")[0]["judged_as_of"], NIGHTS[0]);
    assert!(last("realised")[0]["roc_auc"].as_f64().is_some());
    assert!(last("movement")["matched"].as_u64().unwrap() > 100);
    // the scratch directory is gone
    let night = sharded.join(format!("as_of={}", NIGHTS[1]));
    let hidden: Vec<String> = fs::read_dir(&night)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(hidden.is_empty(), "{hidden:?}");
}

#[test]
fn the_config_may_ask_for_shards_and_the_flags_override_it() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let config = nightly_setup(root, true);
    let text = fs::read_to_string(&config).unwrap();
    fs::write(&config, format!("{text}[sharding]\nshards = 2\n")).unwrap();
    ok(&["-q", "run", s(&config), "--as-of", NIGHTS[0]]);
    let manifest = |night: &str| -> serde_json::Value {
        serde_json::from_slice(
            &fs::read(root.join(format!("out/as_of={night}/manifest.json"))).unwrap(),
        )
        .unwrap()
    };
    assert_eq!(manifest(NIGHTS[0])["shards"], 2);
    ok(&[
        "-q",
        "run",
        s(&config),
        "--as-of",
        NIGHTS[1],
        "--max-memory",
        "4GiB",
    ]);
    assert_eq!(manifest(NIGHTS[1])["shards"], 1);
    let too_small = churnseg(&[
        "run",
        s(&config),
        "--as-of",
        "2026-06-02",
        "--max-memory",
        "1MiB",
    ]);
    let err = String::from_utf8_lossy(&too_small.stderr);
    assert_eq!(too_small.status.code(), Some(2), "{err}");
    assert!(err.contains("--max-memory 1.0 MiB is too small"), "{err}");
    assert!(!root.join("out/as_of=2026-06-02").exists());
}

#[test]
fn a_hash_sample_in_the_config_trains_on_the_sample_sharded_or_not() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let config = nightly_setup(root, true);
    let text = fs::read_to_string(&config).unwrap();
    fs::write(
        &config,
        text.replace("snapshots = 1\n", "snapshots = 1\nsample = 900\n"),
    )
    .unwrap();
    ok(&["-q", "run", s(&config), "--as-of", NIGHTS[0]]);
    let model = root.join("models/nightly");
    let metrics: serde_json::Value =
        serde_json::from_slice(&fs::read(model.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(metrics["metrics"]["sample"]["asked"], 900);
    assert_eq!(metrics["metrics"]["sample"]["sampled"], 900);
    assert_eq!(metrics["metrics"]["sample"]["of"], 1500);
    let whole: Vec<Vec<u8>> = ["model.json", "metrics.json"]
        .iter()
        .map(|f| fs::read(model.join(f)).unwrap())
        .collect();
    fs::remove_dir_all(root.join("models")).unwrap();
    fs::remove_dir_all(root.join("out")).unwrap();
    ok(&[
        "-q",
        "run",
        s(&config),
        "--as-of",
        NIGHTS[0],
        "--shards",
        "3",
    ]);
    for (file, before) in ["model.json", "metrics.json"].iter().zip(whole) {
        assert!(
            fs::read(model.join(file)).unwrap() == before,
            "{file} differs with --shards 3"
        );
    }
}
