//! The nightly history of an `output.layout = "by_date"` directory:
//!
//! ```text
//! out/demo/
//!   runs.jsonl                 the run index: one JSON object per night, oldest first
//!   latest                     one line: the newest night's folder, `as_of=2026-07-01`
//!   as_of=2026-06-01/          one folder per night scored
//!     scored.parquet  manifest.json  report.html  contacts.csv
//!   as_of=2026-07-01/ …
//! ```
//!
//! `latest` is a plain file, not a symlink: it reads the same on every file system and
//! object store and is replaced atomically with the rest of the night (`cat
//! out/demo/latest` names the folder). It names the newest night in the index, so a
//! backfill of an older night does not move it. The folders are Hive-style, so
//! `read_parquet('out/demo/*/scored.parquet', hive_partitioning = true)` in DuckDB or
//! `pl.scan_parquet` reads every night at once.
//!
//! A night run again replaces its folder and its row. The previous night, for movement
//! and the guards, is the newest folder before tonight that holds a `scored.parquet`.
//! A night's realised performance is judged once, by the first run whose `as_of` is at
//! least one horizon after it ([`crate::realised`]); the index row of that run holds it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::asof::AsOf;
use crate::realised::{Realised, elapsed};
use crate::segment::Movement;

/// The run index's file name, at the top of the output directory.
pub const INDEX_FILE: &str = "runs.jsonl";
/// The pointer to the newest night's folder.
pub const LATEST_FILE: &str = "latest";

/// The folder of the night `as_of`: `as_of=YYYY-MM-DD`.
pub fn partition_name(as_of: AsOf) -> String {
    format!("as_of={as_of}")
}

/// One night in the run index. Only figures of the run's outputs: no clock time, so the
/// same inputs give the same bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub as_of: AsOf,
    /// The night's folder, relative to the output directory.
    pub partition: String,
    /// Where `as_of` came from (`--as-of`, or the `score.as_of` rule).
    pub as_of_from: String,
    pub train_as_of: AsOf,
    pub horizon_days: u32,
    pub model_version: String,
    pub trained: bool,
    pub retrain_reason: String,
    pub scored: usize,
    pub mean_churn_probability: f64,
    pub value_at_risk: f64,
    pub targeted: usize,
    pub expected_return: f64,
    /// The night movement was measured against.
    pub previous_as_of: Option<AsOf>,
    pub movement: Option<Movement>,
    /// Past nights judged by this run.
    #[serde(default)]
    pub realised: Vec<Realised>,
}

/// Why the history cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("failed to read the run index {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "the run index {path} line {line} is not a run record written by churnseg ({message}); mend or remove that line: `{example}`"
    )]
    Line {
        path: String,
        line: usize,
        message: String,
        example: String,
    },
    #[error("cannot serialise the run index: {0}")]
    Serialize(String),
}

/// The run index of an output directory.
#[derive(Debug, Clone, Default)]
pub struct History {
    pub records: Vec<RunRecord>,
}

impl History {
    /// Reads `dir/runs.jsonl`; empty when there is none yet.
    pub fn read(dir: &Path) -> Result<History, HistoryError> {
        let path = dir.join(INDEX_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(History::default()),
            Err(source) => {
                return Err(HistoryError::Read {
                    path: path.display().to_string(),
                    source,
                });
            }
        };
        let mut records = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let record = serde_json::from_str(line).map_err(|e| HistoryError::Line {
                path: path.display().to_string(),
                line: i + 1,
                message: e.to_string(),
                example: line.chars().take(80).collect(),
            })?;
            records.push(record);
        }
        Ok(History { records })
    }

    /// The nights to judge tonight: before tonight, their horizon over by tonight, and
    /// not judged by another night's run.
    pub fn to_judge(&self, tonight: AsOf) -> Vec<&RunRecord> {
        let judged = |night: AsOf| {
            self.records
                .iter()
                .filter(|r| r.as_of != tonight)
                .any(|r| r.realised.iter().any(|x| x.judged_as_of == night))
        };
        self.records
            .iter()
            .filter(|r| r.as_of < tonight && elapsed(r.as_of, r.horizon_days, tonight))
            .filter(|r| !judged(r.as_of))
            .collect()
    }

    /// The index with `record` in it (replacing a run of the same night), oldest first.
    pub fn with(&self, record: RunRecord) -> History {
        let mut records: Vec<RunRecord> = self
            .records
            .iter()
            .filter(|r| r.as_of != record.as_of)
            .cloned()
            .collect();
        records.push(record);
        records.sort_by_key(|r| r.as_of);
        History { records }
    }

    /// Every realised judgement in the index, by the night judged (oldest first).
    pub fn realised(&self) -> Vec<Realised> {
        let mut all: Vec<Realised> = self
            .records
            .iter()
            .flat_map(|r| r.realised.iter().cloned())
            .collect();
        all.sort_by_key(|r| r.judged_as_of);
        all.dedup_by_key(|r| r.judged_as_of);
        all
    }

    /// The index as JSON lines.
    pub fn to_bytes(&self) -> Result<Vec<u8>, HistoryError> {
        let mut out = Vec::new();
        for r in &self.records {
            let line =
                serde_json::to_string(r).map_err(|e| HistoryError::Serialize(e.to_string()))?;
            out.extend_from_slice(line.as_bytes());
            out.push(b'\n');
        }
        Ok(out)
    }

    /// The `latest` pointer's content: the newest night's folder.
    pub fn latest(&self) -> Option<String> {
        self.records.last().map(|r| format!("{}\n", r.partition))
    }
}

/// The newest night before `tonight` with a scored table in `dir`: its date and folder.
pub fn previous_partition(dir: &Path, tonight: AsOf) -> Option<(AsOf, PathBuf)> {
    let entries = std::fs::read_dir(dir).ok()?;
    let mut best: Option<(AsOf, PathBuf)> = None;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(date) = name
            .strip_prefix("as_of=")
            .and_then(|d| d.parse::<AsOf>().ok())
        else {
            continue;
        };
        let path = entry.path();
        if date < tonight
            && path.join("scored.parquet").is_file()
            && best.as_ref().is_none_or(|(b, _)| date > *b)
        {
            best = Some((date, path));
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(as_of: &str, judged: &[&str]) -> RunRecord {
        let as_of: AsOf = as_of.parse().unwrap();
        RunRecord {
            as_of,
            partition: partition_name(as_of),
            as_of_from: "--as-of".into(),
            train_as_of: as_of.plus_days(-90),
            horizon_days: 30,
            model_version: "m".into(),
            trained: false,
            retrain_reason: String::new(),
            scored: 1,
            mean_churn_probability: 0.1,
            value_at_risk: 1.0,
            targeted: 0,
            expected_return: 0.0,
            previous_as_of: None,
            movement: None,
            realised: judged
                .iter()
                .map(|d| Realised {
                    judged_as_of: d.parse().unwrap(),
                    observed_until: as_of,
                    horizon_days: 30,
                    model_version: "m".into(),
                    scored: 1,
                    unmatched: 0,
                    churned: 0,
                    mean_predicted: 0.1,
                    observed_rate: 0.0,
                    roc_auc: None,
                    pr_auc: None,
                    lift_top_decile: None,
                    brier: None,
                    ece: None,
                    targeted: Default::default(),
                })
                .collect(),
        }
    }

    #[test]
    fn a_night_is_judged_once_its_horizon_is_over_and_only_once() {
        let h = History {
            records: vec![record("2026-04-01", &[]), record("2026-04-20", &[])],
        };
        let d = |s: &str| s.parse::<AsOf>().unwrap();
        assert!(h.to_judge(d("2026-04-30")).is_empty());
        let nights: Vec<AsOf> = h
            .to_judge(d("2026-05-01"))
            .iter()
            .map(|r| r.as_of)
            .collect();
        assert_eq!(nights, [d("2026-04-01")]);
        let h = h.with(record("2026-05-01", &["2026-04-01"]));
        let nights: Vec<AsOf> = h
            .to_judge(d("2026-06-01"))
            .iter()
            .map(|r| r.as_of)
            .collect();
        assert_eq!(nights, [d("2026-04-20"), d("2026-05-01")]);
        // running 2026-05-01 again judges 2026-04-01 again (its own row is replaced)
        assert_eq!(h.to_judge(d("2026-05-01")).len(), 1);
        assert_eq!(h.latest().as_deref(), Some("as_of=2026-05-01\n"));
    }

    #[test]
    fn the_index_reads_back_and_a_bad_line_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let h = History::default()
            .with(record("2026-05-01", &["2026-04-01"]))
            .with(record("2026-04-01", &[]));
        std::fs::write(dir.path().join(INDEX_FILE), h.to_bytes().unwrap()).unwrap();
        let back = History::read(dir.path()).unwrap();
        assert_eq!(back.records, h.records);
        assert_eq!(back.records[0].as_of.to_string(), "2026-04-01");
        assert_eq!(back.realised().len(), 1);
        let mut bytes = h.to_bytes().unwrap();
        bytes.extend_from_slice(b"{\"as_of\": 3}\n");
        std::fs::write(dir.path().join(INDEX_FILE), bytes).unwrap();
        let err = History::read(dir.path()).unwrap_err().to_string();
        assert!(err.contains("line 3"), "{err}");
    }
}
