//! `LogBuffer` and `JsonlSink` of `torchkiln._native`.

use std::path::PathBuf;
use std::time::Duration;

use kiln_core::logbuf::{self as core, KeyState, LogBufferError};
use pyo3::exceptions::{PyKeyError, PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFloat, PyInt, PyList, PyMapping, PyString, PyTuple};

fn to_pyerr(e: LogBufferError) -> PyErr {
    match e {
        LogBufferError::MissingKey(k) => PyKeyError::new_err(k),
        other => PyValueError::new_err(other.to_string()),
    }
}

/// Per-key scalar histories in bounded rings (see the stub for the exact semantics).
#[pyclass(module = "torchkiln._native")]
pub struct LogBuffer {
    inner: core::LogBuffer,
}

fn key_state_to_py<'py>(py: Python<'py>, s: &KeyState) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("values", PyList::new(py, &s.values)?)?;
    d.set_item("counts", PyList::new(py, &s.counts)?)?;
    d.set_item("global_sum", s.global_sum)?;
    d.set_item("global_count", s.global_count)?;
    Ok(d)
}

fn key_state_from_py(state: &Bound<'_, PyAny>) -> PyResult<KeyState> {
    let get = |name: &str| {
        state.get_item(name).map_err(|_| PyValueError::new_err(format!("log buffer state is missing '{name}'")))
    };
    Ok(KeyState {
        values: get("values")?.extract()?,
        counts: get("counts")?.extract()?,
        global_sum: get("global_sum")?.extract()?,
        global_count: get("global_count")?.extract()?,
    })
}

#[pymethods]
impl LogBuffer {
    #[new]
    #[pyo3(signature = (capacity = 1024))]
    fn new(capacity: i64) -> PyResult<Self> {
        if capacity < 1 {
            return Err(PyValueError::new_err(format!("capacity must be a positive int, got {capacity}")));
        }
        Ok(LogBuffer { inner: core::LogBuffer::new(capacity as usize) })
    }

    /// Entries kept per key.
    #[getter]
    fn capacity(&self) -> usize {
        self.inner.capacity()
    }

    /// O(1): record `value` as the sum of `count` samples (`count >= 0`).
    #[pyo3(signature = (key, value, count = 1))]
    fn update(&mut self, key: &str, value: f64, count: i64) -> PyResult<()> {
        self.inner.update(key, value, count).map_err(to_pyerr)
    }

    /// `update` every `key: value` of a mapping with the same `count`.
    #[pyo3(signature = (values, count = 1))]
    fn update_many(&mut self, values: &Bound<'_, PyAny>, count: i64) -> PyResult<()> {
        if count < 0 {
            return Err(to_pyerr(LogBufferError::BadCount(count)));
        }
        if let Ok(d) = values.cast::<PyDict>() {
            for (k, v) in d.iter() {
                let key = k.cast::<PyString>()?.to_str()?.to_owned();
                self.inner.update(&key, v.extract::<f64>()?, count).map_err(to_pyerr)?;
            }
            return Ok(());
        }
        let m = values.cast::<PyMapping>()?;
        for item in m.items()?.iter() {
            let (k, v): (String, f64) = item.extract()?;
            self.inner.update(&k, v, count).map_err(to_pyerr)?;
        }
        Ok(())
    }

    /// `update(key, value, count)` for each `(key, value, count)` row, in order. Values that
    /// are not a Python `float` or `int` (tensors waiting for conversion) are handed, in
    /// order, as one list to `convert`, which returns their numbers. Every row is checked
    /// before any is stored, so a bad row leaves the buffer as it was.
    #[pyo3(signature = (rows, convert = None))]
    fn update_rows(&mut self, rows: &Bound<'_, PyAny>, convert: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let py = rows.py();
        let mut parsed: Vec<(Bound<'_, PyString>, Option<f64>, i64)> = Vec::new();
        let others = PyList::empty(py);
        for item in rows.try_iter()? {
            let item = item?;
            let row = item.cast::<PyTuple>()?;
            if row.len() != 3 {
                return Err(PyValueError::new_err(format!("a row is (key, value, count), got {} items", row.len())));
            }
            let key = row.get_item(0)?.cast_into::<PyString>()?;
            let raw = row.get_item(1)?;
            let value = if raw.is_exact_instance_of::<PyFloat>() || raw.is_exact_instance_of::<PyInt>() {
                Some(raw.extract::<f64>()?)
            } else {
                others.append(raw)?;
                None
            };
            let count: i64 = row.get_item(2)?.extract()?;
            if count < 0 {
                return Err(to_pyerr(LogBufferError::BadCount(count)));
            }
            parsed.push((key, value, count));
        }
        let mut converted = Vec::new().into_iter();
        if !others.is_empty() {
            let convert = convert.ok_or_else(|| {
                PyValueError::new_err("update_rows: a row holds a value that is not a number and no convert was given")
            })?;
            let numbers: Vec<f64> = convert.call1((&others,))?.extract()?;
            if numbers.len() != others.len() {
                return Err(PyValueError::new_err(format!(
                    "update_rows: convert returned {} numbers for {} values",
                    numbers.len(),
                    others.len()
                )));
            }
            converted = numbers.into_iter();
        }
        for (key, value, count) in &parsed {
            let value = match value {
                Some(v) => *v,
                None => converted.next().unwrap_or(f64::NAN),
            };
            self.inner.update(key.to_str()?, value, *count).map_err(to_pyerr)?;
        }
        Ok(())
    }

    fn current(&self, key: &str) -> PyResult<f64> {
        Ok(self.inner.get(key).map_err(to_pyerr)?.current())
    }

    #[pyo3(signature = (key, window = None))]
    fn mean(&self, key: &str, window: Option<i64>) -> PyResult<f64> {
        self.inner.get(key).and_then(|s| s.mean(window)).map_err(to_pyerr)
    }

    #[pyo3(signature = (key, window = None))]
    fn min(&self, key: &str, window: Option<i64>) -> PyResult<f64> {
        self.inner.get(key).and_then(|s| s.min(window)).map_err(to_pyerr)
    }

    #[pyo3(signature = (key, window = None))]
    fn max(&self, key: &str, window: Option<i64>) -> PyResult<f64> {
        self.inner.get(key).and_then(|s| s.max(window)).map_err(to_pyerr)
    }

    #[pyo3(signature = (key, window = None))]
    fn median(&self, key: &str, window: Option<i64>) -> PyResult<f64> {
        self.inner.get(key).and_then(|s| s.median(window)).map_err(to_pyerr)
    }

    fn global_mean(&self, key: &str) -> PyResult<f64> {
        Ok(self.inner.get(key).map_err(to_pyerr)?.global_mean())
    }

    fn count(&self, key: &str) -> PyResult<i64> {
        Ok(self.inner.get(key).map_err(to_pyerr)?.count())
    }

    fn keys(&self) -> Vec<String> {
        self.inner.keys().map(str::to_string).collect()
    }

    /// The retained values and counts of `key`, oldest first.
    fn data(&self, key: &str) -> PyResult<(Vec<f64>, Vec<i64>)> {
        let s = self.inner.get(key).map_err(to_pyerr)?.state();
        Ok((s.values, s.counts))
    }

    fn key_state_dict<'py>(&self, py: Python<'py>, key: &str) -> PyResult<Bound<'py, PyDict>> {
        let s = self.inner.get(key).map_err(to_pyerr)?.state();
        key_state_to_py(py, &s)
    }

    fn load_key_state_dict(&mut self, key: &str, state: &Bound<'_, PyAny>) -> PyResult<()> {
        let s = key_state_from_py(state)?;
        self.inner.load_key_state(key, s).map_err(to_pyerr)
    }

    /// `{"capacity": int, "keys": {key: key_state_dict(key)}}`.
    fn state_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let keys = PyDict::new(py);
        for k in self.inner.keys() {
            let s = self.inner.get(k).map_err(to_pyerr)?.state();
            keys.set_item(k, key_state_to_py(py, &s)?)?;
        }
        let d = PyDict::new(py);
        d.set_item("capacity", self.inner.capacity())?;
        d.set_item("keys", keys)?;
        Ok(d)
    }

    /// Replace every key's history by a `state_dict` (entries beyond capacity are dropped,
    /// oldest first). Nothing changes if the state is invalid.
    fn load_state_dict(&mut self, state: &Bound<'_, PyAny>) -> PyResult<()> {
        let keys = state.get_item("keys").map_err(|_| PyValueError::new_err("log buffer state is missing 'keys'"))?;
        let keys = keys.cast::<PyMapping>()?;
        let mut fresh = core::LogBuffer::new(self.inner.capacity());
        for item in keys.items()?.iter() {
            let (k, v): (String, Bound<'_, PyAny>) = item.extract()?;
            fresh.load_key_state(&k, key_state_from_py(&v)?).map_err(to_pyerr)?;
        }
        self.inner = fresh;
        Ok(())
    }

    fn clear(&mut self) {
        self.inner.clear();
    }

    /// Pickling: the constructor argument (`capacity`), then `__setstate__(__getstate__())`.
    fn __getnewargs__(&self) -> (usize,) {
        (self.inner.capacity(),)
    }

    /// Pickling: the whole buffer as a `state_dict` (plain data, exact: floats and counts
    /// as they are stored).
    fn __getstate__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.state_dict(py)
    }

    /// Pickling: replace everything, capacity included, by a `__getstate__` result.
    /// Nothing changes if the state is invalid.
    fn __setstate__(&mut self, state: &Bound<'_, PyAny>) -> PyResult<()> {
        let capacity: i64 = state
            .get_item("capacity")
            .map_err(|_| PyValueError::new_err("log buffer state is missing 'capacity'"))?
            .extract()?;
        if capacity < 1 {
            return Err(PyValueError::new_err(format!("capacity must be a positive int, got {capacity}")));
        }
        let previous = std::mem::replace(&mut self.inner, core::LogBuffer::new(capacity as usize));
        if let Err(e) = self.load_state_dict(state) {
            self.inner = previous;
            return Err(e);
        }
        Ok(())
    }

    fn __contains__(&self, key: &Bound<'_, PyAny>) -> bool {
        key.cast::<PyString>().ok().and_then(|s| s.to_str().ok().map(|k| self.inner.contains(k))).unwrap_or(false)
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    fn __repr__(&self) -> String {
        format!("LogBuffer(capacity={}, keys={})", self.inner.capacity(), self.inner.len())
    }
}

/// A JSON-lines file written by a background thread.
#[pyclass(frozen, module = "torchkiln._native")]
pub struct JsonlSink {
    inner: core::JsonlSink,
}

fn io_err(e: std::io::Error) -> PyErr {
    PyOSError::new_err(e.to_string())
}

#[pymethods]
impl JsonlSink {
    #[new]
    #[pyo3(signature = (path, flush_interval_s = 1.0, max_buffered = 1000))]
    fn new(path: PathBuf, flush_interval_s: f64, max_buffered: i64) -> PyResult<Self> {
        // try_from_secs_f64 rejects what Duration cannot hold (1e20 s) instead of panicking
        let flush_interval = match Duration::try_from_secs_f64(flush_interval_s) {
            Ok(d) if flush_interval_s.is_finite() && flush_interval_s > 0.0 => d,
            _ => {
                return Err(PyValueError::new_err(format!(
                    "flush_interval_s must be a positive number of seconds that fits a duration, got {flush_interval_s}"
                )));
            }
        };
        if max_buffered < 1 {
            return Err(PyValueError::new_err(format!("max_buffered must be a positive int, got {max_buffered}")));
        }
        let inner = core::JsonlSink::open(&path, flush_interval, max_buffered as usize)
            .map_err(|e| PyOSError::new_err(format!("cannot open {}: {e}", path.display())))?;
        Ok(JsonlSink { inner })
    }

    #[getter]
    fn path(&self) -> String {
        self.inner.path().display().to_string()
    }

    #[getter]
    fn closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// Queue one line; never waits on the disk.
    fn write(&self, line: &str) -> PyResult<()> {
        if line.contains('\n') {
            return Err(PyValueError::new_err("a JSON-lines record must not contain a newline"));
        }
        if self.inner.is_closed() {
            return Err(PyValueError::new_err("write to a closed JsonlSink"));
        }
        self.inner.write(line).map_err(io_err)
    }

    /// Write everything queued and return when it is in the file.
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.inner.flush()).map_err(io_err)
    }

    /// Flush, stop the writer thread and close the file; idempotent.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.inner.close()).map_err(io_err)
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<()> {
        self.close(py)
    }

    fn __repr__(&self) -> String {
        format!("JsonlSink({:?}, closed={})", self.inner.path().display().to_string(), self.inner.is_closed())
    }
}
