//! Inputs handed over in memory instead of by path: Arrow record batches (from Python
//! through the Arrow C stream interface, or from any Rust caller). A table in memory is
//! checked by the same code as a file, with the same messages; where a message names a
//! file it names the table's `shown` label instead.
//!
//! The interactions in memory are split into row groups of [`GROUP_ROWS`] rows (zero-copy
//! slices), the unit of parallel work that a Parquet row group is for files, so the
//! feature pass runs on them unchanged.

use std::path::PathBuf;

use arrow::array::{Array, RecordBatch};
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;

use super::files::RowGroupRef;

/// Rows per row group of a table in memory: enough work per task, and enough tasks for
/// every thread on a few hundred thousand events.
pub const GROUP_ROWS: usize = 64 * 1024;

/// One input table in memory: its schema, its batches, and a label for messages.
#[derive(Debug, Clone)]
pub struct ArrowTable {
    /// What messages call the table (e.g. `interactions (pyarrow.Table)`).
    pub shown: String,
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    /// `(batch, offset, rows)` of each row group.
    groups: Vec<(usize, usize, usize)>,
}

/// Where an input table comes from: a path (a Parquet file, a directory of them or a
/// glob), or batches in memory.
#[derive(Debug, Clone)]
pub enum TableSource {
    Path(PathBuf),
    Memory(ArrowTable),
}

impl ArrowTable {
    /// A table of `batches`, which must all have `schema`'s columns and types.
    pub fn new(
        shown: impl Into<String>,
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
    ) -> Result<ArrowTable, ArrowError> {
        let shown = shown.into();
        if let Some(batch) = batches
            .iter()
            .find(|b| b.schema().fields() != schema.fields())
        {
            return Err(ArrowError::SchemaError(format!(
                "{shown}: a batch has other columns or types than the table's schema ({} against {})",
                batch.schema(),
                schema
            )));
        }
        let groups = batches
            .iter()
            .enumerate()
            .flat_map(|(b, batch)| {
                let rows = batch.num_rows();
                (0..rows)
                    .step_by(GROUP_ROWS)
                    .map(move |offset| (b, offset, GROUP_ROWS.min(rows - offset)))
            })
            .collect();
        Ok(ArrowTable {
            shown,
            schema,
            batches,
            groups,
        })
    }

    /// Number of rows.
    pub fn rows(&self) -> u64 {
        self.batches.iter().map(|b| b.num_rows() as u64).sum()
    }

    /// The row groups, in row order (`file` is always 0).
    pub fn row_groups(&self) -> Vec<RowGroupRef> {
        self.groups
            .iter()
            .enumerate()
            .map(|(row_group, &(_, _, rows))| RowGroupRef {
                file: 0,
                row_group,
                rows,
            })
            .collect()
    }

    /// The named columns (those the table has) of one row group, in batches of at most
    /// `batch_size` rows.
    pub fn read_row_group(
        &self,
        group: &RowGroupRef,
        columns: &[&str],
        batch_size: usize,
    ) -> Result<std::vec::IntoIter<RecordBatch>, ArrowError> {
        let Some(&(b, offset, rows)) = self.groups.get(group.row_group) else {
            return Err(ArrowError::InvalidArgumentError(format!(
                "{}: no row group {}",
                self.shown, group.row_group
            )));
        };
        let indices: Vec<usize> = (0..self.schema.fields().len())
            .filter(|&i| columns.contains(&self.schema.field(i).name().as_str()))
            .collect();
        let batch = self.batches[b].slice(offset, rows).project(&indices)?;
        let step = batch_size.max(1);
        Ok((0..rows)
            .step_by(step)
            .map(|at| batch.slice(at, step.min(rows - at)))
            .collect::<Vec<_>>()
            .into_iter())
    }

    /// The first non-null value of column `name`, formatted for a message.
    pub fn first_value(&self, name: &str) -> Option<String> {
        let idx = self.schema.index_of(name).ok()?;
        self.batches.iter().find_map(|b| {
            let column = b.column(idx);
            let row = (0..column.len()).find(|&r| column.is_valid(r))?;
            Some(super::columns::example(column.as_ref(), row))
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn table(sizes: &[usize]) -> ArrowTable {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]));
        let batches = sizes
            .iter()
            .map(|&n| {
                RecordBatch::try_new(
                    schema.clone(),
                    vec![
                        Arc::new(Int64Array::from_iter_values(0..n as i64)),
                        Arc::new(StringArray::from_iter_values((0..n).map(|i| i.to_string()))),
                    ],
                )
                .unwrap()
            })
            .collect();
        ArrowTable::new("t", schema, batches).unwrap()
    }

    #[test]
    fn row_groups_cover_every_row_once_in_order() {
        let t = table(&[GROUP_ROWS + 5, 0, 3]);
        let groups = t.row_groups();
        assert_eq!(
            groups.iter().map(|g| g.rows).collect::<Vec<_>>(),
            vec![GROUP_ROWS, 5, 3]
        );
        let mut ids = Vec::new();
        for g in &groups {
            for batch in t.read_row_group(g, &["id"], 1000).unwrap() {
                assert_eq!(batch.num_columns(), 1);
                assert!(batch.num_rows() <= 1000);
                let a = batch
                    .column(0)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap();
                ids.extend(a.values().iter().copied());
            }
        }
        let expected: Vec<i64> = (0..GROUP_ROWS as i64 + 5).chain(0..3).collect();
        assert_eq!(ids, expected);
        assert_eq!(t.rows(), GROUP_ROWS as u64 + 8);
    }

    #[test]
    fn a_batch_of_another_schema_is_refused() {
        let t = table(&[2]);
        let other = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
        let err = ArrowTable::new("events", other, t.batches).unwrap_err();
        assert!(
            err.to_string()
                .contains("events: a batch has other columns")
        );
    }
}
