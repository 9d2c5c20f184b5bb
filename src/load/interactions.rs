//! The interactions (touchpoint events): checked by schema up front, then streamed row
//! group by row group so that the event table is never held in memory whole. A table
//! already in memory ([`ArrowTable`]) is checked the same way and read slice by slice.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Schema};
use arrow::error::ArrowError;
use parquet::arrow::arrow_reader::ParquetRecordBatchReader;

use super::columns::{example, is_string_like};
use super::error::LoadError;
use super::files::ParquetSource;
use super::files::RowGroupRef;
use super::memory::ArrowTable;
use crate::shard::Shard;

/// Column names of the interactions (SPEC §2 defaults).
#[derive(Debug, Clone)]
pub struct InteractionColumns {
    pub subscriber_id: String,
    pub ts: String,
    pub touchpoint: String,
    pub channel: String,
    pub duration_s: String,
    pub satisfaction: String,
    pub revenue: String,
    pub cost: String,
    pub resolved: String,
    pub reason: String,
}

impl Default for InteractionColumns {
    fn default() -> Self {
        InteractionColumns {
            subscriber_id: "subscriber_id".into(),
            ts: "ts".into(),
            touchpoint: "touchpoint".into(),
            channel: "channel".into(),
            duration_s: "duration_s".into(),
            satisfaction: "satisfaction".into(),
            revenue: "revenue".into(),
            cost: "cost".into(),
            resolved: "resolved".into(),
            reason: "reason".into(),
        }
    }
}

impl InteractionColumns {
    /// The name of an optional column.
    pub fn of(&self, field: EventField) -> &str {
        match field {
            EventField::Channel => &self.channel,
            EventField::DurationS => &self.duration_s,
            EventField::Satisfaction => &self.satisfaction,
            EventField::Revenue => &self.revenue,
            EventField::Cost => &self.cost,
            EventField::Resolved => &self.resolved,
            EventField::Reason => &self.reason,
        }
    }
}

/// One optional column of the interactions, for choosing what to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventField {
    Channel,
    DurationS,
    Satisfaction,
    Revenue,
    Cost,
    Resolved,
    Reason,
}

impl EventField {
    pub const ALL: [EventField; 7] = [
        EventField::Channel,
        EventField::DurationS,
        EventField::Satisfaction,
        EventField::Revenue,
        EventField::Cost,
        EventField::Resolved,
        EventField::Reason,
    ];
}

/// The checked interactions input.
#[derive(Debug, Clone)]
pub struct Interactions {
    pub source: EventSource,
    pub names: InteractionColumns,
    /// Which optional columns exist.
    pub present: Vec<EventField>,
    pub rows: u64,
}

/// Where the events are: Parquet files, or a table in memory.
#[derive(Debug, Clone)]
pub enum EventSource {
    Files(ParquetSource),
    Memory(ArrowTable),
}

/// The batches of one row group, from a file or from memory.
pub enum EventBatches {
    File(ParquetRecordBatchReader),
    Memory(std::vec::IntoIter<RecordBatch>),
}

impl Iterator for EventBatches {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            EventBatches::File(reader) => reader.next(),
            EventBatches::Memory(batches) => batches.next().map(Ok),
        }
    }
}

impl EventSource {
    /// The input as the user named it (a path, or a table's label), for messages.
    pub fn shown(&self) -> &str {
        match self {
            EventSource::Files(s) => &s.shown,
            EventSource::Memory(t) => &t.shown,
        }
    }

    /// Number of files read (0 for a table in memory).
    pub fn file_count(&self) -> usize {
        match self {
            EventSource::Files(s) => s.files.len(),
            EventSource::Memory(_) => 0,
        }
    }

    /// The row groups to process, in input order.
    pub fn row_groups(&self) -> Result<Vec<RowGroupRef>, LoadError> {
        match self {
            EventSource::Files(s) => s.row_groups(),
            EventSource::Memory(t) => Ok(t.row_groups()),
        }
    }

    /// The named columns of one row group (see [`ParquetSource::read_row_group`];
    /// `dictionaries` only matters for files: a table in memory is read as it is).
    pub fn read_row_group(
        &self,
        group: &RowGroupRef,
        columns: &[&str],
        dictionaries: &[&str],
        batch_size: usize,
    ) -> Result<EventBatches, LoadError> {
        match self {
            EventSource::Files(s) => s
                .read_row_group(group, columns, dictionaries, batch_size)
                .map(EventBatches::File),
            EventSource::Memory(t) => t
                .read_row_group(group, columns, batch_size)
                .map(EventBatches::Memory)
                .map_err(|e| self.corrupt(group.file, e)),
        }
    }

    /// The error for input that failed while being decoded.
    pub fn corrupt(&self, file: usize, e: impl std::fmt::Display) -> LoadError {
        match self {
            EventSource::Files(s) => s.corrupt(file, e),
            EventSource::Memory(t) => LoadError::Unreadable {
                path: t.shown.clone(),
                message: e.to_string(),
            },
        }
    }
}

/// The columns of one batch of events. Optional columns are `None` when absent or not
/// asked for; numeric ones are cast to Float64.
pub struct EventColumns {
    pub rows: usize,
    pub subscriber_id: ArrayRef,
    pub ts: ArrayRef,
    pub touchpoint: ArrayRef,
    pub channel: Option<ArrayRef>,
    pub duration_s: Option<ArrayRef>,
    pub satisfaction: Option<ArrayRef>,
    pub revenue: Option<ArrayRef>,
    pub cost: Option<ArrayRef>,
    pub resolved: Option<ArrayRef>,
    pub reason: Option<ArrayRef>,
}

impl Interactions {
    fn name(&self, field: EventField) -> &str {
        self.names.of(field)
    }

    /// Opens and checks the interactions at `path`. `ids_are_strings` says what the
    /// subscriber file uses, since both must agree.
    pub fn open(
        path: &Path,
        names: InteractionColumns,
        ids_are_strings: bool,
    ) -> Result<Interactions, LoadError> {
        let source = ParquetSource::resolve(path)?;
        let mut problems = Vec::new();
        let mut present = Vec::new();
        let mut rows = 0u64;
        let mut first_schema: Option<Arc<Schema>> = None;
        for file in 0..source.files.len() {
            let builder = source.open(file)?;
            rows += builder.metadata().file_metadata().num_rows().max(0) as u64;
            let schema = builder.schema().clone();
            let shown = source.file_name(file);
            if let Some(first) = &first_schema {
                if first.fields() != schema.fields() {
                    problems.push(format!(
                        "file {shown} has other columns or types than {} (all files of one input must share a schema)",
                        source.file_name(0)
                    ));
                }
                continue;
            }
            first_schema = Some(schema.clone());
            present = check_schema(&schema, &names, ids_are_strings, &mut problems, &|name| {
                first_value(&source, file, name)
            });
        }
        if !problems.is_empty() {
            return Err(LoadError::invalid(&source.shown, problems));
        }
        Ok(Interactions {
            source: EventSource::Files(source),
            names,
            present,
            rows,
        })
    }

    /// [`Interactions::open`] of a table in memory: the same checks and messages, with
    /// the table's label where a file would be named.
    pub fn from_table(
        table: ArrowTable,
        names: InteractionColumns,
        ids_are_strings: bool,
    ) -> Result<Interactions, LoadError> {
        let mut problems = Vec::new();
        let present = check_schema(
            &table.schema,
            &names,
            ids_are_strings,
            &mut problems,
            &|name| table.first_value(name),
        );
        if !problems.is_empty() {
            return Err(LoadError::invalid(&table.shown, problems));
        }
        Ok(Interactions {
            rows: table.rows(),
            source: EventSource::Memory(table),
            names,
            present,
        })
    }

    /// Whether an optional column exists.
    pub fn has(&self, field: EventField) -> bool {
        self.present.contains(&field)
    }

    /// The row groups to process, in file order.
    pub fn row_groups(&self) -> Result<Vec<RowGroupRef>, LoadError> {
        self.source.row_groups()
    }

    /// Reads one row group, calling `each` for every batch of events. Only the required
    /// columns and the `wanted` optional ones are read.
    pub fn for_each_batch(
        &self,
        group: &RowGroupRef,
        wanted: &[EventField],
        each: impl FnMut(&EventColumns),
    ) -> Result<(), LoadError> {
        self.for_each_batch_of(group, wanted, Shard::ALL, each)
    }

    /// [`Self::for_each_batch`] over the events of one shard's subscribers only: each
    /// batch is filtered by the shard of its `subscriber_id` before it is handed on, so
    /// the other shards' events are neither counted nor accumulated here.
    pub fn for_each_batch_of(
        &self,
        group: &RowGroupRef,
        wanted: &[EventField],
        shard: Shard,
        mut each: impl FnMut(&EventColumns),
    ) -> Result<(), LoadError> {
        let fields: Vec<EventField> = wanted.iter().copied().filter(|f| self.has(*f)).collect();
        let mut names: Vec<&str> = vec![
            &self.names.subscriber_id,
            &self.names.ts,
            &self.names.touchpoint,
        ];
        names.extend(fields.iter().map(|f| self.name(*f)));
        let dictionaries = [
            self.names.touchpoint.as_str(),
            &self.names.channel,
            &self.names.reason,
        ];
        // 16k rows: a batch's decoded columns and the pass's scratch stay a few MB per
        // thread, so memory hardly grows with the thread count.
        let reader = self
            .source
            .read_row_group(group, &names, &dictionaries, 16 * 1024)?;
        for batch in reader {
            let mut batch = batch.map_err(|e| self.source.corrupt(group.file, e))?;
            let mask = batch
                .column_by_name(&self.names.subscriber_id)
                .and_then(|ids| shard.mask(ids.as_ref()));
            if let Some(mask) = mask {
                batch = arrow::compute::filter_record_batch(&batch, &mask)?;
            }
            let columns = self
                .columns(&batch, &fields)
                .map_err(|e| self.source.corrupt(group.file, e))?;
            each(&columns);
        }
        Ok(())
    }

    fn columns(&self, batch: &RecordBatch, fields: &[EventField]) -> Result<EventColumns, String> {
        let get = |name: &str| -> Result<ArrayRef, String> {
            batch
                .column_by_name(name)
                .cloned()
                .ok_or_else(|| format!("column `{name}` missing from a batch"))
        };
        let optional = |field: EventField| -> Result<Option<ArrayRef>, String> {
            if !fields.contains(&field) {
                return Ok(None);
            }
            let array = get(self.name(field))?;
            let numeric = matches!(
                field,
                EventField::DurationS
                    | EventField::Satisfaction
                    | EventField::Revenue
                    | EventField::Cost
            );
            if numeric && *array.data_type() != DataType::Float64 {
                return cast(&array, &DataType::Float64)
                    .map(Some)
                    .map_err(|e| e.to_string());
            }
            Ok(Some(array))
        };
        Ok(EventColumns {
            rows: batch.num_rows(),
            subscriber_id: get(&self.names.subscriber_id)?,
            ts: get(&self.names.ts)?,
            touchpoint: get(&self.names.touchpoint)?,
            channel: optional(EventField::Channel)?,
            duration_s: optional(EventField::DurationS)?,
            satisfaction: optional(EventField::Satisfaction)?,
            revenue: optional(EventField::Revenue)?,
            cost: optional(EventField::Cost)?,
            resolved: optional(EventField::Resolved)?,
            reason: optional(EventField::Reason)?,
        })
    }
}

/// Checks the columns of an interactions schema, pushing every problem; returns which
/// optional columns are present. `sample` gives a column's first value for messages.
fn check_schema(
    schema: &Schema,
    names: &InteractionColumns,
    ids_are_strings: bool,
    problems: &mut Vec<String>,
    sample: &dyn Fn(&str) -> Option<String>,
) -> Vec<EventField> {
    problems.extend(super::files::duplicate_columns(schema));
    let mut check =
        |name: &str, required: bool, ok: &dyn Fn(&DataType) -> bool, expected: &str| -> bool {
            match schema.field_with_name(name) {
                Err(_) => {
                    if required {
                        problems.push(format!("missing required column `{name}`"));
                    }
                    false
                }
                Ok(field) if ok(field.data_type()) => true,
                Ok(field) => {
                    let sample = sample(name)
                        .map(|s| format!(" (example {s})"))
                        .unwrap_or_default();
                    problems.push(format!(
                        "column `{name}`: expected {expected}, found {}{sample}",
                        field.data_type()
                    ));
                    false
                }
            }
        };
    let id_ok = move |dt: &DataType| {
        if ids_are_strings {
            is_string_like(dt)
        } else {
            dt.is_integer()
        }
    };
    let id_expected = if ids_are_strings {
        "Utf8 (as in the subscriber file)"
    } else {
        "Int64 (as in the subscriber file)"
    };
    check(&names.subscriber_id, true, &id_ok, id_expected);
    check(
        &names.ts,
        true,
        &|dt| {
            matches!(
                dt,
                DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64
            )
        },
        "Datetime or Date",
    );
    check(&names.touchpoint, true, &is_string_like, "Utf8");
    let mut present = Vec::new();
    for field in EventField::ALL {
        let name = names.of(field);
        let found = match field {
            EventField::Channel | EventField::Reason => check(name, false, &is_string_like, "Utf8"),
            EventField::Resolved => check(name, false, &|dt| *dt == DataType::Boolean, "Boolean"),
            _ => check(name, false, &|dt| dt.is_numeric(), "Float64"),
        };
        if found {
            present.push(field);
        }
    }
    present
}

fn first_value(source: &ParquetSource, file: usize, name: &str) -> Option<String> {
    let builder = source.open(file).ok()?;
    let idx = builder.schema().index_of(name).ok()?;
    let mask = parquet::arrow::ProjectionMask::roots(builder.parquet_schema(), [idx]);
    let mut reader = builder
        .with_projection(mask)
        .with_batch_size(16)
        .build()
        .ok()?;
    let batch = reader.next()?.ok()?;
    let column = batch.column(0);
    let row = (0..column.len()).find(|&r| column.is_valid(r))?;
    Some(example(column.as_ref(), row))
}
