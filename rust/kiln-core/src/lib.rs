//! The pure-Rust core of torchkiln.
//!
//! - [`config`]: read YAML/JSON/TOML config files, resolve `_base_` inheritance, merge,
//!   apply command-line overrides, interpolate `${...}` references, record where every
//!   value came from, and dump the result back to YAML.
//! - [`logbuf`]: bounded per-key scalar histories and a buffered JSON-lines sink.
//!
//! Nothing here depends on Python; the `kiln-py` crate wraps it as `torchkiln._native`.

pub mod config;
pub mod logbuf;
