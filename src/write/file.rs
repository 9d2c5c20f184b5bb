//! One file written atomically: a temporary name beside its destination, renamed into
//! place once complete and synced; and the Parquet settings every output shares.

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
    #[error("cannot write `{path}`: it is a directory; give the path of the file to write")]
    IsDirectory { path: String },
    #[error("cannot write `{path}`: it does not name a file")]
    NotAFile { path: String },
    #[error("cannot serialise {what}: {message}")]
    Serialize { what: String, message: String },
    #[error("`{path}` would be written twice by one command")]
    Twice { path: String },
    #[error("output directory `{dir}` cannot be written: {source}")]
    Directory { dir: String, source: std::io::Error },
    #[error(
        "output directory `{dir}` is being written by another churnseg ({holder}): its lock `{lock}` is held; wait for that run to finish, or remove the lock if that process is not churnseg"
    )]
    Locked {
        dir: String,
        lock: String,
        holder: String,
    },
    #[error("the interrupted commit recorded in `{journal}` cannot be completed: {message}")]
    Journal { journal: String, message: String },
    #[error("`{path}` was not declared when the outputs were opened")]
    Undeclared { path: String },
}

/// The temporary name of `target` while this process writes it: `.NAME.tmp-PID`
/// beside it. [`commit`] removes such names left by processes that are gone.
pub fn temp_path(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    parent_dir(target).join(format!(".{name}.tmp-{}", std::process::id()))
}

/// The directory a path is in (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// A file being written under a temporary name; [`AtomicFile::commit`] renames it into
/// place, [`AtomicFile::finish`] leaves it complete under its temporary name for an
/// [`OutputSet`]. Dropped before either, the temporary file is removed.
pub struct AtomicFile {
    target: PathBuf,
    temp: PathBuf,
    file: Option<BufWriter<File>>,
}

impl AtomicFile {
    /// Creates the temporary file beside `target` (and `target`'s directory if needed).
    /// Refuses a `target` that is a directory before writing anything.
    pub fn create(target: &Path) -> Result<AtomicFile, WriteError> {
        let io = |source| WriteError::Io {
            path: target.display().to_string(),
            source,
        };
        if target.is_dir() {
            return Err(WriteError::IsDirectory {
                path: target.display().to_string(),
            });
        }
        if target.file_name().is_none() {
            return Err(WriteError::NotAFile {
                path: target.display().to_string(),
            });
        }
        fs::create_dir_all(parent_dir(target)).map_err(io)?;
        let temp = temp_path(target);
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

    /// Flushes and syncs the temporary file, which stays under its temporary name.
    pub fn finish(mut self) -> Result<StagedFile, WriteError> {
        let io = |source| WriteError::Io {
            path: self.target.display().to_string(),
            source,
        };
        // From here on the staged file owns the temporary name (and removes it if dropped).
        let staged = StagedFile {
            target: self.target.clone(),
            temp: self.temp.clone(),
            armed: true,
        };
        if let Some(writer) = self.file.take() {
            let file = writer.into_inner().map_err(|e| io(e.into_error()))?;
            file.sync_all().map_err(io)?;
        }
        Ok(staged)
    }

    /// Flushes, syncs and renames the temporary file onto the target.
    pub fn commit(self) -> Result<(), WriteError> {
        self.finish()?.commit()
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

/// A complete file under its temporary name, waiting to be renamed onto its target.
/// Dropped without [`StagedFile::commit`], the temporary file is removed.
#[derive(Debug)]
pub struct StagedFile {
    target: PathBuf,
    temp: PathBuf,
    /// Whether dropping removes the temporary file.
    armed: bool,
}

impl StagedFile {
    /// Where the file goes.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Where it is now.
    pub fn temp(&self) -> &Path {
        &self.temp
    }

    /// Renames the file onto its target (removing it if that fails).
    pub fn commit(self) -> Result<(), WriteError> {
        fs::rename(&self.temp, &self.target).map_err(|source| WriteError::Io {
            path: self.target.display().to_string(),
            source,
        })?;
        self.disarm();
        Ok(())
    }

    /// Leaves the temporary file in place when dropped: a commit record now names it.
    pub(crate) fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        if self.armed {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

/// Writes bytes to `path` atomically.
pub fn write_bytes(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    bytes_file(path, bytes)?.commit()
}

/// Parquet writer properties used for every output: zstd, statistics on.
pub fn parquet_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).unwrap_or_default()))
        .set_max_row_group_row_count(Some(1 << 20))
        .build()
}

/// Rows handed to the Parquet writer at a time ([`ParquetSink`]): a multiple of the
/// writer's mini-batch (1024 values) that divides the row group (2^20 rows).
pub const PIECE_ROWS: usize = 1 << 16;

/// A Parquet file written batch by batch and committed atomically.
///
/// The writer cuts pages where its mini-batches of values end, and for a list column a
/// mini-batch counts values, not rows: how the rows are handed to it changes the pages.
/// So the sink hands them on in pieces of [`PIECE_ROWS`] rows counted from the start of
/// the file, whatever batches it is given: a file's bytes depend on its rows alone, and
/// a table written whole, shard by shard or merged from partials is the same file. A
/// caller need only hold a piece, never a row group.
pub struct ParquetSink {
    file: AtomicFile,
    writer: ArrowWriter<BufWriter<File>>,
    /// Rows given but not yet handed on (fewer than a piece).
    pending: Vec<RecordBatch>,
    pending_rows: usize,
    /// Hand each batch on as given (`generate`, whose files keep their earlier bytes).
    as_given: bool,
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
        Ok(ParquetSink {
            file,
            writer,
            pending: Vec::new(),
            pending_rows: 0,
            as_given: false,
        })
    }

    /// A sink that hands each batch to the writer as given, not in pieces: its bytes
    /// depend on the batches (`generate` keeps the bytes of earlier versions so).
    pub fn create_as_given(path: &Path, schema: SchemaRef) -> Result<ParquetSink, WriteError> {
        let mut sink = ParquetSink::create(path, schema)?;
        sink.as_given = true;
        Ok(sink)
    }

    /// Appends one batch (handed on in whole pieces; the rest waits for more rows).
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), WriteError> {
        if self.as_given {
            self.pending.push(batch.clone());
            return self.hand_on();
        }
        let mut offset = 0;
        while offset < batch.num_rows() {
            let take = (PIECE_ROWS - self.pending_rows).min(batch.num_rows() - offset);
            self.pending.push(batch.slice(offset, take));
            self.pending_rows += take;
            offset += take;
            if self.pending_rows == PIECE_ROWS {
                self.hand_on()?;
            }
        }
        Ok(())
    }

    /// Hands the pending rows to the writer as one piece.
    fn hand_on(&mut self) -> Result<(), WriteError> {
        let path = || self.file.target_name();
        if self.pending.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.pending);
        self.pending_rows = 0;
        let piece = match <[RecordBatch; 1]>::try_from(pending) {
            Ok([one]) => one,
            Err(many) => arrow::compute::concat_batches(&many[0].schema(), &many).map_err(|e| {
                WriteError::Parquet {
                    path: path(),
                    source: e.into(),
                }
            })?,
        };
        self.writer
            .write(&piece)
            .map_err(|source| WriteError::Parquet {
                path: path(),
                source,
            })
    }

    /// Finishes the Parquet footer and syncs the file, which stays under its temporary
    /// name for an [`OutputSet`].
    pub fn finish(mut self) -> Result<StagedFile, WriteError> {
        self.hand_on()?;
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
        self.file.finish()
    }

    /// Finishes the Parquet footer and renames the file into place.
    pub fn commit(self) -> Result<(), WriteError> {
        self.finish()?.commit()
    }
}

/// Writes one record batch to a Parquet file atomically.
pub fn write_parquet(path: &Path, batch: &RecordBatch) -> Result<(), WriteError> {
    parquet_file(path, batch)?.commit()
}

/// One record batch as a complete Parquet file under its temporary name.
pub fn parquet_file(path: &Path, batch: &RecordBatch) -> Result<StagedFile, WriteError> {
    let mut sink = ParquetSink::create(path, Arc::clone(&batch.schema()))?;
    sink.write(batch)?;
    sink.finish()
}

/// Bytes as a complete file under its temporary name.
pub fn bytes_file(path: &Path, bytes: &[u8]) -> Result<StagedFile, WriteError> {
    let mut file = AtomicFile::create(path)?;
    file.writer()
        .write_all(bytes)
        .map_err(|source| WriteError::Io {
            path: path.display().to_string(),
            source,
        })?;
    file.finish()
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
