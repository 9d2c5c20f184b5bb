//! Training time of the churn model (`ChurnModel::fit`), for comparison with LightGBM on
//! the same rows. Prints one JSON line per fit:
//!
//! - `boosting`: 300 trees on every row, no calibration: the work LightGBM's `fit` does;
//! - `calibrated`: the default fit (trees on 80% of the rows, calibration chosen on the
//!   other 20%, trees refitted on every row), without the baselines.
//!
//! `cargo bench --bench churn_fit -- TABLE.parquet` fits on a feature table with a Boolean
//! `label` column (`subscriber_id` is dropped), as `benches/model_vs_lightgbm.py
//! --fit-rounds N` writes it and times LightGBM on it in the same run. Without a table,
//! the features of 20 000 generated subscribers at 2026-01-01 (labels: churn within 90
//! days). `CHURNSEG_FIT_ROUNDS` (default 3) fits each variant that many times, alternating.

use std::sync::Arc;
use std::time::Instant;

use arrow::array::{Array, BooleanArray};
use arrow::record_batch::RecordBatch;
use churnseg::asof::AsOf;
use churnseg::console::Console;
use churnseg::features::FeatureParams;
use churnseg::model::{ChurnModel, ChurnParams};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

mod common;

/// The table of `path` without its `label` and `subscriber_id` columns, and the labels.
fn read(path: &str) -> (RecordBatch, Vec<bool>) {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.build())
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let batches: Vec<RecordBatch> = reader.map(|b| b.expect("a Parquet batch")).collect();
    let schema = batches.first().expect("a non-empty table").schema();
    let mut batch = arrow::compute::concat_batches(&schema, &batches).expect("one schema");
    let at = schema.index_of("label").expect("a `label` column");
    let labels = batch
        .column(at)
        .as_any()
        .downcast_ref::<BooleanArray>()
        .expect("a Boolean `label`");
    let labels: Vec<bool> = (0..labels.len()).map(|r| labels.value(r)).collect();
    batch.remove_column(at);
    if let Ok(id) = batch.schema().index_of("subscriber_id") {
        batch.remove_column(id);
    }
    (batch, labels)
}

/// The feature table of generated subscribers at 2026-01-01 and their 90-day labels.
fn generated(subscribers: usize) -> (RecordBatch, Vec<bool>) {
    let inputs = common::generated(subscribers);
    let as_of: AsOf = "2026-01-01".parse().expect("a date");
    let features = FeatureParams {
        as_of,
        extended: true,
        touchpoint_use: false,
    };
    let table =
        churnseg::features::build_logged(&inputs, features, &Console::new(true)).expect("features");
    let labels = inputs.subscribers.labels(&table.rows, as_of, 90);
    let mut batch = table.batch;
    if let Ok(id) = batch.schema().index_of("subscriber_id") {
        batch.remove_column(id);
    }
    (batch, labels)
}

fn main() {
    // `cargo bench` passes `--bench`; anything else is the table
    let path = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    let (batch, labels) = match &path {
        Some(path) => read(path),
        None => generated(20_000),
    };
    let source = path.unwrap_or_else(|| "generated 20000 subscribers".into());
    let rounds: usize = std::env::var("CHURNSEG_FIT_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let variants = [
        (
            "boosting",
            ChurnParams {
                calibration_fraction: 0.0,
                refit: false,
                baselines: false,
                ..ChurnParams::default()
            },
        ),
        (
            "calibrated",
            ChurnParams {
                baselines: false,
                ..ChurnParams::default()
            },
        ),
    ];
    let batch = Arc::new(batch);
    for _ in 0..rounds {
        for (name, params) in &variants {
            let params = params.check().expect("valid parameters");
            let start = Instant::now();
            let model = ChurnModel::fit(&batch, &labels, &params).expect("a fit");
            let seconds = start.elapsed().as_secs_f64();
            println!(
                "{{\"model\": \"churnseg_{name}\", \"fit_s\": {seconds:.3}, \"rows\": {}, \"features\": {}, \"trees\": {}, \"threads\": {}, \"data\": \"{source}\"}}",
                labels.len(),
                model.schema.names().len(),
                model.gbdt.trees.len(),
                rayon::current_num_threads(),
            );
        }
    }
}
