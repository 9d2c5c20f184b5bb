//! The boundary between Python and the library: running Rust work with the GIL released
//! (in a pool of its own when `threads=` is given), turning its errors into the package's
//! exceptions, and catching panics so that none reaches the interpreter.
//!
//! Errors keep the CLI's text: the message is the error and its causes joined by `: `
//! ([`churnseg::console::error_chain`]), which names the file, the column and an example
//! row. Bad input (a table's schema or values, a path, the taxonomy) raises
//! `InputError`, a `ValueError`; out-of-range settings raise `ValueError`; a health
//! guard that stopped the run raises `GuardError`; anything else `ChurnsegError`.

use std::panic::{AssertUnwindSafe, catch_unwind};

use churnseg::console::error_chain;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;

pyo3::create_exception!(
    _churnseg,
    ChurnsegError,
    PyRuntimeError,
    "A churnseg step failed (not because of its input)."
);
pyo3::create_exception!(
    _churnseg,
    InputError,
    PyValueError,
    "Bad input: a table's columns or values, a path, or the taxonomy. The message is the CLI's: it names the file (or table), the column and an example row."
);
pyo3::create_exception!(
    _churnseg,
    GuardError,
    ChurnsegError,
    "A health guard stopped the run (the CLI's exit status 3); `allow=` lets it pass."
);

/// Why a call failed, before it becomes an exception.
#[derive(Debug)]
pub enum Failure {
    /// The inputs are wrong.
    Input(String),
    /// A setting is out of its range.
    Value(String),
    /// A health guard stopped the run.
    Guard(String),
    /// Anything else (writing, a model that cannot be applied, a bug).
    Other(String),
}

impl Failure {
    /// Classifies a library error by the errors in its chain.
    pub fn of(err: anyhow::Error) -> Failure {
        use churnseg::features::FeatureError;
        use churnseg::pipeline::PipelineError;
        use churnseg::train::TrainError;
        let message = error_chain(err.as_ref());
        if churnseg::cli::exit_code(&err) == churnseg::guard::EXIT_CODE {
            return Failure::Guard(message);
        }
        let input = err.chain().any(|cause| {
            cause.is::<churnseg::load::InputErrors>()
                || cause.is::<churnseg::load::LoadError>()
                || cause.is::<churnseg::taxonomy::TaxonomyError>()
                || matches!(
                    cause.downcast_ref::<PipelineError>(),
                    Some(PipelineError::Inputs(_) | PipelineError::UnknownTouchpoints(_))
                )
                || matches!(
                    cause.downcast_ref::<FeatureError>(),
                    Some(FeatureError::ReservedColumns { .. } | FeatureError::Load(_))
                )
                || matches!(
                    cause.downcast_ref::<TrainError>(),
                    Some(TrainError::NoChurnColumn | TrainError::NoActive { .. })
                )
        });
        if input {
            return Failure::Input(message);
        }
        let params = err.chain().any(|cause| {
            cause.is::<churnseg::model::InvalidParams>()
                || matches!(
                    cause.downcast_ref::<TrainError>(),
                    Some(TrainError::Params(_))
                )
        });
        if params {
            Failure::Value(message)
        } else {
            Failure::Other(message)
        }
    }

    /// The Python exception.
    pub fn into_py_err(self) -> PyErr {
        match self {
            Failure::Input(m) => InputError::new_err(m),
            Failure::Value(m) => PyValueError::new_err(m),
            Failure::Guard(m) => GuardError::new_err(m),
            Failure::Other(m) => ChurnsegError::new_err(m),
        }
    }
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Failure {
        Failure::of(e.into())
    }
}

/// Runs `work` with the GIL released, on a pool of `threads` worker threads of its own
/// (the global pool, sized to the machine, when `None`), and turns its failure or panic
/// into a Python exception.
pub fn run<T: Send>(
    py: Python<'_>,
    threads: Option<usize>,
    work: impl FnOnce() -> Result<T, Failure> + Send,
) -> PyResult<T> {
    let pool = match threads {
        None => None,
        Some(0) => {
            return Err(PyValueError::new_err(
                "`threads` must be at least 1 (or None for every core)",
            ));
        }
        Some(n) => Some(
            rayon::ThreadPoolBuilder::new()
                .num_threads(n.min(churnseg::cli::thread_limit()))
                .build()
                .map_err(|e| {
                    ChurnsegError::new_err(format!("failed to start {n} worker threads: {e}"))
                })?,
        ),
    };
    let outcome = py.detach(move || {
        catch_unwind(AssertUnwindSafe(move || match &pool {
            Some(pool) => pool.install(work),
            None => work(),
        }))
    });
    match outcome {
        Ok(result) => result.map_err(Failure::into_py_err),
        Err(panic) => Err(ChurnsegError::new_err(format!(
            "internal error (a bug in churnseg; please report it with the input that caused it): {}",
            churnseg::panic_message(panic.as_ref())
        ))),
    }
}
