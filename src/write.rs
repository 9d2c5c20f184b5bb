//! Writing outputs atomically: every file is written to a temporary name in its
//! destination directory and renamed into place only once it is complete, so a failed
//! run leaves the previous outputs byte-identical.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

/// Why an output could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("failed to write {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("failed to write {path}: {source}")]
    Parquet {
        path: String,
        source: parquet::errors::ParquetError,
    },
}

/// A file being written under a temporary name; [`AtomicFile::commit`] renames it into
/// place. Dropped without a commit, the temporary file is removed.
pub struct AtomicFile {
    target: PathBuf,
    temp: PathBuf,
    file: Option<BufWriter<File>>,
}

impl AtomicFile {
    /// Creates the temporary file beside `target` (and `target`'s directory if needed).
    pub fn create(target: &Path) -> Result<AtomicFile, WriteError> {
        let io = |source| WriteError::Io {
            path: target.display().to_string(),
            source,
        };
        let dir = match target.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&dir).map_err(io)?;
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
        let file = File::create(&temp).map_err(io)?;
        Ok(AtomicFile {
            target: target.to_path_buf(),
            temp,
            file: Some(BufWriter::new(file)),
        })
    }

    /// The writer for the temporary file.
    pub fn writer(&mut self) -> &mut BufWriter<File> {
        self.file
            .as_mut()
            .unwrap_or_else(|| unreachable!("writer used after commit"))
    }

    /// Flushes, syncs and renames the temporary file onto the target.
    pub fn commit(mut self) -> Result<(), WriteError> {
        let io = |source| WriteError::Io {
            path: self.target.display().to_string(),
            source,
        };
        if let Some(writer) = self.file.take() {
            let file = writer.into_inner().map_err(|e| io(e.into_error()))?;
            file.sync_all().map_err(io)?;
        }
        fs::rename(&self.temp, &self.target).map_err(io)
    }

    fn target_name(&self) -> String {
        self.target.display().to_string()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.is_some() {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

/// Writes bytes to `path` atomically.
pub fn write_bytes(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    let mut file = AtomicFile::create(path)?;
    file.writer()
        .write_all(bytes)
        .map_err(|source| WriteError::Io {
            path: path.display().to_string(),
            source,
        })?;
    file.commit()
}

/// Parquet writer properties used for every output: zstd, statistics on.
pub fn parquet_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).unwrap_or_default()))
        .set_max_row_group_row_count(Some(1 << 20))
        .build()
}

/// A Parquet file written batch by batch and committed atomically.
pub struct ParquetSink {
    file: AtomicFile,
    writer: ArrowWriter<BufWriter<File>>,
}

impl ParquetSink {
    /// Opens a sink for batches of `schema`.
    pub fn create(path: &Path, schema: SchemaRef) -> Result<ParquetSink, WriteError> {
        let mut file = AtomicFile::create(path)?;
        let handle = file
            .writer()
            .get_ref()
            .try_clone()
            .map_err(|source| WriteError::Io {
                path: path.display().to_string(),
                source,
            })?;
        let writer =
            ArrowWriter::try_new(BufWriter::new(handle), schema, Some(parquet_properties()))
                .map_err(|source| WriteError::Parquet {
                    path: path.display().to_string(),
                    source,
                })?;
        Ok(ParquetSink { file, writer })
    }

    /// Appends one batch.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), WriteError> {
        let path = self.file.target_name();
        self.writer
            .write(batch)
            .map_err(|source| WriteError::Parquet { path, source })
    }

    /// Finishes the Parquet footer and renames the file into place.
    pub fn commit(self) -> Result<(), WriteError> {
        let path = self.file.target_name();
        let inner = self
            .writer
            .into_inner()
            .map_err(|source| WriteError::Parquet {
                path: path.clone(),
                source,
            })?;
        let handle = inner.into_inner().map_err(|e| WriteError::Io {
            path: path.clone(),
            source: e.into_error(),
        })?;
        handle
            .sync_all()
            .map_err(|source| WriteError::Io { path, source })?;
        self.file.commit()
    }
}

/// Writes one record batch to a Parquet file atomically.
pub fn write_parquet(path: &Path, batch: &RecordBatch) -> Result<(), WriteError> {
    let mut sink = ParquetSink::create(path, Arc::clone(&batch.schema()))?;
    sink.write(batch)?;
    sink.commit()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;

    #[test]
    fn dropped_file_leaves_previous_content() {
        let dir = std::env::temp_dir().join(format!("churnseg-write-{}", std::process::id()));
        let path = dir.join("out.txt");
        write_bytes(&path, b"good").unwrap();
        {
            let mut f = AtomicFile::create(&path).unwrap();
            f.writer().write_all(b"half").unwrap();
        }
        assert_eq!(fs::read(&path).unwrap(), b"good");
        assert_eq!(
            fs::read_dir(&dir).unwrap().count(),
            1,
            "temporary file left behind"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn parquet_round_trip() {
        let dir = std::env::temp_dir().join(format!("churnseg-pq-{}", std::process::id()));
        let path = dir.join("x.parquet");
        let batch =
            RecordBatch::try_from_iter([("a", Arc::new(Int64Array::from(vec![1, 2, 3])) as _)])
                .unwrap();
        write_parquet(&path, &batch).unwrap();
        let file = File::open(&path).unwrap();
        let reader =
            parquet::arrow::arrow_reader::ParquetRecordBatchReader::try_new(file, 1024).unwrap();
        let back: Vec<RecordBatch> = reader.collect::<Result<_, _>>().unwrap();
        assert_eq!(back[0], batch);
        fs::remove_dir_all(&dir).unwrap();
    }
}
