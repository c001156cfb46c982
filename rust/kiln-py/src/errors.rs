//! `ConfigLoadError` and the conversion of core errors (and panics) into Python exceptions.

use std::panic::{AssertUnwindSafe, catch_unwind};

use kiln_core::config::ConfigError;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

use crate::convert::ConvError;

pyo3::create_exception!(
    torchkiln._native,
    ConfigLoadError,
    PyValueError,
    "A config could not be loaded. Attributes: message, file, line, col, key_path, hint (None when unknown)."
);

/// The attribute names `ConfigLoadError` carries besides its message.
pub const ERROR_FIELDS: [&str; 5] = ["file", "line", "col", "key_path", "hint"];

/// A `ConfigLoadError` carrying the location and hint of `e`.
pub fn config_error(py: Python<'_>, e: &ConfigError) -> PyErr {
    let err = ConfigLoadError::new_err(e.to_string());
    let v = err.value(py);
    // Setting attributes on a fresh exception instance cannot fail in practice; if it did,
    // the message alone still describes the problem.
    let _ = v.setattr("message", &e.message);
    let _ = v.setattr("file", &e.file);
    let _ = v.setattr("line", e.line);
    let _ = v.setattr("col", e.col);
    let _ = v.setattr("key_path", &e.key_path);
    let _ = v.setattr("hint", &e.hint);
    err
}

/// A `TypeError` for a Python value the config tree cannot hold.
pub fn conv_type_error(e: ConvError, what: &str) -> PyErr {
    if e.key_path.is_empty() {
        PyTypeError::new_err(format!("{what}: {}", e.message))
    } else {
        PyTypeError::new_err(format!("{what}: {} (at key '{}')", e.message, e.key_path))
    }
}

/// Run `f`, turning a Rust panic into a `ConfigLoadError` so that no panic reaches Python.
pub fn no_panic<T>(py: Python<'_>, f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            let e = ConfigError::new(format!("internal error in the config engine: {what}"))
                .hint("this is a bug in torchkiln; please report it with the config that triggers it");
            Err(config_error(py, &e))
        }
    }
}

/// Give `ConfigLoadError` class-level `None` defaults, so instances raised from Python code
/// (without the extra attributes) still answer `e.file` and friends; `message` defaults to "".
pub fn init_error_defaults(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let cls = m.py().get_type::<ConfigLoadError>();
    for f in ERROR_FIELDS {
        cls.setattr(f, m.py().None())?;
    }
    cls.setattr("message", "")?;
    Ok(())
}
