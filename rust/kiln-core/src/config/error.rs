//! The one error type of the config engine: what went wrong, where, and how to fix it.

use std::fmt;

use super::provenance::Sources;
use super::value::Origin;

/// What kind of failure a [`ConfigError`] reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ErrorKind {
    /// A mistake in the config, its files or the overrides.
    #[default]
    Config,
    /// A host callback (package resolver, Python loader) failed; the host keeps the details.
    Host,
}

/// A config error with the location (file, line, column, key path) where known and a hint.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigError {
    /// A config mistake or a host failure.
    pub kind: ErrorKind,
    /// What went wrong, in one sentence.
    pub message: String,
    /// The file, when known.
    pub file: Option<String>,
    /// 1-based line.
    pub line: Option<u32>,
    /// 1-based column.
    pub col: Option<u32>,
    /// Dotted key path (`train_cfg.max_epochs`, list items by index).
    pub key_path: Option<String>,
    /// How to fix it.
    pub hint: Option<String>,
}

impl ConfigError {
    /// An error with only a message; add the rest with the builder methods.
    pub fn new(message: impl Into<String>) -> Self {
        ConfigError { message: message.into(), ..Default::default() }
    }

    /// A failure of a host callback; see [`ErrorKind::Host`].
    pub fn host(message: impl Into<String>) -> Self {
        ConfigError { kind: ErrorKind::Host, ..Self::new(message) }
    }

    /// Set the file, position unknown.
    pub fn in_file(mut self, file: impl Into<String>) -> Self {
        self.file = Some(file.into());
        self
    }

    /// Set file, line and column; `line == 0` means "file known, position unknown".
    pub fn at(mut self, file: impl Into<String>, line: u32, col: u32) -> Self {
        self.file = Some(file.into());
        if line > 0 {
            self.line = Some(line);
            self.col = Some(col);
        }
        self
    }

    /// Set the dotted key path; an empty path sets none.
    pub fn key(mut self, key_path: impl Into<String>) -> Self {
        let k = key_path.into();
        self.key_path = if k.is_empty() { None } else { Some(k) };
        self
    }

    /// Set the hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Fill in the location from `origin` unless a location is already set. An override
    /// origin is named in the message since it has no file.
    pub fn at_origin(mut self, origin: Origin, sources: &Sources) -> Self {
        if self.file.is_some() {
            return self;
        }
        match origin {
            Origin::File { file, line, col } => self.at(sources.file_name(file), line, col),
            Origin::Override(i) => {
                self.message = format!("{} (set by --cfg-options {})", self.message, sources.override_text(i));
                self
            }
            Origin::Unknown => self,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{file}")?;
            if let Some(line) = self.line {
                write!(f, ":{line}")?;
                if let Some(col) = self.col {
                    write!(f, ":{col}")?;
                }
            }
            write!(f, ": ")?;
        }
        write!(f, "{}", self.message)?;
        if let Some(k) = &self.key_path {
            write!(f, " (at key '{k}')")?;
        }
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Result alias for the config engine.
pub type Result<T, E = ConfigError> = std::result::Result<T, E>;

/// A "did you mean" hint: up to three candidates closest to `word`, best first.
pub fn did_you_mean<'a, I>(word: &str, candidates: I) -> Option<String>
where
    I: IntoIterator<Item = &'a str>,
{
    let mut scored: Vec<(f64, &str)> =
        candidates.into_iter().map(|c| (strsim::jaro_winkler(word, c), c)).filter(|(s, _)| *s >= 0.75).collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    scored.truncate(3);
    match scored.as_slice() {
        [] => None,
        [(_, one)] => Some(format!("did you mean '{one}'?")),
        many => {
            let names: Vec<String> = many.iter().map(|(_, c)| format!("'{c}'")).collect();
            Some(format!("did you mean one of {}?", names.join(", ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_has_location_key_and_hint() {
        let e = ConfigError::new("bad").at("a.yaml", 3, 5).key("x.y").hint("fix it");
        assert_eq!(e.to_string(), "a.yaml:3:5: bad (at key 'x.y')\n  hint: fix it");
        let e = ConfigError::new("bad").at("a.py", 0, 0);
        assert_eq!(e.to_string(), "a.py: bad");
    }

    #[test]
    fn did_you_mean_ranks_close_names() {
        let h = did_you_mean("max_epoch", ["max_epochs", "val_interval", "max_iters"]).unwrap();
        assert!(h.starts_with("did you mean 'max_epochs'") || h.contains("'max_epochs', "), "{h}");
        assert_eq!(did_you_mean("zzz", ["max_epochs"]), None);
    }
}
