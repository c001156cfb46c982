//! Conversions between Python objects and the config value tree, done directly (no JSON).

use kiln_core::config::{Kind, Map, Value};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyMapping, PyString, PyTuple};

/// Python nesting deeper than this is rejected (it also catches self-containing lists).
const MAX_DEPTH: usize = 256;

/// A value Python handed over that the config tree cannot hold.
#[derive(Debug)]
pub struct ConvError {
    pub message: String,
    pub key_path: String,
}

/// The value tree as native Python objects: dict (insertion-ordered), list, tuple, str,
/// int, float, bool, None.
pub fn to_py<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match &v.kind {
        Kind::Null => py.None().into_bound(py),
        Kind::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Kind::Int(i) => i.into_pyobject(py)?.into_any(),
        Kind::Float(f) => PyFloat::new(py, *f).into_any(),
        Kind::Str(s) => PyString::new(py, s).into_any(),
        Kind::List(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(to_py(py, item)?)?;
            }
            list.into_any()
        }
        Kind::Tuple(items) => {
            let items = items.iter().map(|item| to_py(py, item)).collect::<PyResult<Vec<_>>>()?;
            PyTuple::new(py, items)?.into_any()
        }
        Kind::Map(m) => map_to_py(py, m)?.into_any(),
    })
}

/// A map as a Python dict.
pub fn map_to_py<'py>(py: Python<'py>, m: &Map) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (k, item) in m {
        d.set_item(PyString::new(py, k), to_py(py, item)?)?;
    }
    Ok(d)
}

/// A Python object as a value tree. Dict keys must be str (int, float, bool and None keys
/// are turned into their `str()`); lists stay lists and tuples stay tuples.
pub fn from_py(obj: &Bound<'_, PyAny>) -> Result<Value, ConvError> {
    from_py_with(obj, None)
}

/// Like [`from_py`], asking `fallback(obj)` for a plain replacement of any object that is not
/// plain data (a class as its import path, a numpy scalar as the number); an exception it
/// raises becomes the conversion error's message.
pub fn from_py_with(obj: &Bound<'_, PyAny>, fallback: Option<&Bound<'_, PyAny>>) -> Result<Value, ConvError> {
    let mut path = Vec::new();
    Converter { fallback }.convert(obj, &mut path, 0)
}

struct Converter<'a, 'py> {
    fallback: Option<&'a Bound<'py, PyAny>>,
}

fn err(message: String, path: &[String]) -> ConvError {
    ConvError { message, key_path: path.join(".") }
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".to_string())
}

impl Converter<'_, '_> {
    /// The items of a list or tuple, each converted under its index in ``path``.
    fn convert_items<'py>(
        &self,
        items: impl Iterator<Item = Bound<'py, PyAny>>,
        len: usize,
        path: &mut Vec<String>,
        depth: usize,
    ) -> Result<Vec<Value>, ConvError> {
        let mut out = Vec::with_capacity(len);
        for (i, item) in items.enumerate() {
            path.push(i.to_string());
            out.push(self.convert(&item, path, depth + 1)?);
            path.pop();
        }
        Ok(out)
    }

    fn convert(&self, obj: &Bound<'_, PyAny>, path: &mut Vec<String>, depth: usize) -> Result<Value, ConvError> {
        if depth > MAX_DEPTH {
            return Err(err(
                format!("nesting deeper than {MAX_DEPTH} levels (a container that contains itself?)"),
                path,
            ));
        }
        let kind = if obj.is_none() {
            Kind::Null
        } else if let Ok(b) = obj.cast::<PyBool>() {
            Kind::Bool(b.is_true())
        } else if obj.is_instance_of::<PyInt>() {
            Kind::Int(obj.extract::<i64>().map_err(|_| err("integer does not fit in 64 bits".to_string(), path))?)
        } else if let Ok(f) = obj.cast::<PyFloat>() {
            Kind::Float(f.value())
        } else if let Ok(s) = obj.cast::<PyString>() {
            Kind::Str(s.to_str().map_err(|e| err(format!("invalid string: {e}"), path))?.to_string())
        } else if let Ok(d) = obj.cast::<PyDict>() {
            let mut m = Map::with_capacity(d.len());
            for (k, v) in d.iter() {
                let key = key_string(&k, path)?;
                path.push(key);
                let v = self.convert(&v, path, depth + 1)?;
                let key = path.pop().expect("pushed above");
                m.insert(key, v);
            }
            Kind::Map(m)
        } else if let Ok(l) = obj.cast::<PyList>() {
            Kind::List(self.convert_items(l.iter(), l.len(), path, depth)?)
        } else if let Ok(t) = obj.cast::<PyTuple>() {
            Kind::Tuple(self.convert_items(t.iter(), t.len(), path, depth)?)
        } else if let Ok(mapping) = obj.cast::<PyMapping>() {
            let items = mapping.items().map_err(|e| err(format!("cannot read mapping items: {e}"), path))?;
            let mut m = Map::new();
            for pair in items.iter() {
                let (k, v): (Bound<'_, PyAny>, Bound<'_, PyAny>) =
                    pair.extract().map_err(|e| err(format!("bad mapping item: {e}"), path))?;
                let key = key_string(&k, path)?;
                path.push(key);
                let v = self.convert(&v, path, depth + 1)?;
                let key = path.pop().expect("pushed above");
                m.insert(key, v);
            }
            Kind::Map(m)
        } else if obj.hasattr("__index__").unwrap_or(false) {
            Kind::Int(
                obj.extract::<i64>().map_err(|_| err(format!("cannot use a {} as an int", type_name(obj)), path))?,
            )
        } else if let Some(fallback) = self.fallback {
            let plain = fallback.call1((obj,)).map_err(|e| err(e.value(obj.py()).to_string(), path))?;
            if plain.is(obj) {
                return Err(err(format!("a {} cannot be stored in a config", type_name(obj)), path));
            }
            return Converter { fallback: None }.convert(&plain, path, depth + 1);
        } else {
            return Err(err(
                format!(
                    "a {} cannot be stored in a config (only dict, list, tuple, str, int, float, bool and None)",
                    type_name(obj)
                ),
                path,
            ));
        };
        Ok(Value::new(kind))
    }
}

fn key_string(k: &Bound<'_, PyAny>, path: &[String]) -> Result<String, ConvError> {
    if let Ok(s) = k.cast::<PyString>() {
        return s.to_str().map(str::to_string).map_err(|e| err(format!("invalid key: {e}"), path));
    }
    if k.is_none() || k.is_instance_of::<PyInt>() || k.is_instance_of::<PyFloat>() {
        return k.str().map(|s| s.to_string()).map_err(|e| err(format!("invalid key: {e}"), path));
    }
    Err(err(format!("dict keys must be strings, got a {}", type_name(k)), path))
}
