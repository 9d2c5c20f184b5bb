//! Writing outputs atomically.
//!
//! - A single file ([`write_bytes`], [`write_parquet`], [`AtomicFile`], [`ParquetSink`]) is
//!   written to a temporary name in its destination directory (`.NAME.tmp-PID`) and
//!   renamed into place only once it is complete and synced.
//! - A set of files that belong together (a command's outputs: the scored table and its
//!   manifest, a model's files, everything `run` writes) goes through an [`OutputSet`]
//!   ([`commit`]): every destination directory is locked ([`lock`]), every file is staged
//!   beside its destination, and the set is committed at the end, all of it or none of it.
//!
//! The guarantee, kill -9 included, is spelled out in [`commit`].

pub mod commit;
pub mod file;
pub mod lock;

pub use commit::OutputSet;
pub use file::*;
