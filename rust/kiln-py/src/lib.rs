//! `torchkiln._native`: the Python face of `kiln-core`. This file is only the export list;
//! conversions and wrappers live in the modules beside it.

mod config;
mod convert;
mod errors;
mod host;
mod logbuf;

use pyo3::prelude::*;

// The config engine allocates many small strings, vectors and maps per load; mimalloc
// serves them markedly faster than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[pymodule]
mod _native {
    use super::*;

    #[pymodule_export]
    use crate::errors::ConfigLoadError;

    #[pymodule_export]
    use crate::config::{
        LoadedConfig, apply_overrides, dump_yaml, escape_refs, interpolate, load_config, loads_config, merge,
        parse_yaml,
    };

    #[pymodule_export]
    use crate::logbuf::{JsonlSink, LogBuffer};

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        crate::errors::init_error_defaults(m)
    }
}
