//! Why the report could not be built.

/// Why the report could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("failed to draw a chart of the report: {0}")]
    Chart(String),
    #[error("failed to render the report template: {0}")]
    Template(String),
    #[error("failed to write the contact list as CSV: {0}")]
    Csv(String),
    #[error(transparent)]
    Write(#[from] crate::write::WriteError),
}
