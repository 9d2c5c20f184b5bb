//! Resolving an input path — a Parquet file, a directory of them (hive-partitioned
//! directories included), or a glob in the last path component — into files, and
//! opening them with column projection.

use std::fs::File;
use std::path::{Path, PathBuf};

use std::sync::Arc;

use arrow::datatypes::{DataType, Schema, SchemaRef};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderOptions, ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder,
};

use super::error::LoadError;

/// The Parquet files behind one input path, in a stable (sorted) order.
#[derive(Debug, Clone)]
pub struct ParquetSource {
    /// The path as the user gave it, for messages.
    pub shown: String,
    pub files: Vec<PathBuf>,
}

/// One row group of one file: the unit of parallel work.
#[derive(Debug, Clone)]
pub struct RowGroupRef {
    pub file: usize,
    pub row_group: usize,
    pub rows: usize,
}

impl ParquetSource {
    /// Resolves `path` into its Parquet files.
    pub fn resolve(path: &Path) -> Result<ParquetSource, LoadError> {
        let shown = path.display().to_string();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let files = if name.contains(['*', '?']) {
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            if !dir.is_dir() {
                return Err(LoadError::Missing {
                    path: dir.display().to_string(),
                });
            }
            let mut files = Vec::new();
            for entry in read_dir(dir)? {
                let entry_name = entry
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if wildcard_match(&name, &entry_name) {
                    if entry.is_dir() {
                        collect_parquet(&entry, &mut files)?;
                    } else {
                        files.push(entry);
                    }
                }
            }
            files
        } else if path.is_dir() {
            let mut files = Vec::new();
            collect_parquet(path, &mut files)?;
            files
        } else if path.exists() {
            vec![path.to_path_buf()]
        } else {
            return Err(LoadError::Missing { path: shown });
        };
        if files.is_empty() {
            return Err(LoadError::NoFiles { path: shown });
        }
        Ok(ParquetSource { shown, files })
    }

    /// Opens file `index` and returns its reader builder.
    pub fn open(&self, index: usize) -> Result<ParquetRecordBatchReaderBuilder<File>, LoadError> {
        let path = &self.files[index];
        let file = File::open(path).map_err(|e| LoadError::Unreadable {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| LoadError::Corrupt {
            path: path.display().to_string(),
            message: e.to_string(),
        })
    }

    /// The Arrow schema of every file; files must agree on the columns they share.
    pub fn schemas(&self) -> Result<Vec<SchemaRef>, LoadError> {
        (0..self.files.len())
            .map(|i| Ok(self.open(i)?.schema().clone()))
            .collect()
    }

    /// Every row group of every file, in file order.
    pub fn row_groups(&self) -> Result<Vec<RowGroupRef>, LoadError> {
        let mut groups = Vec::new();
        for file in 0..self.files.len() {
            let builder = self.open(file)?;
            for (row_group, meta) in builder.metadata().row_groups().iter().enumerate() {
                groups.push(RowGroupRef {
                    file,
                    row_group,
                    rows: meta.num_rows().max(0) as usize,
                });
            }
        }
        Ok(groups)
    }

    /// A reader over the named columns of one row group (columns absent from the file
    /// are simply not returned). String columns named in `dictionaries` are decoded as
    /// dictionary arrays, so that dictionary-encoded pages are never expanded into one
    /// string per row.
    pub fn read_row_group(
        &self,
        group: &RowGroupRef,
        columns: &[&str],
        dictionaries: &[&str],
        batch_size: usize,
    ) -> Result<ParquetRecordBatchReader, LoadError> {
        let mut builder = self.open(group.file)?;
        let schema = builder.schema().clone();
        let hinted: Vec<arrow::datatypes::FieldRef> = schema
            .fields()
            .iter()
            .map(|f| match f.data_type() {
                DataType::Utf8 | DataType::LargeUtf8
                    if dictionaries.contains(&f.name().as_str()) =>
                {
                    let dict = DataType::Dictionary(
                        Box::new(DataType::Int32),
                        Box::new(f.data_type().clone()),
                    );
                    Arc::new(f.as_ref().clone().with_data_type(dict))
                }
                _ => f.clone(),
            })
            .collect();
        if hinted.iter().zip(schema.fields()).any(|(a, b)| a != b) {
            let path = &self.files[group.file];
            let file = File::open(path).map_err(|e| LoadError::Unreadable {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
            let options = ArrowReaderOptions::new().with_schema(Arc::new(Schema::new(hinted)));
            builder = ParquetRecordBatchReaderBuilder::try_new_with_options(file, options)
                .map_err(|e| self.corrupt(group.file, e))?;
        }
        let mask = projection(&builder, columns);
        builder
            .with_projection(mask)
            .with_row_groups(vec![group.row_group])
            .with_batch_size(batch_size)
            .build()
            .map_err(|e| self.corrupt(group.file, e))
    }

    /// Reads the named columns (all when `columns` is `None`) of every file, file by file.
    pub fn read_all(
        &self,
        columns: Option<&[&str]>,
    ) -> Result<Vec<(usize, arrow::record_batch::RecordBatch)>, LoadError> {
        let mut out = Vec::new();
        for file in 0..self.files.len() {
            let builder = self.open(file)?;
            let builder = match columns {
                Some(cols) => {
                    let mask = projection(&builder, cols);
                    builder.with_projection(mask)
                }
                None => builder,
            };
            let reader = builder
                .with_batch_size(64 * 1024)
                .build()
                .map_err(|e| self.corrupt(file, e))?;
            for batch in reader {
                out.push((file, batch.map_err(|e| self.corrupt(file, e))?));
            }
        }
        Ok(out)
    }

    /// The error for a file that failed while being decoded.
    pub fn corrupt(&self, file: usize, e: impl std::fmt::Display) -> LoadError {
        LoadError::Corrupt {
            path: self.files[file].display().to_string(),
            message: e.to_string(),
        }
    }

    /// The display name of file `index`.
    pub fn file_name(&self, index: usize) -> String {
        self.files[index].display().to_string()
    }
}

/// The problem of a schema that names two columns alike (Parquet allows it; a feature
/// table or a lookup by name cannot tell them apart).
pub(crate) fn duplicate_columns(schema: &Schema) -> Option<String> {
    let mut seen = std::collections::BTreeSet::new();
    let duplicates: std::collections::BTreeSet<&str> = schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .filter(|n| !seen.insert(*n))
        .collect();
    (!duplicates.is_empty()).then(|| {
        format!(
            "duplicate column name(s) {} (every column needs its own name)",
            duplicates
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

fn projection(builder: &ParquetRecordBatchReaderBuilder<File>, columns: &[&str]) -> ProjectionMask {
    let fields = builder.schema().fields();
    let roots: Vec<usize> = (0..fields.len())
        .filter(|&i| columns.contains(&fields[i].name().as_str()))
        .collect();
    ProjectionMask::roots(builder.parquet_schema(), roots)
}

fn read_dir(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let entries = std::fs::read_dir(dir).map_err(|e| LoadError::Unreadable {
        path: dir.display().to_string(),
        message: e.to_string(),
    })?;
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    Ok(paths)
}

/// Collects `*.parquet` files under `dir`, recursively and sorted; hidden and `_`-prefixed
/// entries (`_SUCCESS`, `.crc`, temporary files) are skipped as Spark and Hive do.
fn collect_parquet(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), LoadError> {
    for path in read_dir(dir)? {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.starts_with('.') || name.starts_with('_') {
            continue;
        }
        if path.is_dir() {
            collect_parquet(&path, out)?;
        } else if name.ends_with(".parquet") || name.ends_with(".parq") || name.ends_with(".pq") {
            out.push(path);
        }
    }
    Ok(())
}

/// Shell-style match of `*` and `?` against a whole file name.
fn wildcard_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::wildcard_match;

    #[test]
    fn wildcards() {
        assert!(wildcard_match("*.parquet", "part-0.parquet"));
        assert!(wildcard_match("part-?.parquet", "part-1.parquet"));
        assert!(!wildcard_match("*.parquet", "part-0.csv"));
        assert!(wildcard_match("*", "x"));
    }
}
