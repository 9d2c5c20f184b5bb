//! The run manifest (SPEC §6): a JSON record beside the outputs of what a command read,
//! skipped, computed and wrote, how long each stage took and how much memory it used.

use std::path::Path;
use std::time::Instant;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::write::{WriteError, write_bytes};

/// Wall time of each stage, in order.
#[derive(Debug, Default, Clone, Serialize)]
pub struct StageTimings {
    pub stages: Vec<(String, f64)>,
}

impl StageTimings {
    /// Runs `f` as stage `name`, recording its duration.
    pub fn time<T>(&mut self, name: &str, f: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let out = f();
        self.stages
            .push((name.to_string(), start.elapsed().as_secs_f64()));
        out
    }

    pub fn total(&self) -> f64 {
        self.stages.iter().map(|(_, s)| s).sum()
    }
}

/// Peak resident memory of this process in bytes (Linux `VmHWM`), when known.
pub fn peak_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// A manifest under construction: named sections of JSON.
#[derive(Debug, Default)]
pub struct RunManifest {
    sections: Map<String, Value>,
}

impl RunManifest {
    /// A manifest for `command`, stamped with the program version.
    pub fn new(command: &str) -> RunManifest {
        let mut m = RunManifest::default();
        m.set(
            "program",
            serde_json::json!({ "name": "churnseg", "version": env!("CARGO_PKG_VERSION") }),
        );
        m.set("command", Value::String(command.to_string()));
        m
    }

    /// Sets a section to any serialisable value.
    pub fn set(&mut self, key: &str, value: impl Serialize) {
        let value = serde_json::to_value(value)
            .unwrap_or_else(|e| Value::String(format!("unserialisable: {e}")));
        self.sections.insert(key.to_string(), value);
    }

    /// Adds the timings and the peak memory.
    pub fn finish(&mut self, timings: &StageTimings) {
        let stages: Map<String, Value> = timings
            .stages
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::json!((v * 1000.0).round() / 1000.0)))
            .collect();
        self.set("timings_s", stages);
        self.set("total_s", (timings.total() * 1000.0).round() / 1000.0);
        self.set("peak_memory_bytes", peak_memory_bytes());
    }

    /// Writes the manifest atomically as pretty JSON.
    pub fn write(&self, path: &Path) -> Result<(), WriteError> {
        write_bytes(path, &self.to_bytes()?)
    }

    /// The manifest as pretty JSON, as [`RunManifest::write`] writes it.
    pub fn to_bytes(&self) -> Result<Vec<u8>, WriteError> {
        let text =
            serde_json::to_string_pretty(&self.sections).map_err(|e| WriteError::Serialize {
                what: "the run manifest".into(),
                message: e.to_string(),
            })?;
        Ok(format!("{text}\n").into_bytes())
    }

    /// The manifest as JSON.
    pub fn to_value(&self) -> Value {
        Value::Object(self.sections.clone())
    }
}

/// Where the manifest of an output file goes: `scored.parquet` → `scored.manifest.json`.
pub fn manifest_path_for(output: &Path) -> std::path::PathBuf {
    let stem = output
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "run".into());
    output.with_file_name(format!("{stem}.manifest.json"))
}
