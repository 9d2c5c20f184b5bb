//! The two steps of `churnseg.spark.train`, each the library's own code: the training
//! snapshots of one shard, built in a Spark task and returned as Arrow
//! ([`churnseg::train::from_tables::shard_table`]), and the fit on the driver from
//! every shard's rows, joined as `train --shards K` joins its shards
//! ([`churnseg::train::from_tables::join_tables`], then `train_on`, the CLI's fit).

use std::path::PathBuf;

use arrow::datatypes::Schema;
use arrow::pyarrow::PyArrowType;
use arrow::record_batch::RecordBatch;
use churnseg::progress::Silent;
use churnseg::train::SampleSummary;
use churnseg::train::from_tables::{join_tables, shard_table};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::boundary;
use crate::inputs::{Request, RequestArgs};
use crate::model::{Model, PyTable, TrainSettings, py_table};

fn settings(json: &str) -> PyResult<TrainSettings> {
    serde_json::from_str(json).map_err(|e| PyValueError::new_err(format!("training settings: {e}")))
}

/// One shard's training snapshots (`inputs` as every data call takes them, checked as
/// the CLI checks them), as one table: per snapshot a row per active subscriber and a
/// row of counts (see `churnseg::train::from_tables`).
#[pyfunction]
#[pyo3(signature = (inputs, settings_json, threads))]
pub fn spark_train_shard(
    py: Python<'_>,
    inputs: RequestArgs<'_>,
    settings_json: &str,
    threads: Option<usize>,
) -> PyResult<PyTable> {
    let params = settings(settings_json)?.params()?;
    let request = Request::new(inputs)?;
    let batch = boundary::run(py, threads, move || {
        let inputs = request.load()?;
        Ok(shard_table(&inputs, &params, &Silent)?)
    })?;
    py_table(batch)
}

/// The fit on the driver: `shards[k]` holds shard k's rows as `spark_train_shard` made
/// them (any batches, any order), `reference` the schema of its table; `sample` is the
/// hash sample's `(asked, of, max_hash)`. The health guards judge the shards' summed
/// measure as `train` does; the model is `train --shards K`'s.
#[pyfunction]
#[pyo3(signature = (shards, reference, taxonomy, settings_json, sample, threads))]
pub fn spark_train_fit(
    py: Python<'_>,
    shards: Vec<Vec<PyArrowType<RecordBatch>>>,
    reference: PyArrowType<Schema>,
    taxonomy: Option<PathBuf>,
    settings_json: &str,
    sample: Option<(u64, u64, i64)>,
    threads: Option<usize>,
) -> PyResult<Model> {
    let params = settings(settings_json)?.params()?;
    let shards: Vec<Vec<RecordBatch>> = shards
        .into_iter()
        .map(|s| s.into_iter().map(|b| b.0).collect())
        .collect();
    let reference = reference.0;
    boundary::run(py, threads, move || {
        let taxonomy = churnseg::taxonomy::Taxonomy::load(taxonomy.as_deref())?;
        let sample = sample.map(|(asked, of, max_hash)| SampleSummary {
            asked,
            sampled: 0,
            of,
            max_hash,
        });
        let snapshots = join_tables(&shards, &reference, &taxonomy, &params, sample)?;
        let (trained, _guards) =
            churnseg::train::train_on(&snapshots, &taxonomy, &params, &Silent)?;
        Model::trained(trained, &params.name, |_| Ok(None))
    })
}

/// Adds this module's functions to the extension module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(spark_train_shard, m)?)?;
    m.add_function(wrap_pyfunction!(spark_train_fit, m)?)?;
    Ok(())
}
