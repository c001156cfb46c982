//! Config functions of `torchkiln._native`: load, merge, override, interpolate, dump, parse.

use std::path::PathBuf;

use kiln_core::config::{self as core, Format, Kind, Map, Value};
use pyo3::PyTypeInfo;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple, PyType};

use crate::convert::{from_py, map_to_py, to_py};
use crate::errors::{config_error, conv_type_error, no_panic};
use crate::host::{PyHost, PythonCallbacks};

/// The result of `load_config`: the final tree, where each leaf came from, which paths were
/// referenced by interpolation, and which files were read.
///
/// The tree stays in Rust: `data` and `config_dicts` build a new Python tree on every call,
/// so a kept result can be handed out any number of times without sharing mutable state.
#[pyclass(frozen, module = "torchkiln._native")]
pub struct LoadedConfig {
    value: Value,
    /// Dotted leaf path -> "file:line:col", "file" or "--cfg-options KEY=VALUE".
    #[pyo3(get)]
    provenance: Py<PyDict>,
    /// Dotted paths referenced by `${...}` and `{{_base_....}}`, sorted.
    #[pyo3(get)]
    referenced: Py<PyList>,
    /// Every file read, in the order read.
    #[pyo3(get)]
    files: Py<PyList>,
}

#[pymethods]
impl LoadedConfig {
    /// The final config as new plain Python objects (dict, list, tuple and scalars).
    #[getter]
    fn data<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        match &self.value.kind {
            Kind::Map(m) => map_to_py(py, m),
            _ => Ok(PyDict::new(py)),
        }
    }

    /// The final config as new Python objects whose mappings are instances of `dict_type`
    /// (a subclass of dict, created without running its `__init__`, items set as on a dict).
    fn config_dicts<'py>(&self, py: Python<'py>, dict_type: &Bound<'py, PyType>) -> PyResult<Bound<'py, PyDict>> {
        if !dict_type.is_subclass_of::<PyDict>()? {
            return Err(PyTypeError::new_err("dict_type must be a subclass of dict"));
        }
        let maker = DictMaker { new: PyDict::type_object(py).getattr("__new__")?, dict_type: dict_type.clone() };
        match &self.value.kind {
            Kind::Map(m) => maker.map(m),
            _ => maker.empty(),
        }
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let keys = match &self.value.kind {
            Kind::Map(m) => m.len(),
            _ => 0,
        };
        format!(
            "LoadedConfig(keys={}, files={}, referenced={})",
            keys,
            self.files.bind(py).len(),
            self.referenced.bind(py).len()
        )
    }
}

/// Builds Python trees whose mappings are instances of a dict subclass.
struct DictMaker<'py> {
    new: Bound<'py, PyAny>,
    dict_type: Bound<'py, PyType>,
}

impl<'py> DictMaker<'py> {
    fn empty(&self) -> PyResult<Bound<'py, PyDict>> {
        Ok(self.new.call1((&self.dict_type,))?.cast_into::<PyDict>()?)
    }

    fn map(&self, m: &Map) -> PyResult<Bound<'py, PyDict>> {
        let d = self.empty()?;
        for (k, item) in m {
            d.set_item(PyString::new(d.py(), k), self.value(item)?)?;
        }
        Ok(d)
    }

    fn value(&self, v: &Value) -> PyResult<Bound<'py, PyAny>> {
        let py = self.new.py();
        Ok(match &v.kind {
            Kind::Map(m) => self.map(m)?.into_any(),
            Kind::List(items) => {
                let list = PyList::empty(py);
                for item in items {
                    list.append(self.value(item)?)?;
                }
                list.into_any()
            }
            Kind::Tuple(items) => {
                let items = items.iter().map(|item| self.value(item)).collect::<PyResult<Vec<_>>>()?;
                PyTuple::new(py, items)?.into_any()
            }
            _ => to_py(py, v)?,
        })
    }
}

fn loaded_to_py(py: Python<'_>, l: core::Loaded) -> PyResult<LoadedConfig> {
    let provenance = PyDict::new(py);
    for (k, v) in &l.provenance {
        provenance.set_item(k, v)?;
    }
    Ok(LoadedConfig {
        value: l.value,
        provenance: provenance.unbind(),
        referenced: PyList::new(py, &l.referenced)?.unbind(),
        files: PyList::new(py, &l.files)?.unbind(),
    })
}

fn python_callbacks<'py>(
    bases: Option<Bound<'py, PyAny>>,
    run: Option<Bound<'py, PyAny>>,
    plain: Option<Bound<'py, PyAny>>,
) -> PyResult<Option<PythonCallbacks<'py>>> {
    let bases = optional_callable(bases, "python_bases")?;
    let run = optional_callable(run, "run_python")?;
    let plain = optional_callable(plain, "plain_value")?;
    match (bases, run) {
        (Some(bases), Some(run)) => Ok(Some(PythonCallbacks { bases, run, plain })),
        (None, None) => Ok(None),
        _ => Err(PyTypeError::new_err("python_bases and run_python must be given together")),
    }
}

fn optional_callable<'py>(obj: Option<Bound<'py, PyAny>>, name: &str) -> PyResult<Option<Bound<'py, PyAny>>> {
    match obj {
        Some(o) if o.is_none() => Ok(None),
        Some(o) if !o.is_callable() => Err(PyTypeError::new_err(format!("{name} must be callable or None"))),
        other => Ok(other),
    }
}

/// Load a config file: read it, resolve `_base_`, merge, apply overrides, interpolate.
#[pyfunction]
#[pyo3(signature = (path, overrides = None, *, resolve_package = None, python_bases = None, run_python = None, plain_value = None))]
pub fn load_config<'py>(
    py: Python<'py>,
    path: PathBuf,
    overrides: Option<Vec<String>>,
    resolve_package: Option<Bound<'py, PyAny>>,
    python_bases: Option<Bound<'py, PyAny>>,
    run_python: Option<Bound<'py, PyAny>>,
    plain_value: Option<Bound<'py, PyAny>>,
) -> PyResult<LoadedConfig> {
    let mut host = PyHost::new(
        optional_callable(resolve_package, "resolve_package")?,
        python_callbacks(python_bases, run_python, plain_value)?,
    );
    let overrides = overrides.unwrap_or_default();
    no_panic(py, || match core::load_file(&path, &overrides, &mut host) {
        Ok(l) => loaded_to_py(py, l),
        Err(e) => Err(host.into_pyerr(py, e)),
    })
}

/// Load a config given as text (`fmt`: yaml, json or toml); relative `_base_` paths start at
/// `base_dir` (the current directory when None).
#[pyfunction]
#[pyo3(signature = (text, fmt = "yaml", overrides = None, *, base_dir = None, resolve_package = None, python_bases = None, run_python = None, plain_value = None))]
#[allow(clippy::too_many_arguments)] // mirrors the Python keyword arguments one to one
pub fn loads_config<'py>(
    py: Python<'py>,
    text: &str,
    fmt: &str,
    overrides: Option<Vec<String>>,
    base_dir: Option<PathBuf>,
    resolve_package: Option<Bound<'py, PyAny>>,
    python_bases: Option<Bound<'py, PyAny>>,
    run_python: Option<Bound<'py, PyAny>>,
    plain_value: Option<Bound<'py, PyAny>>,
) -> PyResult<LoadedConfig> {
    let format = Format::from_name(fmt).ok_or_else(|| {
        PyValueError::new_err(format!("unknown config format {fmt:?}: expected 'yaml', 'json' or 'toml'"))
    })?;
    let mut host = PyHost::new(
        optional_callable(resolve_package, "resolve_package")?,
        python_callbacks(python_bases, run_python, plain_value)?,
    );
    let overrides = overrides.unwrap_or_default();
    no_panic(py, || match core::load_str(text, format, base_dir.as_deref(), &overrides, &mut host) {
        Ok(l) => loaded_to_py(py, l),
        Err(e) => Err(host.into_pyerr(py, e)),
    })
}

fn dict_arg(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Value> {
    if !obj.is_instance_of::<PyDict>() {
        return Err(PyTypeError::new_err(format!("{name} must be a dict, not {}", obj.get_type())));
    }
    from_py(obj).map_err(|e| conv_type_error(e, name))
}

/// Merge `child` onto `base` with the config rules (maps merge, anything else replaces,
/// `_delete_: true` replaces the base map); returns a new dict.
#[pyfunction]
pub fn merge<'py>(py: Python<'py>, base: &Bound<'py, PyAny>, child: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let b = dict_arg(base, "base")?;
    let c = dict_arg(child, "child")?;
    no_panic(py, || to_py(py, &core::merge::merge(b, c)))
}

/// Apply `--cfg-options` style overrides to a copy of `data`.
#[pyfunction]
pub fn apply_overrides<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    overrides: Vec<String>,
) -> PyResult<Bound<'py, PyAny>> {
    let mut v = dict_arg(data, "data")?;
    no_panic(py, || {
        core::apply_overrides(&mut v, &overrides).map_err(|e| config_error(py, &e))?;
        to_py(py, &v)
    })
}

/// Resolve `${...}` references in a copy of `data`.
#[pyfunction]
pub fn interpolate<'py>(py: Python<'py>, data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let v = dict_arg(data, "data")?;
    no_panic(py, || {
        let out = core::interpolate_value(v).map_err(|e| config_error(py, &e))?;
        to_py(py, &out)
    })
}

/// Dump plain data as deterministic block-style YAML that reads back to the same data.
///
/// With `escape_refs` (a config dump) literal `${` and `{{` in string values are written as
/// `\${` and `\{{`, so that loading the text as a config gives the same strings back.
#[pyfunction]
#[pyo3(signature = (data, *, escape_refs = false))]
pub fn dump_yaml(py: Python<'_>, data: &Bound<'_, PyAny>, escape_refs: bool) -> PyResult<String> {
    let v = from_py(data).map_err(|e| conv_type_error(e, "data"))?;
    no_panic(py, || Ok(if escape_refs { core::dump_config_yaml(&v) } else { core::dump_yaml(&v) }))
}

/// A string value as a config file must spell it: `\${` for `${` and `\{{` for `{{`.
#[pyfunction]
pub fn escape_refs(text: &str) -> String {
    core::dump::escape_refs(text).into_owned()
}

/// Parse one YAML document (no inheritance, no interpolation); duplicate keys are errors.
#[pyfunction]
#[pyo3(signature = (text, filename = "<string>"))]
pub fn parse_yaml<'py>(py: Python<'py>, text: &str, filename: &str) -> PyResult<Bound<'py, PyAny>> {
    no_panic(py, || {
        let v = core::parse::parse_yaml_str(text, filename).map_err(|e| config_error(py, &e))?;
        to_py(py, &v)
    })
}
