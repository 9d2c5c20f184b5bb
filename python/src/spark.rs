//! The steps of `churnseg.spark` (issue 18), each the library's own code on what one
//! Spark task holds: the kernel on one shard's rows, the population's cut-offs from what
//! Spark read at the library's ranks, and the finishing pass on any batch of kernel rows.
//! Spark does the shuffles, sorts and joins (`python/churnseg/spark.py`); nothing here
//! looks at row order, so a retried task gives the same rows.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, RecordBatch, StringArray, UInt64Array, new_null_array,
};
use arrow::compute::concat_batches;
use arrow::datatypes::{DataType, Field, Int64Type, Schema};
use arrow::pyarrow::PyArrowType;
use churnseg::features::FeatureParams;
use churnseg::guard::GuardSettings;
use churnseg::progress::Silent;
use churnseg::score::ScoreParams;
use churnseg::score::finish::finish;
use churnseg::score::kernel::{Kernel, Partial, partial};
use churnseg::score::population::{CutRanks, CutReads, Cutoffs, gain_of, median_ranks};
use churnseg::segment::touchpoints::TouchpointCatalogue;
use churnseg::segment::value::{ProfitRanks, profit_key};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::boundary::{self, ChurnsegError, Failure};
use crate::inputs::{Request, RequestArgs};
use crate::model::{Model, PyTable, parse_as_of, py_table};

/// Each kernel row's net gain of an offer (`save_rate × value_at_risk − offer_cost`).
const GAIN: &str = "__gain";
/// The shard's touchpoint catalogue as JSON, on its first row (null on the others).
const CATALOGUE: &str = "__catalogue";
/// The health guards' measure of the shard (JSON), on one row of its own, after the
/// kernel rows (every other column null there).
const GUARD: &str = "__guard";
/// The first and one past the last rank of the row's profit tie in the profit ranking
/// (null for an unknown profit), added by Spark before the finishing pass.
const RANK_START: &str = "__profit_rank_start";
const RANK_END: &str = "__profit_rank_end";

/// Scoring settings from JSON (the fields of `ScoreParams`), checked.
fn score_params(json: &str) -> PyResult<ScoreParams> {
    let params: ScoreParams = serde_json::from_str(json)
        .map_err(|e| PyValueError::new_err(format!("scoring settings: {e}")))?;
    params
        .check()
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    Ok(params)
}

fn data(message: impl std::fmt::Display) -> Failure {
    Failure::Other(message.to_string())
}

/// One shard's kernel: loads its subscriber and event rows (`inputs` as every data call
/// takes them, checked as the CLI checks them), builds the features at `as_of` and runs
/// the kernel. The rows are the kernel's partial (feature columns, the kernel's, the
/// touchpoint use) with each row's net gain and, on the first row, the shard's
/// touchpoint catalogue; then one row holding the guards' measure of the shard in
/// [`GUARD`] (the guards judge the shards' sum: [`spark_guards`]). Every column is
/// nullable.
#[pyfunction]
#[pyo3(signature = (model, inputs, as_of, params, threads))]
pub fn spark_kernel(
    py: Python<'_>,
    model: PyRef<'_, Model>,
    inputs: RequestArgs<'_>,
    as_of: &str,
    params: &str,
    threads: Option<usize>,
) -> PyResult<PyTable> {
    let as_of = parse_as_of(as_of)?;
    let params = score_params(params)?;
    let request = Request::new(inputs)?;
    let artifact = &model.artifact;
    let batch = boundary::run(py, threads, move || {
        let inputs = request.load()?;
        let features = FeatureParams {
            as_of,
            extended: artifact.extended_features,
            touchpoint_use: true,
        };
        let table = churnseg::features::build_logged(&inputs, features, &Silent)?;
        let kernel = Kernel::run(&table.batch, table.positions.clone(), artifact, &params)?;
        let batch = partial(&table, &kernel)?;
        let gains = Float64Array::from_iter_values(
            kernel.value_at_risk.iter().map(|v| gain_of(*v, &params)),
        );
        let catalogue = table
            .touchpoint_use
            .as_ref()
            .map(|u| serde_json::to_string(&TouchpointCatalogue::of(u)))
            .transpose()
            .map_err(data)?;
        let catalogues: StringArray = (0..batch.num_rows())
            .map(|i| if i == 0 { catalogue.clone() } else { None })
            .collect();
        let measure = serde_json::to_string(&churnseg::guard::Snapshot::measure(&inputs, &table))
            .map_err(data)?;
        let schema = batch.schema();
        let mut fields: Vec<Field> = schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect();
        fields.push(Field::new(GAIN, DataType::Float64, true));
        fields.push(Field::new(CATALOGUE, DataType::Utf8, true));
        fields.push(Field::new(GUARD, DataType::Utf8, true));
        let n = batch.num_rows();
        let mut columns = batch.columns().to_vec();
        columns.push(Arc::new(gains));
        columns.push(Arc::new(catalogues));
        columns.push(new_null_array(&DataType::Utf8, n));
        let schema = Arc::new(Schema::new(fields));
        let rows = RecordBatch::try_new(Arc::clone(&schema), columns).map_err(data)?;
        let mut columns: Vec<ArrayRef> = schema.fields()[..schema.fields().len() - 1]
            .iter()
            .map(|f| new_null_array(f.data_type(), 1))
            .collect();
        columns.push(Arc::new(StringArray::from(vec![measure])));
        let guard = RecordBatch::try_new(Arc::clone(&schema), columns).map_err(data)?;
        concat_batches(&schema, [&rows, &guard]).map_err(data)
    })?;
    py_table(batch)
}

/// The health guards on the shards' measures (the [`GUARD`] values of every shard): they
/// judge the sum, which is the whole input's, as `score` judges it (the CLI's
/// thresholds, `allow` as `--allow`); a failure raises `GuardError` with the CLI's
/// message. Returns the warnings of the guards that failed and are allowed.
#[pyfunction]
pub fn spark_guards(
    py: Python<'_>,
    measures: Vec<String>,
    allow: Vec<String>,
) -> PyResult<Vec<String>> {
    let settings = GuardSettings {
        allow,
        ..GuardSettings::default()
    };
    let problems = settings.problems("");
    if !problems.is_empty() {
        return Err(PyValueError::new_err(problems.join("; ")));
    }
    boundary::run(py, None, move || {
        let mut whole: Option<churnseg::guard::Snapshot> = None;
        for m in &measures {
            let part: churnseg::guard::Snapshot = serde_json::from_str(m).map_err(data)?;
            match &mut whole {
                None => whole = Some(part),
                Some(w) => w.absorb(part),
            }
        }
        let whole = whole.ok_or_else(|| data("no shard's measure for the health guards"))?;
        let report = churnseg::guard::judge(&whole, &settings, None).enforce()?;
        Ok(report.warnings())
    })
}

/// The ranks the cut-offs read, as JSON (`CutRanks`: `profit`, `risk`, `gain`), for
/// `rows` subscribers of whom `candidates` have a positive net gain.
#[pyfunction]
pub fn spark_cut_ranks(rows: usize, candidates: usize, params: &str) -> PyResult<String> {
    let params = score_params(params)?;
    serde_json::to_string(&CutRanks::of(rows, candidates, &params))
        .map_err(|e| ChurnsegError::new_err(e.to_string()))
}

/// The ranks (ascending, from 0) whose values make the median of `n` values.
#[pyfunction]
pub fn spark_median_ranks(n: usize) -> Vec<usize> {
    median_ranks(n)
}

/// The cut-offs (JSON) from what Spark read at the ranks (`CutReads` as JSON).
#[pyfunction]
pub fn spark_cutoffs(reads: &str) -> PyResult<String> {
    let reads: CutReads = serde_json::from_str(reads)
        .map_err(|e| PyValueError::new_err(format!("the population's reads: {e}")))?;
    serde_json::to_string(&Cutoffs::from_reads(reads))
        .map_err(|e| ChurnsegError::new_err(e.to_string()))
}

/// The finishing pass over a batch of kernel rows (any rows, in any order), each with the
/// span of its profit tie ([`RANK_START`], [`RANK_END`]); `known` subscribers of the
/// population have a known profit. Returns the scored rows as the CLI writes them.
#[pyfunction]
#[pyo3(signature = (model, batch, cutoffs, known, as_of, params, threads))]
#[allow(clippy::too_many_arguments)]
pub fn spark_finish(
    py: Python<'_>,
    model: PyRef<'_, Model>,
    batch: PyArrowType<RecordBatch>,
    cutoffs: &str,
    known: usize,
    as_of: &str,
    params: &str,
    threads: Option<usize>,
) -> PyResult<PyTable> {
    let as_of = parse_as_of(as_of)?;
    let params = score_params(params)?;
    let cutoffs: Cutoffs = serde_json::from_str(cutoffs)
        .map_err(|e| PyValueError::new_err(format!("the cut-offs: {e}")))?;
    let batch = batch.0;
    let artifact = &model.artifact;
    let scored = boundary::run(py, threads, move || {
        let n = batch.num_rows();
        let positions = UInt64Array::from(vec![0u64; n]);
        let part = Partial::read(&batch, &positions)?;
        let span = |name: &str| {
            let c = batch
                .column_by_name(name)
                .ok_or_else(|| data(format!("the kernel rows lack `{name}`")))?;
            arrow::compute::cast(c, &DataType::Int64).map_err(data)
        };
        let (start, end) = (span(RANK_START)?, span(RANK_END)?);
        let (start, end) = (
            start.as_primitive::<Int64Type>(),
            end.as_primitive::<Int64Type>(),
        );
        let population = cutoffs.rows;
        let percentiles = (0..n)
            .map(|i| match profit_key(part.kernel.profit[i]) {
                None => Ok(ProfitRanks::percentile_of_span(
                    known, population, population,
                )),
                Some(_) if start.is_valid(i) && end.is_valid(i) => {
                    Ok(ProfitRanks::percentile_of_span(
                        start.value(i) as usize,
                        end.value(i) as usize,
                        population,
                    ))
                }
                Some(p) => Err(data(format!(
                    "row {i} (profit {p}) has no rank in the profit ranking"
                ))),
            })
            .collect::<Result<Vec<f64>, Failure>>()?;
        let done = finish(
            &part.features,
            &part.kernel,
            part.uses.as_deref(),
            &cutoffs,
            percentiles,
            artifact,
            &params,
            as_of,
        )?;
        Ok(done.batch)
    })?;
    py_table(scored)
}

/// Adds this module's functions to the extension module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(spark_kernel, m)?)?;
    m.add_function(wrap_pyfunction!(spark_guards, m)?)?;
    m.add_function(wrap_pyfunction!(spark_cut_ranks, m)?)?;
    m.add_function(wrap_pyfunction!(spark_median_ranks, m)?)?;
    m.add_function(wrap_pyfunction!(spark_cutoffs, m)?)?;
    m.add_function(wrap_pyfunction!(spark_finish, m)?)?;
    Ok(())
}
