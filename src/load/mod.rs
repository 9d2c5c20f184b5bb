//! Loading inputs (SPEC §2): resolving a path into Parquet files, reading the subscriber
//! table into checked columns, and streaming the interactions by row group.
//!
//! Every check collects all problems it finds and reports them together, each naming
//! the file, the column, what was expected, what was found, and an example row.

pub mod files;
pub mod interactions;
pub mod subscribers;

pub use files::ParquetSource;
pub use interactions::{EventColumns, Interactions};
pub use subscribers::{IdIndex, Subscribers};

/// Why an input could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("input `{path}` does not exist")]
    Missing { path: String },
    #[error("no Parquet files found under `{path}`")]
    NoFiles { path: String },
    #[error("failed to read `{path}`: {message}")]
    Unreadable { path: String, message: String },
    #[error("`{path}` is not a readable Parquet file (truncated or corrupt?): {message}")]
    Corrupt { path: String, message: String },
    #[error("{path} has {} problem(s):\n  - {}", problems.len(), problems.join("\n  - "))]
    Invalid { path: String, problems: Vec<String> },
}

impl LoadError {
    pub(crate) fn invalid(path: &str, problems: Vec<String>) -> LoadError {
        LoadError::Invalid {
            path: path.to_string(),
            problems,
        }
    }
}
