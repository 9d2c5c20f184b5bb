//! Turning the Python arguments into the library's inputs: a table is a path (a Parquet
//! file, a directory of them or a glob, resolved by the library as the CLI does) or any
//! object with the Arrow C stream interface (`__arrow_c_stream__`: a pyarrow Table or
//! RecordBatchReader, a polars DataFrame), imported without copying its buffers.

use std::path::PathBuf;

use arrow::ffi_stream::RecordBatchStreamReader;
use arrow::pyarrow::FromPyArrow;
use arrow::record_batch::RecordBatchReader;
use churnseg::guard::GuardSettings;
use churnseg::load::{ArrowTable, Inputs, InteractionColumns, SubscriberColumns, TableSource};
use churnseg::shard::Shard;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyString;

use crate::boundary::{Failure, InputError};

/// One table argument as the Python layer passes it: `(value, label)`, the value a path
/// string or an Arrow stream, the label naming it in messages (e.g.
/// `interactions (polars.DataFrame)`).
pub type TableArg<'py> = (Bound<'py, PyAny>, String);

/// Reads a table argument: a path stays a path; an Arrow stream is imported, its
/// batches sharing the producer's buffers.
pub fn table_source(arg: &TableArg<'_>) -> PyResult<TableSource> {
    let (value, label) = arg;
    if value.is_instance_of::<PyString>() {
        return Ok(TableSource::Path(PathBuf::from(value.extract::<String>()?)));
    }
    let reader = RecordBatchStreamReader::from_pyarrow_bound(value).map_err(|e| {
        InputError::new_err(format!(
            "{label}: expected a path, or a table with the Arrow C stream interface (pyarrow Table or RecordBatchReader, polars or pandas DataFrame): {e}"
        ))
    })?;
    let schema = reader.schema();
    let batches = reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| InputError::new_err(format!("failed to read {label}: {e}")))?;
    ArrowTable::new(label.clone(), schema, batches)
        .map(TableSource::Memory)
        .map_err(|e| InputError::new_err(e.to_string()))
}

/// What every data call takes: the tables and how to read and check them.
pub struct Request {
    subscribers: TableSource,
    interactions: Option<TableSource>,
    taxonomy: Option<PathBuf>,
    exclude_columns: Vec<String>,
    strict: bool,
    /// The health guards (only `allow` can be set from Python; thresholds are the CLI's
    /// defaults).
    pub guards: GuardSettings,
}

/// The inputs argument of every data call, as the Python layer passes it:
/// `(subscribers, interactions, taxonomy, exclude_columns, strict, allow)`.
#[derive(FromPyObject)]
pub struct RequestArgs<'py>(
    TableArg<'py>,
    Option<TableArg<'py>>,
    Option<PathBuf>,
    Vec<String>,
    bool,
    Vec<String>,
);

impl Request {
    /// Reads the table arguments (importing Arrow streams: the GIL is needed) and checks
    /// the guard names.
    pub fn new(args: RequestArgs<'_>) -> PyResult<Request> {
        let RequestArgs(subscribers, interactions, taxonomy, exclude_columns, strict, allow) = args;
        let guards = GuardSettings {
            allow,
            ..GuardSettings::default()
        };
        let problems = guards.problems("");
        if !problems.is_empty() {
            return Err(PyValueError::new_err(problems.join("; ")));
        }
        Ok(Request {
            subscribers: table_source(&subscribers)?,
            interactions: interactions.as_ref().map(table_source).transpose()?,
            taxonomy,
            exclude_columns,
            strict,
            guards,
        })
    }

    /// Loads and checks the inputs as the CLI does (the same checks and messages), the
    /// `--strict` taxonomy check included.
    pub fn load(self) -> Result<Inputs, Failure> {
        let subscriber_columns = SubscriberColumns {
            exclude: self.exclude_columns,
            ..Default::default()
        };
        let inputs = Inputs::from_tables(
            &self.subscribers,
            self.interactions,
            self.taxonomy.as_deref(),
            &subscriber_columns,
            &InteractionColumns::default(),
            Shard::ALL,
        )?;
        churnseg::pipeline::check_strict(&inputs, self.strict)?;
        Ok(inputs)
    }
}
