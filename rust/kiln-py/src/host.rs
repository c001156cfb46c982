//! The Python side of the config engine's `Host`: package resolution and `.py` configs go
//! through Python callables; an exception they raise is kept and re-raised unchanged.

use std::path::{Path, PathBuf};

use kiln_core::config::{ConfigError, ErrorKind, Host, PythonRun, Value};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::convert::{from_py_with, to_py};
use crate::errors::config_error;

/// The Python callables that read and run `.py` configs.
pub struct PythonCallbacks<'py> {
    /// `path -> (None | str | list, bool)`: the `_base_` entry, read without running the
    /// file, and whether the file reads `_base_` as a value.
    pub bases: Bound<'py, PyAny>,
    /// `(path, base dict | None) -> (values dict, base dict | None)`: run the file.
    pub run: Bound<'py, PyAny>,
    /// `obj -> plain value`: a replacement for a value that is not plain data.
    pub plain: Option<Bound<'py, PyAny>>,
}

/// Python callables given by the caller of `load_config`.
pub struct PyHost<'py> {
    resolve_package: Option<Bound<'py, PyAny>>,
    python: Option<PythonCallbacks<'py>>,
    /// The exception a callback raised, to be re-raised as is.
    pending: Option<PyErr>,
}

impl<'py> PyHost<'py> {
    pub fn new(resolve_package: Option<Bound<'py, PyAny>>, python: Option<PythonCallbacks<'py>>) -> Self {
        PyHost { resolve_package, python, pending: None }
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

    fn python_bases(&mut self, path: &Path) -> Result<(Option<Value>, bool), ConfigError> {
        let f = self.python_callbacks()?.bases.clone();
        let out = match f.call1((path.display().to_string(),)) {
            Ok(o) => o,
            Err(e) => return Err(self.raised(e, "python_bases")),
        };
        let (bases, reads_base): (Bound<'_, PyAny>, bool) = out.extract().map_err(|_| {
            ConfigError::new(format!("python_bases must return a (bases, reads_base) pair, not {}", out.get_type()))
        })?;
        let bases = if bases.is_none() { None } else { Some(self.plain_value(&bases, "_base_")?) };
        Ok((bases, reads_base))
    }

    fn run_python(&mut self, path: &Path, base: Option<&Value>) -> Result<PythonRun, ConfigError> {
        let f = self.python_callbacks()?.run.clone();
        let py = f.py();
        let base_obj = match base {
            Some(b) => match to_py(py, b) {
                Ok(o) => o,
                Err(e) => return Err(self.raised(e, "run_python")),
            },
            None => py.None().into_bound(py),
        };
        let out = match f.call1((path.display().to_string(), base_obj)) {
            Ok(o) => o,
            Err(e) => return Err(self.raised(e, "run_python")),
        };
        let pair = out.cast::<PyTuple>().ok().filter(|t| t.len() == 2).ok_or_else(|| {
            ConfigError::new(format!("run_python must return a (values, base) pair, not {}", out.get_type()))
        })?;
        let values = self.plain_value(&pair.get_item(0).expect("length checked"), "")?;
        let base_out = pair.get_item(1).expect("length checked");
        let base = if base_out.is_none() { None } else { Some(self.plain_value(&base_out, "_base_")?) };
        Ok(PythonRun { values, base })
    }
}

impl<'py> PyHost<'py> {
    fn python_callbacks(&self) -> Result<&PythonCallbacks<'py>, ConfigError> {
        self.python.as_ref().ok_or_else(|| {
            ConfigError::new("Python configs (.py) need the python_bases and run_python callables")
                .hint("pass them to load_config (torchkiln.config.load does), or convert the config to YAML")
        })
    }

    /// A value from a Python config as a tree; `prefix` names where it sits.
    fn plain_value(&self, obj: &Bound<'_, PyAny>, prefix: &str) -> Result<Value, ConfigError> {
        let plain = self.python.as_ref().and_then(|p| p.plain.as_ref());
        from_py_with(obj, plain).map_err(|e| {
            let key = match (prefix.is_empty(), e.key_path.is_empty()) {
                (true, _) => e.key_path,
                (false, true) => prefix.to_string(),
                (false, false) => format!("{prefix}.{}", e.key_path),
            };
            ConfigError::new(format!("a value of the Python config cannot be used: {}", e.message)).key(key)
        })
    }
}
