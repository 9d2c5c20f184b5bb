//! Custom features evaluated with polars (issue 20): the checks against the Parquet
//! schemas, the queries, and the join into the feature table.
//!
//! The definitions ([`crate::custom_features`]) travel with the inputs. One polars query
//! serves every events definition: it scans the interaction files lazily — only the
//! columns the definitions name are read (projection pushdown), and the point-in-time
//! filter of the widest window, `ts >= as_of − window_days AND ts < as_of` (never before
//! 1900-01-01, like the fused pass), is pushed into the Parquet reader, so row groups
//! outside it are skipped on a time-ordered log — and computes every definition in one
//! `group_by(subscriber_id)` with one aggregation each, on polars' streaming engine. A
//! definition's narrower window and its `where` are applied inside its aggregations (each
//! aggregate's input is nulled where the predicate is not true, and `count(*)` counts the
//! rows where it is), with a count of the rows that pass, so a subscriber none of whose
//! rows pass gets the default; definitions with different windows and filters thus share
//! the scan and the group-by. The rewrite is exact for the aggregates allowed (count,
//! count distinct, sum, avg, min, max, median, stddev, variance), which all skip nulls.
//!
//! `from = "subscribers"` definitions are one `select` over the subscriber files, with
//! `tenure_days` (days from `signup_date` to `as_of`) added to their columns.
//!
//! Results join the feature table by `subscriber_id` (Int64 or Utf8, dictionary strings
//! cast to strings) as Float64 columns after every other column, in definition order; a
//! subscriber without events in the window, or none passing the filter, gets `default`
//! (null when omitted). In a sharded run, each shard's query is restricted to the
//! shard's subscribers by an inner join on their ids (polars has no Spark xxhash64), so
//! every event is read by one shard's aggregation only.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, RecordBatch};
use arrow::datatypes::{DataType as ArrowType, Field, Int64Type, Schema as ArrowSchema};
use polars::prelude as pl;
use polars::prelude::{IntoLazy, NamedFrom, col, lit};

use super::names;
use crate::asof::AsOf;
use crate::custom_features::{
    CustomError, CustomFeature, CustomFeatures, CustomProblem, CustomSource, columns, parse_sql,
};
use crate::load::{InputSpec, Inputs, ParquetSource};
use crate::shard::Shard;
use crate::taxonomy::Taxonomy;

/// The key column of every query's result.
const KEY: &str = "__churnseg_id";

/// `tenure_days`, the computed column `from = "subscribers"` definitions may use.
const TENURE: &str = "tenure_days";

/// Names a custom feature may not take: `subscriber_id` and every core and extended
/// feature (the per-touchpoint counts of `taxonomy`, or of the shipped taxonomy,
/// included).
pub fn reserved_names(taxonomy: Option<&Taxonomy>) -> Vec<String> {
    match taxonomy {
        Some(t) => names::reserved_names(t),
        None => names::reserved_names(&Taxonomy::shipped()),
    }
}

/// Checks the custom features of `spec` before any work: every problem at once
/// ([`problems`]).
pub fn check(spec: &InputSpec) -> Result<(), CustomError> {
    let taxonomy = Taxonomy::load(spec.taxonomy.as_deref()).ok();
    let problems = problems(spec, taxonomy.as_ref());
    if problems.is_empty() {
        Ok(())
    } else {
        Err(CustomError::Invalid(problems))
    }
}

/// Every problem of the custom features of `spec`: those found without data
/// ([`CustomFeatures::problems`]), then, against the schemas of the input files that
/// can be read (a missing file is reported by loading): a name that is a subscriber
/// column, unknown columns, and results that polars cannot type or that are not
/// numeric.
pub fn problems(spec: &InputSpec, taxonomy: Option<&Taxonomy>) -> Vec<CustomProblem> {
    let custom = &spec.custom;
    if custom.is_empty() {
        return Vec::new();
    }
    let mut out = custom.problems(&reserved_names(taxonomy));
    let subscribers = ParquetSource::resolve(&spec.subscribers)
        .ok()
        .and_then(|s| schema_of(&s.files).ok());
    let events = spec
        .interactions
        .as_ref()
        .and_then(|p| ParquetSource::resolve(p).ok())
        .and_then(|s| schema_of(&s.files).ok());
    let id = &spec.subscriber_columns.subscriber_id;
    let signup = &spec.subscriber_columns.signup_date;
    if let Some(schema) = &subscribers {
        let mut with_tenure = (**schema).clone();
        with_tenure.insert(TENURE.into(), pl::DataType::Int64);
        for (i, d) in custom.defs.iter().enumerate() {
            if schema.contains(&d.name) {
                out.push(custom.problem(
                    i,
                    "name",
                    format!(
                        "`{}` is a column of the subscriber table {} (passed through as a feature); choose another name",
                        d.name,
                        spec.subscribers.display()
                    ),
                ));
            }
            if d.from == CustomSource::Subscribers {
                out.extend(typed(
                    custom,
                    i,
                    &with_tenure,
                    "the subscriber table",
                    |lf| subscriber_query(lf, id, signup, &[(i, d)], AsOf::from_days(20_000)),
                ));
            }
        }
    }
    let has_events = custom.defs.iter().any(|d| d.from == CustomSource::Events);
    match (&events, &spec.interactions) {
        (Some(schema), Some(path)) => {
            let names = &spec.interaction_columns;
            for (i, d) in custom.defs.iter().enumerate() {
                if d.from != CustomSource::Events {
                    continue;
                }
                let what = format!("the interactions {}", path.display());
                out.extend(typed(custom, i, schema, &what, |lf| {
                    let ts = schema.get(&names.ts).cloned().unwrap_or(pl::DataType::Null);
                    events_query(
                        lf,
                        &names.subscriber_id,
                        &names.ts,
                        &ts,
                        AsOf::from_days(20_000),
                        &[(i, d)],
                        None,
                    )
                }));
            }
        }
        (None, None) if has_events => {
            for (i, d) in custom.defs.iter().enumerate() {
                if d.from == CustomSource::Events {
                    out.push(custom.problem(
                        i,
                        "value",
                        "aggregates events, but there are no interactions (`--interactions`, `inputs.interactions`)".into(),
                    ));
                }
            }
        }
        _ => {}
    }
    out
}

/// The problems of definition `i` against `schema`: unknown columns, then what polars
/// says of the query `query` builds over an empty table of that schema, and the type of
/// its result.
fn typed(
    custom: &CustomFeatures,
    i: usize,
    schema: &pl::Schema,
    what: &str,
    query: impl FnOnce(pl::LazyFrame) -> Result<pl::LazyFrame, CustomError>,
) -> Vec<CustomProblem> {
    let d = &custom.defs[i];
    let mut out = Vec::new();
    let mut unknown = false;
    for (field, sql) in [("value", Some(&d.value)), ("where", d.filter.as_ref())] {
        let Some(expr) = sql.and_then(|s| parse_sql(s).ok()) else {
            continue;
        };
        let missing: Vec<String> = columns(&expr)
            .into_iter()
            .filter(|c| !schema.contains(c))
            .map(|c| format!("`{c}`"))
            .collect();
        if !missing.is_empty() {
            unknown = true;
            let known: Vec<String> = schema.iter_names().map(|n| n.to_string()).collect();
            out.push(custom.problem(
                i,
                field,
                format!(
                    "`{field}` names column(s) {} that {what} does not have (it has {})",
                    missing.join(", "),
                    known.join(", ")
                ),
            ));
        }
    }
    if unknown
        || parse_sql(&d.value).is_err()
        || d.filter.as_ref().is_some_and(|f| parse_sql(f).is_err())
    {
        return out;
    }
    let empty = pl::DataFrame::empty_with_schema(schema).lazy();
    let typed = query(empty).and_then(|mut lf| lf.collect_schema().map_err(polars_error(None)));
    match typed {
        Err(e) => out.push(custom.problem(
            i,
            "value",
            format!("polars cannot compute it: {}", first_line(&e.to_string())),
        )),
        Ok(result) => {
            if let Some(dtype) = result.get(&value_name(i, "")) {
                if !dtype.is_primitive_numeric() && !dtype.is_decimal() {
                    out.push(custom.problem(
                        i,
                        "value",
                        format!("`value` gives {dtype}, not a number"),
                    ));
                }
            }
        }
    }
    if let Some(p) = d.filter.as_ref().and_then(|f| parse_sql(f).ok()) {
        let mut filter = pl::DataFrame::empty_with_schema(schema)
            .lazy()
            .select([p.alias("where")]);
        match filter.collect_schema() {
            Err(e) => out.push(custom.problem(
                i,
                "where",
                format!("polars cannot compute it: {}", first_line(&e.to_string())),
            )),
            Ok(result) => {
                if let Some(dtype) = result.get("where")
                    && !matches!(dtype, pl::DataType::Boolean | pl::DataType::Null)
                {
                    out.push(custom.problem(
                        i,
                        "where",
                        format!("`where` gives {dtype}, not true or false"),
                    ));
                }
            }
        }
    }
    out
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or("").trim().to_string()
}

/// The name of definition `i`'s value column in a query's result (`part` = `n` for the
/// number of events passing its filter).
fn value_name(i: usize, part: &str) -> pl::PlSmallStr {
    format!("__churnseg_{part}{i}").into()
}

fn polars_error(of: Option<&str>) -> impl Fn(pl::PolarsError) -> CustomError + '_ {
    move |e| CustomError::Polars {
        of: of.map(str::to_string),
        message: first_line(&e.to_string()),
    }
}

/// A lazy scan of Parquet files (no hive columns: churnseg reads a partitioned
/// directory's files as they are).
fn scan(files: &[PathBuf]) -> pl::PolarsResult<pl::LazyFrame> {
    let paths = files
        .iter()
        .map(|p| pl::PlRefPath::try_from_path(p))
        .collect::<pl::PolarsResult<Vec<_>>>()?;
    let args = pl::ScanArgsParquet {
        hive_options: pl::HiveOptions {
            enabled: Some(false),
            ..Default::default()
        },
        ..Default::default()
    };
    pl::LazyFrame::scan_parquet_sources(pl::ScanSources::Paths(paths.into_iter().collect()), args)
}

/// The polars schema of Parquet files (their metadata only).
fn schema_of(files: &[PathBuf]) -> pl::PolarsResult<pl::SchemaRef> {
    scan(files)?.collect_schema()
}

/// The id column as a join key: Int64 for integers, String for strings and categoricals.
fn key_expr(id: &str, dtype: Option<&pl::DataType>) -> pl::Expr {
    match dtype {
        Some(t) if t.is_integer() => col(id).cast(pl::DataType::Int64),
        _ => col(id).cast(pl::DataType::String),
    }
}

/// `instant` as a literal of the type of `ts` (a timestamp of any unit and zone, or a
/// date), so that the comparison is pushed into the Parquet reader.
fn instant(ts: &pl::DataType, at: AsOf) -> Result<pl::Expr, CustomError> {
    let micros = at.micros();
    Ok(match ts {
        pl::DataType::Datetime(unit, zone) => {
            let v = match unit {
                pl::TimeUnit::Milliseconds => micros / 1000,
                pl::TimeUnit::Microseconds => micros,
                pl::TimeUnit::Nanoseconds => micros * 1000,
            };
            lit(v).cast(pl::DataType::Datetime(*unit, zone.clone()))
        }
        pl::DataType::Date => lit(at.days()).cast(pl::DataType::Date),
        other => {
            return Err(CustomError::Polars {
                of: None,
                message: format!("`ts` is {other}, not a timestamp or a date"),
            });
        }
    })
}

/// The events query of definitions `defs`: the point-in-time filter of the widest window
/// among them (pushed into the Parquet reader), the shard's subscribers (`shard_ids`, a
/// one-column frame named [`KEY`]), and one aggregation per definition. A definition
/// whose window is narrower, or which has a `where`, sees its rows through a predicate
/// applied inside its aggregations, with a count of the rows that pass (`value_name(i,
/// "n")`), so that a subscriber none of whose rows pass gets the definition's default.
#[allow(clippy::too_many_arguments)]
fn events_query(
    events: pl::LazyFrame,
    id: &str,
    ts: &str,
    ts_type: &pl::DataType,
    as_of: AsOf,
    defs: &[(usize, &CustomFeature)],
    shard_ids: Option<pl::DataFrame>,
) -> Result<pl::LazyFrame, CustomError> {
    // events dated before 1900 are ignored, as by the fused pass
    let floor = AsOf::from_date(chrono::NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or_default());
    let start = |window_days: Option<u32>| match window_days {
        Some(w) => as_of.plus_days(-(w as i32)).max(floor),
        None => floor,
    };
    let scan_start = defs
        .iter()
        .map(|(_, d)| start(d.window_days))
        .min()
        .unwrap_or(floor);
    let mut events = events.filter(
        col(ts)
            .gt_eq(instant(ts_type, scan_start)?)
            .and(col(ts).lt(instant(ts_type, as_of)?)),
    );
    let schema = events.collect_schema().map_err(polars_error(None))?;
    events = events.with_column(key_expr(id, schema.get(id)).alias(KEY));
    if let Some(ids) = shard_ids {
        events = events.inner_join(ids.lazy(), col(KEY), col(KEY));
    }
    let sql =
        |text: &str| parse_sql(text).map_err(|message| CustomError::Polars { of: None, message });
    let mut aggs = Vec::new();
    for &(i, d) in defs {
        let value = sql(&d.value)?;
        let def_start = start(d.window_days);
        let window = if def_start > scan_start {
            Some(col(ts).gt_eq(instant(ts_type, def_start)?))
        } else {
            None
        };
        let filter = d.filter.as_deref().map(sql).transpose()?;
        let predicate = match (window, filter) {
            (Some(w), Some(f)) => Some(w.and(f)),
            (w, f) => w.or(f),
        };
        match predicate {
            Some(p) => {
                aggs.push(where_inside(value, &p).alias(value_name(i, "")));
                aggs.push(passing(&p).alias(value_name(i, "n")));
            }
            None => aggs.push(value.alias(value_name(i, ""))),
        }
    }
    Ok(events.group_by([col(KEY)]).agg(aggs))
}

/// The subscriber query: one row expression per definition, with `tenure_days`.
fn subscriber_query(
    subscribers: pl::LazyFrame,
    id: &str,
    signup: &str,
    defs: &[(usize, &CustomFeature)],
    as_of: AsOf,
) -> Result<pl::LazyFrame, CustomError> {
    let mut subscribers = subscribers;
    let schema = subscribers.collect_schema().map_err(polars_error(None))?;
    let tenure = (lit(as_of.days() as i64)
        - col(signup)
            .cast(pl::DataType::Date)
            .cast(pl::DataType::Int64))
    .alias(TENURE);
    let mut select = vec![key_expr(id, schema.get(id)).alias(KEY)];
    for &(i, d) in defs {
        let value =
            parse_sql(&d.value).map_err(|message| CustomError::Polars { of: None, message })?;
        select.push(value.alias(value_name(i, "")));
    }
    Ok(subscribers.with_column(tenure).select(select))
}

/// The rows passing filter `p` (null counts as not passing).
fn passing(p: &pl::Expr) -> pl::Expr {
    p.clone().cast(pl::DataType::UInt32).sum()
}

/// `e` where `p` holds, null elsewhere.
fn masked(e: pl::Expr, p: &pl::Expr) -> pl::Expr {
    pl::when(p.clone()).then(e).otherwise(lit(pl::NULL))
}

/// Rewrites the aggregate expression `value` so that every aggregation in it sees only
/// the rows where `p` holds: each aggregate's input is masked (null where `p` is not
/// true), which the null-skipping aggregates read as a filter; the counts that include
/// nulls (`count(*)`, `len`), null counts and distinct counts are rebuilt from `p`.
fn where_inside(value: pl::Expr, p: &pl::Expr) -> pl::Expr {
    use pl::AggExpr as A;
    let mask = |input: &Arc<pl::Expr>| Arc::new(masked((**input).clone(), p));
    let nulls = |input: &pl::Expr| {
        pl::when(p.clone())
            .then(input.clone().is_null())
            .otherwise(lit(false))
            .cast(pl::DataType::UInt32)
            .sum()
    };
    value.map_expr(|e| match e {
        pl::Expr::Len
        | pl::Expr::Agg(A::Count {
            include_nulls: true,
            ..
        }) => passing(p),
        pl::Expr::Agg(A::NUnique(input)) => {
            let m = masked((*input).clone(), p);
            m.clone().n_unique().cast(pl::DataType::Int64)
                - m.null_count().gt(lit(0)).cast(pl::DataType::Int64)
                + nulls(&input).gt(lit(0)).cast(pl::DataType::Int64)
        }
        pl::Expr::Function {
            input,
            function: pl::FunctionExpr::NullCount,
        } if input.len() == 1 => nulls(&input[0]),
        pl::Expr::Agg(agg) => pl::Expr::Agg(match agg {
            A::Min {
                input,
                propagate_nans,
            } => A::Min {
                input: mask(&input),
                propagate_nans,
            },
            A::Max {
                input,
                propagate_nans,
            } => A::Max {
                input: mask(&input),
                propagate_nans,
            },
            A::Median(input) => A::Median(mask(&input)),
            A::Mean(input) => A::Mean(mask(&input)),
            A::Sum(input) => A::Sum(mask(&input)),
            A::Std(input, ddof) => A::Std(mask(&input), ddof),
            A::Var(input, ddof) => A::Var(mask(&input), ddof),
            A::Count {
                input,
                include_nulls,
            } => A::Count {
                input: mask(&input),
                include_nulls,
            },
            // refused before any work (they depend on the order of the events)
            other => other,
        }),
        other => other,
    })
}

/// The ids of a shard's subscribers as a one-column frame named [`KEY`].
fn id_frame(inputs: &Inputs) -> pl::DataFrame {
    let ids = &inputs.subscribers.ids;
    let series = match ids {
        crate::load::subscribers::SubscriberIds::Int(a) => {
            pl::Series::new(KEY.into(), a.values().to_vec())
        }
        crate::load::subscribers::SubscriberIds::Str(a) => pl::Series::new(
            KEY.into(),
            a.iter().map(|v| v.unwrap_or("")).collect::<Vec<_>>(),
        ),
    };
    pl::DataFrame::new_infer_height(vec![series.into()]).unwrap_or_default()
}

/// One query's result: rows by id, and its columns.
struct Result_ {
    rows: HashMap<IdKey, usize>,
    frame: pl::DataFrame,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum IdKey {
    Int(i64),
    Str(String),
}

impl Result_ {
    fn of(frame: pl::DataFrame) -> Result<Result_, CustomError> {
        let key = frame.column(KEY).map_err(polars_error(None))?;
        let mut rows = HashMap::with_capacity(frame.height());
        match key.dtype() {
            pl::DataType::Int64 => {
                for (r, v) in key.i64().map_err(polars_error(None))?.iter().enumerate() {
                    if let Some(v) = v {
                        rows.insert(IdKey::Int(v), r);
                    }
                }
            }
            _ => {
                for (r, v) in key.str().map_err(polars_error(None))?.iter().enumerate() {
                    if let Some(v) = v {
                        rows.insert(IdKey::Str(v.to_string()), r);
                    }
                }
            }
        }
        Ok(Result_ { rows, frame })
    }

    /// Whether the result has column `name`.
    fn has(&self, name: &str) -> bool {
        self.frame.column(name).is_ok()
    }

    /// A column as floats, by result row.
    fn floats(&self, name: &str) -> Result<Vec<Option<f64>>, CustomError> {
        let column = self
            .frame
            .column(name)
            .and_then(|c| c.cast(&pl::DataType::Float64))
            .map_err(polars_error(None))?;
        Ok(column.f64().map_err(polars_error(None))?.iter().collect())
    }
}

/// Computes the custom features of `inputs` at `as_of` for the rows of `batch` (a
/// feature table's, one shard's or everyone's: `subscriber_id` first) and appends them
/// to it, in definition order.
pub fn append(
    batch: &mut RecordBatch,
    as_of: AsOf,
    inputs: &Inputs,
    shard: Shard,
) -> Result<(), CustomError> {
    let custom = &inputs.custom;
    if custom.is_empty() {
        return Ok(());
    }
    let mut values: Vec<Option<Vec<Option<f64>>>> = vec![None; custom.defs.len()];
    let ids = table_ids(batch);
    // events: one query for every definition
    let defs: Vec<(usize, &CustomFeature)> = custom
        .defs
        .iter()
        .enumerate()
        .filter(|(_, d)| d.from == CustomSource::Events)
        .collect();
    if !defs.is_empty() {
        let events = inputs
            .interactions
            .as_ref()
            .ok_or_else(|| CustomError::Polars {
                of: None,
                message: "custom features aggregate events, but there are no interactions".into(),
            })?;
        let crate::load::interactions::EventSource::Files(files) = &events.source else {
            return Err(CustomError::Polars {
                of: Some(events.source.shown().to_string()),
                message: "custom features scan the interaction files; events handed over in memory have none".into(),
            });
        };
        let shown = files.shown.clone();
        let err = |e: pl::PolarsError| CustomError::Polars {
            of: Some(shown.clone()),
            message: first_line(&e.to_string()),
        };
        let schema = scan(&files.files)
            .and_then(|mut lf| lf.collect_schema())
            .map_err(err)?;
        let ts_type = schema
            .get(&events.names.ts)
            .cloned()
            .unwrap_or(pl::DataType::Null);
        let query = events_query(
            scan(&files.files).map_err(err)?,
            &events.names.subscriber_id,
            &events.names.ts,
            &ts_type,
            as_of,
            &defs,
            (shard != Shard::ALL).then(|| id_frame(inputs)),
        )?;
        let result = Result_::of(collect(query).map_err(err)?)?;
        for (i, d) in defs {
            let v = result.floats(&value_name(i, ""))?;
            let n = value_name(i, "n");
            let passing = match result.has(&n) {
                true => Some(result.floats(&n)?),
                false => None,
            };
            values[i] = Some(
                ids.iter()
                    .map(|id| match id.as_ref().and_then(|k| result.rows.get(k)) {
                        Some(&r) if passing.as_ref().is_none_or(|n| n[r].unwrap_or(0.0) > 0.0) => {
                            v[r]
                        }
                        _ => d.default,
                    })
                    .collect(),
            );
        }
    }
    let from_subscribers: Vec<(usize, &CustomFeature)> = custom
        .defs
        .iter()
        .enumerate()
        .filter(|(_, d)| d.from == CustomSource::Subscribers)
        .collect();
    if !from_subscribers.is_empty() {
        let shown = inputs.subscribers.source.clone();
        let err = |e: pl::PolarsError| CustomError::Polars {
            of: Some(shown.clone()),
            message: first_line(&e.to_string()),
        };
        let query = subscriber_query(
            scan(&inputs.subscriber_files).map_err(err)?,
            &inputs.subscriber_columns.subscriber_id,
            &inputs.subscriber_columns.signup_date,
            &from_subscribers,
            as_of,
        )?;
        let result = Result_::of(collect(query).map_err(err)?)?;
        for (i, _) in from_subscribers {
            let v = result.floats(&value_name(i, ""))?;
            values[i] = Some(
                ids.iter()
                    .map(|id| {
                        id.as_ref()
                            .and_then(|k| result.rows.get(k))
                            .and_then(|&r| v[r])
                    })
                    .collect(),
            );
        }
    }
    let schema = batch.schema();
    let mut fields: Vec<Arc<Field>> = schema.fields().iter().cloned().collect();
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    for (d, v) in custom.defs.iter().zip(values) {
        let v = v.unwrap_or_else(|| vec![None; ids.len()]);
        fields.push(Arc::new(Field::new(&d.name, ArrowType::Float64, true)));
        columns.push(Arc::new(Float64Array::from(v)));
    }
    *batch = RecordBatch::try_new(Arc::new(ArrowSchema::new(fields)), columns).map_err(|e| {
        CustomError::Polars {
            of: None,
            message: e.to_string(),
        }
    })?;
    Ok(())
}

/// Runs a query on the streaming engine (inputs larger than memory are read in pieces).
fn collect(query: pl::LazyFrame) -> pl::PolarsResult<pl::DataFrame> {
    Ok(query
        .collect_with_engine(pl::Engine::Streaming)?
        .unwrap_single())
}

/// The ids of a feature table's rows.
fn table_ids(batch: &RecordBatch) -> Vec<Option<IdKey>> {
    let column = batch.column(0);
    match column.data_type() {
        ArrowType::Int64 => column
            .as_primitive::<Int64Type>()
            .iter()
            .map(|v| v.map(IdKey::Int))
            .collect(),
        _ => match arrow::compute::cast(column, &ArrowType::Utf8) {
            Ok(s) => s
                .as_string::<i32>()
                .iter()
                .map(|v| v.map(|v| IdKey::Str(v.to_string())))
                .collect(),
            Err(_) => vec![None; column.len()],
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The filter applied inside the aggregates gives what filtering the rows first gives,
    /// for every aggregate allowed, nulls and groups with no passing row included.
    #[test]
    fn a_filter_inside_the_aggregates_is_the_filter_on_the_rows() {
        let frame = polars::df!(
            "k" => [1i64, 1, 1, 1, 2, 2, 3, 3, 3],
            "x" => [Some(1.0), None, Some(4.0), Some(4.0), Some(2.0), None, None, Some(7.0), Some(-1.0)],
            "c" => [Some("a"), Some("b"), None, Some("a"), Some("z"), None, Some("q"), None, Some("q")],
            "keep" => [true, true, false, true, false, false, true, true, true]
        )
        .unwrap();
        let p = parse_sql("keep AND (c IS NULL OR c <> 'b')").unwrap();
        for value in [
            "sum(x)",
            "avg(x)",
            "min(x) + max(x)",
            "median(x)",
            "stddev(x)",
            "variance(x)",
            "count(x)",
            "count(*)",
            "count(DISTINCT c)",
            "count(DISTINCT x) * 10 + count(*)",
            "sum(CASE WHEN c = 'a' THEN 1 ELSE 0 END) / count(*)",
        ] {
            let v = parse_sql(value).unwrap();
            let inside = frame
                .clone()
                .lazy()
                .group_by([col("k")])
                .agg([
                    where_inside(v.clone(), &p)
                        .cast(pl::DataType::Float64)
                        .alias("v"),
                    passing(&p).alias("n"),
                ])
                .filter(col("n").gt(lit(0)))
                .select([col("k"), col("v")])
                .sort(["k"], Default::default())
                .collect()
                .unwrap();
            let rows = frame
                .clone()
                .lazy()
                .filter(p.clone())
                .group_by([col("k")])
                .agg([v.cast(pl::DataType::Float64).alias("v")])
                .sort(["k"], Default::default())
                .collect()
                .unwrap();
            assert_eq!(inside, rows, "{value}");
        }
    }
}
