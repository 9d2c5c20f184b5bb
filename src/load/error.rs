//! Why an input could not be loaded.

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
    /// Arrow refused to combine what was read (files of one input whose schemas differ).
    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),
}

impl LoadError {
    pub(crate) fn invalid(path: &str, problems: Vec<String>) -> LoadError {
        LoadError::Invalid {
            path: path.to_string(),
            problems,
        }
    }
}
