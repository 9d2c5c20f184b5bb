//! Reading a scored table back (the output of `score`): the report renders it, and a
//! later run reads the previous one as the baseline for movement, drift and the guards.

use std::path::Path;

use arrow::array::RecordBatch;

use super::error::LoadError;
use super::files::ParquetSource;

/// Reads a scored Parquet file (or a folder of them) into one batch.
pub fn read_scored(path: &Path) -> Result<RecordBatch, LoadError> {
    let source = ParquetSource::resolve(path)?;
    let batches: Vec<RecordBatch> = source.read_all(None)?.into_iter().map(|(_, b)| b).collect();
    let schema = match batches.first() {
        Some(b) => b.schema(),
        None => source.open(0)?.schema().clone(),
    };
    Ok(arrow::compute::concat_batches(&schema, &batches)?)
}
