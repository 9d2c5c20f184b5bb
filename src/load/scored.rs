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

/// Reads only the named columns of a scored table (those it holds), for a step that
/// needs a few columns of every subscriber: the previous night's baseline, a past
/// night to judge, the report of a sharded run.
pub fn read_scored_columns(path: &Path, columns: &[&str]) -> Result<RecordBatch, LoadError> {
    let source = ParquetSource::resolve(path)?;
    let batches: Vec<RecordBatch> = source
        .read_all(Some(columns))?
        .into_iter()
        .map(|(_, b)| b)
        .collect();
    let schema = match batches.first() {
        Some(b) => b.schema(),
        None => {
            let full = source.open(0)?.schema().clone();
            let kept: Vec<usize> = (0..full.fields().len())
                .filter(|&i| columns.contains(&full.field(i).name().as_str()))
                .collect();
            std::sync::Arc::new(full.project(&kept)?)
        }
    };
    Ok(arrow::compute::concat_batches(&schema, &batches)?)
}
