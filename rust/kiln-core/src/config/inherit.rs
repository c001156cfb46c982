//! `_base_` inheritance: read a file, load its bases (relative paths or `pkg::path`), merge
//! them in order, substitute MMEngine `{{...}}` placeholders, and merge the file on top.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

use super::error::{ConfigError, ErrorKind, Result};
use super::interpolate::substitute_mmengine;
use super::merge::merge_into;
use super::parse::{Format, SourceRef, parse_text, unknown_format};
use super::provenance::Sources;
use super::value::{Kind, Origin, Value};

/// The key listing a config's base files.
pub const BASE_KEY: &str = "_base_";

/// Inheritance deeper than this is an error (it also stops symlink loops that path
/// comparison cannot see).
const MAX_BASE_DEPTH: usize = 64;

/// What running a `.py` config gave: its own top-level values, and the merged bases as the
/// config left them when it changed them through `_base_` (`None` when it did not use them).
#[derive(Debug)]
pub struct PythonRun {
    pub values: Value,
    pub base: Option<Value>,
}

/// What the config engine needs from its embedder.
pub trait Host {
    /// The directory holding the config files of package `package` (for `pkg::path` bases).
    fn resolve_package(&mut self, package: &str) -> Result<PathBuf>;
    /// The `_base_` entry of a `.py` config (a path or a list of paths; `None` when it has
    /// none), read without running the file, and whether the file reads `_base_` as a value.
    fn python_bases(&mut self, path: &Path) -> Result<(Option<Value>, bool)>;
    /// Run a `.py` config with `base` (its merged bases, `None` when it has none) readable as
    /// `_base_`, and return its top-level values.
    fn run_python(&mut self, path: &Path, base: Option<&Value>) -> Result<PythonRun>;
}

/// A host that supports neither packages nor Python configs.
#[derive(Debug, Default)]
pub struct NoHost;

impl Host for NoHost {
    fn resolve_package(&mut self, package: &str) -> Result<PathBuf> {
        Err(ConfigError::new(format!("cannot resolve package '{package}': no package resolver was given")))
    }

    fn python_bases(&mut self, path: &Path) -> Result<(Option<Value>, bool)> {
        Err(ConfigError::new(format!("cannot load '{}': Python configs need a Python loader", path.display())))
    }

    fn run_python(&mut self, path: &Path, _base: Option<&Value>) -> Result<PythonRun> {
        Err(ConfigError::new(format!("cannot load '{}': Python configs need a Python loader", path.display())))
    }
}

/// Where a base file was named: the including file and the `_base_` entry.
struct Site {
    file: String,
    origin: Origin,
    key: String,
}

/// Reads config files and resolves their inheritance; one per top-level load.
pub struct Loader<'h> {
    host: &'h mut dyn Host,
    pub sources: Sources,
    /// Every file read, in the order read, each once.
    pub files: Vec<String>,
    /// Paths referenced by `{{_base_....}}` placeholders.
    pub referenced: BTreeSet<String>,
    /// Files being loaded, outermost first (cycle detection).
    stack: Vec<PathBuf>,
    /// Directory that chains are shown relative to.
    root_dir: Option<PathBuf>,
}

impl<'h> Loader<'h> {
    pub fn new(host: &'h mut dyn Host) -> Self {
        Loader {
            host,
            sources: Sources::new(),
            files: Vec::new(),
            referenced: BTreeSet::new(),
            stack: Vec::new(),
            root_dir: None,
        }
    }

    /// Load `path` with all its bases merged. `_delete_` keys are removed.
    pub fn load_file(&mut self, path: &Path) -> Result<Value> {
        let canonical = normalize(path);
        if !canonical.is_file() {
            return Err(ConfigError::new(format!("config file '{}' not found", path.display()))
                .in_file(path.display().to_string())
                .hint("check the path; relative paths are relative to the current directory"));
        }
        self.root_dir = canonical.parent().map(Path::to_path_buf);
        self.load_path(&canonical, None)
    }

    /// Load a config given as text; its relative bases are resolved from `base_dir`.
    pub fn load_text(&mut self, text: &str, format: Format, base_dir: &Path) -> Result<Value> {
        self.root_dir = Some(base_dir.to_path_buf());
        let name = "<string>";
        let id = self.sources.add_file(name);
        let raw = parse_text(text, format, SourceRef { id, name })?;
        self.with_bases(raw, base_dir, name)
    }

    fn display(&self, p: &Path) -> String {
        match self.root_dir.as_deref().and_then(|r| p.strip_prefix(r).ok()) {
            Some(rel) => rel.display().to_string(),
            None => p.display().to_string(),
        }
    }

    fn site_error(&self, site: Option<&Site>, e: ConfigError) -> ConfigError {
        match site {
            Some(s) if e.file.is_none() => e.at_origin(s.origin, &self.sources).key(s.key.clone()),
            _ => e,
        }
    }

    fn load_path(&mut self, path: &Path, site: Option<&Site>) -> Result<Value> {
        if let Some(pos) = self.stack.iter().position(|p| p == path) {
            let mut chain: Vec<String> = self.stack[pos..].iter().map(|p| self.display(p)).collect();
            chain.push(self.display(path));
            let e = ConfigError::new(format!("circular _base_ inheritance: {}", chain.join(" -> ")))
                .hint("a config cannot inherit from itself, directly or through its bases");
            return Err(self.site_error(site, e));
        }
        if self.stack.len() >= MAX_BASE_DEPTH {
            let e = ConfigError::new(format!("_base_ inheritance deeper than {MAX_BASE_DEPTH} files"))
                .hint("look for a cycle through symbolic links");
            return Err(self.site_error(site, e));
        }
        let name = path.display().to_string();
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        if is_python(path) {
            self.stack.push(path.to_path_buf());
            let r = self.load_python(path, &dir, &name);
            self.stack.pop();
            return r;
        }
        let raw = self.read(path, &name)?;
        self.stack.push(path.to_path_buf());
        let r = self.with_bases(raw, &dir, &name);
        self.stack.pop();
        r
    }

    /// A `.py` config: its bases are loaded first, then the file runs with them as `_base_`.
    fn load_python(&mut self, path: &Path, dir: &Path, name: &str) -> Result<Value> {
        let id = self.record_file(name);
        let in_file =
            |e: ConfigError| if e.file.is_none() && e.kind == ErrorKind::Config { e.in_file(name) } else { e };
        let origin = Origin::File { file: id, line: 0, col: 0 };
        let (bases, reads_base) = self.host.python_bases(path).map_err(in_file)?;
        let specs = match bases {
            Some(mut bases) => {
                bases.set_origin_deep(origin);
                self.base_specs(Some(bases))?
            }
            None => Vec::new(),
        };
        let merged = self.load_bases(&specs, dir, name)?;
        let given = if reads_base { merged.as_ref() } else { None };
        let run = self.host.run_python(path, given).map_err(in_file)?;
        let mut raw = run.values;
        raw.set_origin_deep(origin);
        let merged = match (run.base, merged) {
            (Some(mut changed), Some(before)) => {
                keep_origins(&mut changed, &before, origin);
                Some(changed)
            }
            (_, merged) => merged,
        };
        self.finish_file(raw, merged, name)
    }

    /// Register `name` as read; its source id.
    fn record_file(&mut self, name: &str) -> u32 {
        let id = self.sources.add_file(name);
        if !self.files.iter().any(|f| f == name) {
            self.files.push(name.to_string());
        }
        id
    }

    fn read(&mut self, path: &Path, name: &str) -> Result<Value> {
        let id = self.record_file(name);
        let format = Format::from_path(path).ok_or_else(|| unknown_format(path))?;
        let bytes =
            std::fs::read(path).map_err(|e| ConfigError::new(format!("cannot read config file: {e}")).in_file(name))?;
        let text = config_text(bytes, format).map_err(|e| e.in_file(name))?;
        let v = parse_text(&text, format, SourceRef { id, name })?;
        if matches!(v.kind, Kind::Null) {
            return Err(ConfigError::new("the config file holds no keys (only comments or an empty document)")
                .in_file(name)
                .hint("write the config's keys into it, or stop naming it as a config or base"));
        }
        Ok(v)
    }

    fn with_bases(&mut self, mut raw: Value, dir: &Path, name: &str) -> Result<Value> {
        if matches!(raw.kind, Kind::Null) {
            raw.kind = Kind::Map(Default::default());
        }
        let Kind::Map(map) = &mut raw.kind else {
            let e = ConfigError::new(format!("the top level of a config must be a mapping, not a {}", raw.type_name()));
            return Err(e.at_origin(raw.origin, &self.sources).in_file(name));
        };
        let bases = map.shift_remove(BASE_KEY);
        let specs = self.base_specs(bases)?;
        let merged = self.load_bases(&specs, dir, name)?;
        self.finish_file(raw, merged, name)
    }

    /// The entries of a `_base_` value: (path, where it was written, key path).
    fn base_specs(&self, bases: Option<Value>) -> Result<Vec<(String, Origin, String)>> {
        Ok(match bases {
            None => Vec::new(),
            Some(Value { kind: Kind::Str(s), origin }) => vec![(s, origin, BASE_KEY.to_string())],
            Some(Value { kind: Kind::List(items) | Kind::Tuple(items), .. }) => {
                let mut out = Vec::new();
                for (i, item) in items.into_iter().enumerate() {
                    match item.kind {
                        Kind::Str(s) => out.push((s, item.origin, format!("{BASE_KEY}.{i}"))),
                        _ => {
                            return Err(ConfigError::new(format!(
                                "_base_ entries must be file paths (strings), got a {}",
                                item.type_name()
                            ))
                            .at_origin(item.origin, &self.sources)
                            .key(format!("{BASE_KEY}.{i}")));
                        }
                    }
                }
                out
            }
            Some(other) => {
                return Err(ConfigError::new(format!(
                    "_base_ must be a path or a list of paths, got a {}",
                    other.type_name()
                ))
                .at_origin(other.origin, &self.sources)
                .key(BASE_KEY));
            }
        })
    }

    /// Load the bases named by `specs` and merge them in order; `None` when there are none.
    fn load_bases(&mut self, specs: &[(String, Origin, String)], dir: &Path, name: &str) -> Result<Option<Value>> {
        let mut merged: Option<Value> = None;
        for (spec, origin, key) in specs {
            let site = Site { file: name.to_string(), origin: *origin, key: key.clone() };
            let path = self.resolve_base(spec, dir, &site)?;
            let v = self.load_path(&path, Some(&site))?;
            match merged.as_mut() {
                None => merged = Some(v),
                Some(m) => merge_into(m, v),
            }
        }
        Ok(merged)
    }

    /// Substitute `{{...}}` placeholders of a file's own values from its bases, then merge
    /// the values on top of the bases.
    fn finish_file(&mut self, mut raw: Value, merged: Option<Value>, name: &str) -> Result<Value> {
        if !matches!(raw.kind, Kind::Map(_)) {
            let e = ConfigError::new(format!("the top level of a config must be a mapping, not a {}", raw.type_name()));
            return Err(e.in_file(name));
        }
        if has_placeholder(&raw) {
            let mut path = Vec::new();
            substitute_mmengine(&mut raw, merged.as_ref(), &self.sources, &mut self.referenced, &mut path)?;
        }
        // MMEngine merges a file's values into an empty base when it has none, which leaves
        // `_delete_` markers in place; merging into an empty map does the same here.
        let mut base = merged.unwrap_or_else(Value::empty_map);
        merge_into(&mut base, raw);
        Ok(base)
    }

    fn resolve_base(&mut self, spec: &str, dir: &Path, site: &Site) -> Result<PathBuf> {
        let (path, package_note) = match spec.split_once("::") {
            Some((pkg, rel)) => {
                let pkg_dir = self
                    .host
                    .resolve_package(pkg)
                    .map_err(|e| if e.kind == ErrorKind::Host { e } else { self.site_error(Some(site), e) })?;
                let note = format!(" (package '{pkg}' is at '{}')", pkg_dir.display());
                (pkg_dir.join(rel), note)
            }
            None => (dir.join(spec), String::new()),
        };
        let path = normalize(&path);
        match path.is_file() {
            true => Ok(path),
            false => {
                let e = ConfigError::new(format!(
                    "base config '{spec}' not found: looked for '{}'{package_note}, named in {}",
                    path.display(),
                    site.file
                ))
                .hint("_base_ paths are relative to the directory of the file that names them; use 'pkg::path' for a package's configs");
                Err(self.site_error(Some(site), e))
            }
        }
    }
}

/// The text of a config file, or an error saying why the bytes are not config text: empty,
/// binary (a NUL byte) or not UTF-8.
fn config_text(bytes: Vec<u8>, format: Format) -> Result<String> {
    let what = format.name();
    if let Some(at) = bytes.iter().position(|b| *b == 0) {
        return Err(ConfigError::new(format!(
            "the config file holds binary data (a NUL byte at offset {at}), not {what} text"
        ))
        .hint("check that the path names a config file"));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        ConfigError::new(format!(
            "the config file is not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ))
        .hint("save the config as UTF-8, or check that the path names a config file")
    })?;
    if text.trim().is_empty() {
        return Err(ConfigError::new("the config file is empty")
            .hint("write the config's keys into it, or stop naming it as a config or base"));
    }
    Ok(text)
}

/// Whether `path` names a Python config.
fn is_python(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("py"))
}

/// Give every node of `changed` that still equals the node at the same place in `before`
/// that node's origin, and `fallback` to the rest (values the config set through `_base_`).
fn keep_origins(changed: &mut Value, before: &Value, fallback: Origin) {
    if changed == before {
        copy_origins(changed, before);
        return;
    }
    changed.origin = before.origin;
    match (&mut changed.kind, &before.kind) {
        (Kind::Map(cm), Kind::Map(bm)) => {
            for (k, v) in cm.iter_mut() {
                match bm.get(k) {
                    Some(b) => keep_origins(v, b, fallback),
                    None => v.set_origin_deep(fallback),
                }
            }
        }
        (Kind::List(ci) | Kind::Tuple(ci), Kind::List(bi) | Kind::Tuple(bi)) => {
            for (i, v) in ci.iter_mut().enumerate() {
                match bi.get(i) {
                    Some(b) => keep_origins(v, b, fallback),
                    None => v.set_origin_deep(fallback),
                }
            }
        }
        _ => changed.set_origin_deep(fallback),
    }
}

/// Copy the origins of `from` onto the equal tree `to`.
fn copy_origins(to: &mut Value, from: &Value) {
    to.origin = from.origin;
    match (&mut to.kind, &from.kind) {
        (Kind::Map(tm), Kind::Map(fm)) => {
            for ((_, t), (_, f)) in tm.iter_mut().zip(fm.iter()) {
                copy_origins(t, f);
            }
        }
        (Kind::List(ti) | Kind::Tuple(ti), Kind::List(fi) | Kind::Tuple(fi)) => {
            for (t, f) in ti.iter_mut().zip(fi.iter()) {
                copy_origins(t, f);
            }
        }
        _ => {}
    }
}

/// Whether any string below `v` contains `{{` (MMEngine placeholders are rare: skip the walk).
fn has_placeholder(v: &Value) -> bool {
    match &v.kind {
        Kind::Str(s) => s.contains("{{"),
        Kind::List(items) | Kind::Tuple(items) => items.iter().any(has_placeholder),
        Kind::Map(m) => m.values().any(has_placeholder),
        _ => false,
    }
}

/// An absolute path with `.` and `..` removed lexically (no file system calls, so symbolic
/// links are kept as written).
fn normalize(p: &Path) -> PathBuf {
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse::parse_yaml_str;
    use crate::config::testutil::TempDir;

    fn y(s: &str) -> Value {
        parse_yaml_str(s, "t.yaml").unwrap()
    }

    fn load(p: &Path) -> Result<Value> {
        let mut h = NoHost;
        Loader::new(&mut h).load_file(p)
    }

    #[test]
    fn relative_and_list_bases_merge_in_order() {
        let d = TempDir::new("bases");
        d.write("base/model.yaml", "model: {type: M, depth: 50, head: {n: 80}}\nshared: 1\n");
        d.write("base/sched.json", "{\"lr\": 0.1, \"shared\": 2}");
        d.write("base/rt.toml", "seed = 0\n");
        let child = d.write(
            "exp/child.yaml",
            "_base_: [../base/model.yaml, ../base/sched.json, ../base/rt.toml]\nmodel: {head: {n: 3}}\nlr: 0.01\n",
        );
        let v = load(&child).unwrap();
        assert_eq!(v, y("model: {type: M, depth: 50, head: {n: 3}}\nshared: 2\nlr: 0.01\nseed: 0\n"));
        let single = d.write("exp/single.yaml", "_base_: ../base/rt.toml\nx: 1\n");
        assert_eq!(load(&single).unwrap(), y("seed: 0\nx: 1\n"));
    }

    #[test]
    fn delete_across_inheritance() {
        let d = TempDir::new("delete");
        d.write("base.yaml", "optim: {type: SGD, lr: 0.1, momentum: 0.9}\n");
        let c = d.write("c.yaml", "_base_: base.yaml\noptim: {_delete_: true, type: AdamW, lr: 0.001}\n");
        assert_eq!(load(&c).unwrap(), y("optim: {type: AdamW, lr: 0.001}\n"));
        // As in MMEngine, the marker stays where there is nothing to delete.
        let plain = d.write("plain.yaml", "a: {_delete_: true, x: 1}\n");
        assert_eq!(load(&plain).unwrap(), y("a: {_delete_: true, x: 1}\n"));
    }

    #[test]
    fn later_base_delete_replaces_earlier_base() {
        let d = TempDir::new("delete2");
        d.write("a.yaml", "optim: {type: SGD, momentum: 0.9}\n");
        d.write("b.yaml", "optim: {_delete_: true, type: Adam}\n");
        let c = d.write("c.yaml", "_base_: [a.yaml, b.yaml]\n");
        assert_eq!(load(&c).unwrap(), y("optim: {type: Adam}\n"));
    }

    #[test]
    fn cycle_prints_the_chain() {
        let d = TempDir::new("cycle");
        let a = d.write("a.yaml", "_base_: b.yaml\nx: 1\n");
        d.write("b.yaml", "_base_: [a.yaml]\ny: 1\n");
        let e = load(&a).unwrap_err();
        assert!(e.message.contains("circular _base_ inheritance: a.yaml -> b.yaml -> a.yaml"), "{e}");
        assert!(e.file.as_deref().unwrap().ends_with("b.yaml"), "{e}");
        assert_eq!((e.line, e.key_path.as_deref()), (Some(1), Some("_base_.0")));
    }

    #[test]
    fn diamond_is_not_a_cycle() {
        let d = TempDir::new("diamond");
        d.write("root.yaml", "r: 1\n");
        d.write("l.yaml", "_base_: root.yaml\nl: 1\n");
        d.write("m.yaml", "_base_: root.yaml\nm: 1\n");
        let c = d.write("c.yaml", "_base_: [l.yaml, m.yaml]\n");
        assert_eq!(load(&c).unwrap(), y("r: 1\nl: 1\nm: 1\n"));
    }

    #[test]
    fn missing_base_names_the_including_file_and_line() {
        let d = TempDir::new("missing");
        let c = d.write("c.yaml", "x: 1\n_base_:\n  - ok.yaml\n  - nope.yaml\n");
        d.write("ok.yaml", "y: 1\n");
        let e = load(&c).unwrap_err();
        assert!(e.message.contains("base config 'nope.yaml' not found"), "{e}");
        assert!(e.file.as_deref().unwrap().ends_with("c.yaml"), "{e}");
        assert_eq!((e.line, e.col, e.key_path.as_deref()), (Some(4), Some(5), Some("_base_.1")));
        let e = load(&d.0.join("absent.yaml")).unwrap_err();
        assert!(e.message.contains("not found"), "{e}");
    }

    #[test]
    fn package_bases_use_the_host() {
        struct Pkg(PathBuf);
        impl Host for Pkg {
            fn resolve_package(&mut self, p: &str) -> Result<PathBuf> {
                if p == "mypkg" { Ok(self.0.clone()) } else { Err(ConfigError::new(format!("unknown package '{p}'"))) }
            }
            fn python_bases(&mut self, _: &Path) -> Result<(Option<Value>, bool)> {
                Ok((None, false))
            }
            fn run_python(&mut self, _: &Path, base: Option<&Value>) -> Result<PythonRun> {
                assert!(base.is_none());
                Ok(PythonRun { values: y("from_py: 1\n"), base: None })
            }
        }
        let d = TempDir::new("pkg");
        d.write("pkgdir/configs/base.yaml", "a: 1\n");
        d.write("py_base.py", "# executed by the host\n");
        let c = d.write("c.yaml", "_base_: ['mypkg::configs/base.yaml', py_base.py]\nb: 2\n");
        let mut h = Pkg(d.0.join("pkgdir"));
        let mut l = Loader::new(&mut h);
        assert_eq!(l.load_file(&c).unwrap(), y("a: 1\nfrom_py: 1\nb: 2\n"));
        assert_eq!(l.files.len(), 3);
        let bad = d.write("bad.yaml", "_base_: 'other::x.yaml'\n");
        let e = Loader::new(&mut h).load_file(&bad).unwrap_err();
        assert!(e.message.contains("unknown package 'other'"), "{e}");
        assert_eq!(e.line, Some(1));
    }

    #[test]
    fn base_placeholders_see_merged_bases() {
        let d = TempDir::new("mm");
        d.write("b.yaml", "num_classes: 80\n");
        let c = d.write("c.yaml", "_base_: b.yaml\nhead: {n: '{{_base_.num_classes}}'}\n");
        let mut h = NoHost;
        let mut l = Loader::new(&mut h);
        assert_eq!(l.load_file(&c).unwrap(), y("num_classes: 80\nhead: {n: 80}\n"));
        assert!(l.referenced.contains("num_classes"));
    }

    #[test]
    fn empty_binary_and_comment_only_files_say_so() {
        let d = TempDir::new("badfiles");
        for (name, text, want) in [
            ("empty.yaml", "", "the config file is empty"),
            ("blank.json", "  \n\n", "the config file is empty"),
            ("comments.yaml", "# nothing here\n", "holds no keys"),
            ("nul.yaml", "a: 1\0\n", "binary data (a NUL byte at offset 4), not YAML text"),
        ] {
            let p = d.write(name, text);
            let e = load(&p).unwrap_err();
            assert!(e.message.contains(want), "{name}: {e}");
            assert!(e.file.as_deref().unwrap().ends_with(name), "{name}: {e}");
        }
        let p = d.0.join("latin1.toml");
        std::fs::write(&p, b"a = '\xe9'\n").unwrap();
        assert!(load(&p).unwrap_err().message.contains("not UTF-8 text (invalid byte at offset 5)"));
        // as a base, the including file is named by the error's chain
        let c = d.write("c.yaml", "_base_: empty.yaml\n");
        assert!(load(&c).unwrap_err().message.contains("the config file is empty"));
    }

    #[test]
    fn top_level_must_be_a_map() {
        let d = TempDir::new("toplist");
        let c = d.write("c.yaml", "- 1\n- 2\n");
        assert!(load(&c).unwrap_err().message.contains("must be a mapping"));
        let t = d.write("c.txt", "x");
        assert!(load(&t).unwrap_err().message.contains("unsupported config format"));
    }
}
