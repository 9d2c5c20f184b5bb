//! The interactions (touchpoint events): checked by schema up front, then streamed row
//! group by row group so that the event table is never held in memory whole.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Schema};

use super::columns::{example, is_string_like};
use super::error::LoadError;
use super::files::ParquetSource;
use super::files::RowGroupRef;
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
    pub source: ParquetSource,
    pub names: InteractionColumns,
    /// Which optional columns exist.
    pub present: Vec<EventField>,
    pub rows: u64,
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
        let n = &self.names;
        match field {
            EventField::Channel => &n.channel,
            EventField::DurationS => &n.duration_s,
            EventField::Satisfaction => &n.satisfaction,
            EventField::Revenue => &n.revenue,
            EventField::Cost => &n.cost,
            EventField::Resolved => &n.resolved,
            EventField::Reason => &n.reason,
        }
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
            problems.extend(super::files::duplicate_columns(&schema));
            let mut check = |name: &str,
                             required: bool,
                             ok: &dyn Fn(&DataType) -> bool,
                             expected: &str|
             -> bool {
                match schema.field_with_name(name) {
                    Err(_) => {
                        if required {
                            problems.push(format!("missing required column `{name}`"));
                        }
                        false
                    }
                    Ok(field) if ok(field.data_type()) => true,
                    Ok(field) => {
                        let sample = first_value(&source, file, name)
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
            for field in EventField::ALL {
                let name = match field {
                    EventField::Channel => &names.channel,
                    EventField::DurationS => &names.duration_s,
                    EventField::Satisfaction => &names.satisfaction,
                    EventField::Revenue => &names.revenue,
                    EventField::Cost => &names.cost,
                    EventField::Resolved => &names.resolved,
                    EventField::Reason => &names.reason,
                };
                let found = match field {
                    EventField::Channel | EventField::Reason => {
                        check(name, false, &is_string_like, "Utf8")
                    }
                    EventField::Resolved => {
                        check(name, false, &|dt| *dt == DataType::Boolean, "Boolean")
                    }
                    _ => check(name, false, &|dt| dt.is_numeric(), "Float64"),
                };
                if found {
                    present.push(field);
                }
            }
        }
        if !problems.is_empty() {
            return Err(LoadError::invalid(&source.shown, problems));
        }
        Ok(Interactions {
            source,
            names,
            present,
            rows,
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
