//! The nightly job runner (being written).
