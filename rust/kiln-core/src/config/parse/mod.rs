//! Readers for the config formats, chosen by file extension.

pub mod json;
pub mod scalar;
pub mod toml;
pub mod yaml;

use std::path::Path;

use super::error::{ConfigError, Result};
use super::value::Value;

/// Nesting deeper than this is rejected instead of risking the stack (the readers, the
/// override paths and the Python conversion all stop here).
pub const MAX_DEPTH: usize = 256;

/// A text config format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
    Toml,
}

impl Format {
    /// `yaml`/`yml`, `json` or `toml` (case-insensitive, leading dot allowed).
    pub fn from_name(name: &str) -> Option<Format> {
        match name.trim_start_matches('.').to_ascii_lowercase().as_str() {
            "yaml" | "yml" => Some(Format::Yaml),
            "json" => Some(Format::Json),
            "toml" => Some(Format::Toml),
            _ => None,
        }
    }

    /// The format's name as people write it: `YAML`, `JSON`, `TOML`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Yaml => "YAML",
            Format::Json => "JSON",
            Format::Toml => "TOML",
        }
    }

    /// The format of `path` by its extension.
    pub fn from_path(path: &Path) -> Option<Format> {
        path.extension().and_then(|e| e.to_str()).and_then(Format::from_name)
    }
}

/// The file being parsed: its id in [`super::Sources`] and its name for messages.
#[derive(Clone, Copy, Debug)]
pub struct SourceRef<'a> {
    pub id: u32,
    pub name: &'a str,
}

/// Parse `text` in `format`.
pub fn parse_text(text: &str, format: Format, src: SourceRef<'_>) -> Result<Value> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    match format {
        Format::Yaml => yaml::parse(text, src),
        Format::Json => json::parse(text, src),
        Format::Toml => toml::parse(text, src),
    }
}

/// Parse a standalone YAML text (no inheritance); used for plain `parse_yaml` calls.
pub fn parse_yaml_str(text: &str, name: &str) -> Result<Value> {
    parse_text(text, Format::Yaml, SourceRef { id: 0, name })
}

/// Byte offset to 1-based (line, column in characters).
#[derive(Debug)]
pub struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.bytes().enumerate().filter(|(_, b)| *b == b'\n').map(|(i, _)| i + 1));
        LineIndex { starts }
    }

    pub fn position(&self, text: &str, offset: usize) -> (u32, u32) {
        let offset = offset.min(text.len());
        let line = self.starts.partition_point(|s| *s <= offset) - 1;
        let start = self.starts[line];
        let col = text.get(start..offset).map(|s| s.chars().count()).unwrap_or(offset - start);
        (line as u32 + 1, col as u32 + 1)
    }
}

/// The error for a file whose extension names no known format.
pub fn unknown_format(path: &Path) -> ConfigError {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    ConfigError::new(format!("unsupported config format '.{ext}'"))
        .in_file(path.display().to_string())
        .hint("config files end in .yaml, .yml, .json, .toml or .py")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_index() {
        let t = "ab\ncdé\nx";
        let li = LineIndex::new(t);
        assert_eq!(li.position(t, 0), (1, 1));
        assert_eq!(li.position(t, 3), (2, 1));
        assert_eq!(li.position(t, 8), (3, 1));
        assert_eq!(li.position(t, 5), (2, 3));
    }

    #[test]
    fn formats_by_extension() {
        assert_eq!(Format::from_path(Path::new("a/b.YML")), Some(Format::Yaml));
        assert_eq!(Format::from_path(Path::new("a.toml")), Some(Format::Toml));
        assert_eq!(Format::from_path(Path::new("a.py")), None);
    }
}
