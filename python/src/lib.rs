//! `churnseg._churnseg`: the extension module under the `churnseg` Python package
//! (`python/churnseg/`, which holds the documented API and turns pandas, paths and
//! dates into what this module takes).
//!
//! The module is a thin boundary over the library: it turns its arguments into the
//! library's inputs and parameters, runs the same code paths as the CLI (loading,
//! features, training, scoring, the model artifact), and turns results and errors back
//! into Python objects. Rust work runs with the GIL released and, with `threads=`, in a
//! pool of its own; no panic crosses into Python ([`boundary`]).

mod boundary;
mod inputs;
mod model;
mod spark;
mod spark_train;

use pyo3::prelude::*;

pub use boundary::{ChurnsegError, GuardError, InputError};

/// The extension module.
#[pymodule]
fn _churnseg(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("ChurnsegError", py.get_type::<ChurnsegError>())?;
    m.add("InputError", py.get_type::<InputError>())?;
    m.add("GuardError", py.get_type::<GuardError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(model::features, m)?)?;
    m.add_function(wrap_pyfunction!(model::train, m)?)?;
    m.add_class::<model::Model>()?;
    spark::register(m)?;
    spark_train::register(m)?;
    Ok(())
}
