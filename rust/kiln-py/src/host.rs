//! The Python side of the config engine's `Host`: package resolution and `.py` configs go
//! through Python callables; an exception they raise is kept and re-raised unchanged.

use std::path::{Path, PathBuf};

use kiln_core::config::{ConfigError, ErrorKind, Host, Value};
use pyo3::prelude::*;

use crate::convert::from_py;
use crate::errors::config_error;

/// Python callables given by the caller of `load_config`.
pub struct PyHost<'py> {
    resolve_package: Option<Bound<'py, PyAny>>,
    load_python: Option<Bound<'py, PyAny>>,
    /// The exception a callback raised, to be re-raised as is.
    pending: Option<PyErr>,
}

impl<'py> PyHost<'py> {
    pub fn new(resolve_package: Option<Bound<'py, PyAny>>, load_python: Option<Bound<'py, PyAny>>) -> Self {
        PyHost { resolve_package, load_python, pending: None }
    }

    /// The Python exception for a failed load: a callback's own exception when it raised
    /// one, a `ConfigLoadError` otherwise.
    pub fn into_pyerr(mut self, py: Python<'py>, e: ConfigError) -> PyErr {
        match (e.kind, self.pending.take()) {
            (ErrorKind::Host, Some(pending)) => pending,
            _ => config_error(py, &e),
        }
    }

    fn raised(&mut self, err: PyErr, what: &str) -> ConfigError {
        self.pending = Some(err);
        ConfigError::host(format!("{what} raised an exception"))
    }
}

impl Host for PyHost<'_> {
    fn resolve_package(&mut self, package: &str) -> Result<PathBuf, ConfigError> {
        let Some(f) = self.resolve_package.clone() else {
            return Err(ConfigError::new(format!("cannot resolve config package '{package}': no resolve_package callable was given"))
                .hint("pass resolve_package=... to load_config (torchkiln.config does this through the torchkiln.configs entry points)"));
        };
        let out = match f.call1((package,)) {
            Ok(o) => o,
            Err(e) => return Err(self.raised(e, "resolve_package")),
        };
        if out.is_none() {
            return Err(ConfigError::new(format!("unknown config package '{package}'"))
                .hint("install the package that provides it, or check the name before '::'"));
        }
        out.extract::<PathBuf>().map_err(|_| {
            ConfigError::new(format!(
                "resolve_package('{package}') must return a directory path (str), not {}",
                out.get_type()
            ))
        })
    }

    fn load_python(&mut self, path: &Path) -> Result<Value, ConfigError> {
        let Some(f) = self.load_python.clone() else {
            return Err(ConfigError::new("Python configs (.py) need a load_python callable")
                .hint("pass load_python=... to load_config, or convert the config to YAML"));
        };
        let out = match f.call1((path.display().to_string(),)) {
            Ok(o) => o,
            Err(e) => return Err(self.raised(e, "load_python")),
        };
        from_py(&out).map_err(|e| {
            ConfigError::new(format!("value from the Python config cannot be used: {}", e.message)).key(e.key_path)
        })
    }
}
