//! String interpolation, run once after merging and overrides.
//!
//! - `${a.b.c}` is the value at that dotted path (list items by index: `${a.list.0}`). A string
//!   that is exactly one reference takes the referenced value with its type (maps and lists
//!   included); inside a longer string the value is written as Python's `str()` would write a
//!   scalar, or in YAML flow style for lists and maps.
//! - `${env:NAME}` and `${env:NAME,default}` read the environment; a whole-string env reference
//!   is typed like a YAML plain scalar (`12` is an int, `abc` a string).
//! - `\${` is a literal `${`.
//!
//! MMEngine's `{{_base_.a.b}}` and `{{$NAME:default}}` are substituted earlier, when a file is
//! merged onto its bases ([`substitute_mmengine`]); there `\{{` is a literal `{{`.

use std::collections::{BTreeSet, HashMap};

use super::error::{ConfigError, Result, did_you_mean};
use super::parse::scalar::resolve_plain;
use super::provenance::Sources;
use super::value::{Kind, Map, Origin, Seg, Value, join_path};

/// Resolve every `${...}` in `root`. Paths referenced by `${...}` are added to `referenced`.
///
/// Only the interpolated strings are rebuilt; everything else stays in place.
pub fn interpolate(mut root: Value, sources: Option<&Sources>, referenced: &mut BTreeSet<String>) -> Result<Value> {
    let mut targets: Vec<Vec<Seg>> = Vec::new();
    find_interpolated(&root, &mut Vec::new(), &mut targets);
    if targets.is_empty() {
        return Ok(root);
    }
    let mut results = Vec::with_capacity(targets.len());
    {
        let mut it = Interpolator {
            root: &root,
            sources,
            cache: HashMap::new(),
            in_progress: Vec::new(),
            referenced: BTreeSet::new(),
        };
        for segs in &targets {
            let node = get_segs(&root, segs).expect("collected from this tree");
            let mut path = join_path(segs);
            results.push(it.resolve_node(&mut path, node)?);
        }
        referenced.append(&mut it.referenced);
    }
    for (segs, v) in targets.iter().zip(results) {
        *get_segs_mut(&mut root, segs).expect("collected from this tree") = v;
    }
    Ok(root)
}

/// Key paths of every string holding `${`, in document order. The walk borrows keys and
/// copies a path only for the strings it finds.
fn find_interpolated<'v>(v: &'v Value, path: &mut Vec<(Option<&'v str>, usize)>, out: &mut Vec<Vec<Seg>>) {
    match &v.kind {
        Kind::Str(s) if has_interp(s) => out.push(
            path.iter()
                .map(|(k, i)| match k {
                    Some(k) => Seg::Key((*k).to_string()),
                    None => Seg::Index(*i),
                })
                .collect(),
        ),
        Kind::Map(m) => {
            for (k, child) in m {
                path.push((Some(k.as_str()), 0));
                find_interpolated(child, path, out);
                path.pop();
            }
        }
        Kind::List(items) | Kind::Tuple(items) => {
            for (i, child) in items.iter().enumerate() {
                path.push((None, i));
                find_interpolated(child, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

fn get_segs<'v>(mut v: &'v Value, segs: &[Seg]) -> Option<&'v Value> {
    for s in segs {
        v = match (&v.kind, s) {
            (Kind::Map(m), Seg::Key(k)) => m.get(k)?,
            (Kind::List(l) | Kind::Tuple(l), Seg::Index(i)) => l.get(*i)?,
            _ => return None,
        };
    }
    Some(v)
}

fn get_segs_mut<'v>(mut v: &'v mut Value, segs: &[Seg]) -> Option<&'v mut Value> {
    for s in segs {
        v = match (&mut v.kind, s) {
            (Kind::Map(m), Seg::Key(k)) => m.get_mut(k)?,
            (Kind::List(l) | Kind::Tuple(l), Seg::Index(i)) => l.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(v)
}

/// Whether `s` holds something [`interpolate`] would act on.
fn has_interp(s: &str) -> bool {
    s.contains("${")
}

enum Piece<'s> {
    Text(std::borrow::Cow<'s, str>),
    Ref(&'s str),
}

/// Split `s` into literal text and `${...}` bodies.
fn pieces(s: &str) -> std::result::Result<Vec<Piece<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = s;
    let mut text = String::new();
    while let Some(i) = rest.find("${") {
        if rest[..i].ends_with('\\') {
            text.push_str(&rest[..i - 1]);
            text.push_str("${");
            rest = &rest[i + 2..];
            continue;
        }
        text.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(end) = after.find('}') else {
            return Err(format!("unterminated '${{' in '{s}'"));
        };
        let body = &after[..end];
        if body.contains("${") {
            return Err(format!("nested '${{' inside a reference is not supported: '{s}'"));
        }
        if !text.is_empty() {
            out.push(Piece::Text(std::mem::take(&mut text).into()));
        }
        out.push(Piece::Ref(body));
        rest = &after[end + 1..];
    }
    text.push_str(rest);
    if !text.is_empty() {
        out.push(Piece::Text(text.into()));
    }
    Ok(out)
}

struct Interpolator<'a> {
    root: &'a Value,
    sources: Option<&'a Sources>,
    /// Resolved strings by path, so each reference is resolved once.
    cache: HashMap<String, Value>,
    /// Strings being resolved, outermost first: resolving a path that is or contains one of
    /// them is a cycle.
    in_progress: Vec<String>,
    referenced: BTreeSet<String>,
}

fn child_path(path: &str, seg: &str) -> String {
    if path.is_empty() { seg.to_string() } else { format!("{path}.{seg}") }
}

/// Append `.seg` (or `seg` at the root) to `path`; returns the length to truncate back to.
fn push_seg(path: &mut String, seg: &str) -> usize {
    let len = path.len();
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(seg);
    len
}

/// Whether dotted path `p` is `target` or lies below it.
fn is_within(p: &str, target: &str) -> bool {
    target.is_empty() || (p.starts_with(target) && (p.len() == target.len() || p.as_bytes()[target.len()] == b'.'))
}

impl<'a> Interpolator<'a> {
    fn error(&self, msg: String, path: &str, origin: Origin) -> ConfigError {
        let e = ConfigError::new(msg).key(path);
        match self.sources {
            Some(s) => e.at_origin(origin, s),
            None => e,
        }
    }

    /// Deep-resolve `node`, found at `path` (a buffer: restored before returning).
    fn resolve_node(&mut self, path: &mut String, node: &'a Value) -> Result<Value> {
        match &node.kind {
            Kind::Str(s) if has_interp(s) => {
                if let Some(v) = self.cache.get(path.as_str()) {
                    return Ok(v.clone());
                }
                self.in_progress.push(path.clone());
                let v = self.resolve_string(s, node.origin, path);
                self.in_progress.pop();
                let v = v?;
                self.cache.insert(path.clone(), v.clone());
                Ok(v)
            }
            Kind::Map(m) => {
                let mut out = Map::with_capacity(m.len());
                for (k, v) in m {
                    let len = push_seg(path, k);
                    let r = self.resolve_node(path, v);
                    path.truncate(len);
                    out.insert(k.clone(), r?);
                }
                Ok(Value::at(Kind::Map(out), node.origin))
            }
            Kind::List(items) | Kind::Tuple(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, v) in items.iter().enumerate() {
                    let len = push_seg(path, &i.to_string());
                    let r = self.resolve_node(path, v);
                    path.truncate(len);
                    out.push(r?);
                }
                let kind = if matches!(node.kind, Kind::Tuple(_)) { Kind::Tuple(out) } else { Kind::List(out) };
                Ok(Value::at(kind, node.origin))
            }
            _ => Ok(node.clone()),
        }
    }

    fn resolve_string(&mut self, s: &str, origin: Origin, path: &str) -> Result<Value> {
        let parts = pieces(s).map_err(|m| self.error(m, path, origin).hint("write '\\${' for a literal '${'"))?;
        if let [Piece::Ref(body)] = parts.as_slice() {
            let mut v = self.resolve_ref(body, origin, path, true)?;
            v.set_origin_deep(origin);
            return Ok(v);
        }
        let mut out = String::new();
        for p in parts {
            match p {
                Piece::Text(t) => out.push_str(&t),
                Piece::Ref(body) => out.push_str(&self.resolve_ref(body, origin, path, false)?.to_embedded_string()),
            }
        }
        Ok(Value::at(Kind::Str(out), origin))
    }

    fn resolve_ref(&mut self, body: &str, origin: Origin, from: &str, whole: bool) -> Result<Value> {
        let body = body.trim();
        if let Some(spec) = body.strip_prefix("env:") {
            return env_value(spec, whole).map_err(|m| {
                self.error(m, from, origin)
                    .hint(format!("set the variable, or give a default: ${{env:{},default}}", spec.trim()))
            });
        }
        if body.is_empty() {
            return Err(self.error("empty reference '${}'".to_string(), from, origin));
        }
        self.referenced.insert(body.to_string());
        self.lookup(body, from, origin)
    }

    fn cycle_check(&self, target: &str, from: &str, origin: Origin) -> Result<()> {
        if let Some(pos) = self.in_progress.iter().position(|p| is_within(p, target)) {
            let mut chain: Vec<&str> = self.in_progress[pos..].iter().map(String::as_str).collect();
            chain.push(target);
            let chain: Vec<&str> = chain.into_iter().map(|p| if p.is_empty() { "<root>" } else { p }).collect();
            return Err(self
                .error(format!("reference cycle: {}", chain.join(" -> ")), from, origin)
                .hint("a value cannot refer to itself or to a map that contains it"));
        }
        Ok(())
    }

    fn lookup(&mut self, target: &str, from: &str, origin: Origin) -> Result<Value> {
        let segs: Vec<&str> = target.split('.').collect();
        let mut node: &'a Value = self.root;
        let mut walked = String::new();
        for (i, seg) in segs.iter().enumerate() {
            if let Kind::Str(s) = &node.kind
                && has_interp(s)
            {
                // The path runs through a string that is itself a reference: resolve it first.
                self.cycle_check(&walked, from, origin)?;
                let resolved = self.resolve_node(&mut walked, node)?;
                let rest = segs[i..].join(".");
                return match resolved.get_path(&rest) {
                    Some(v) => Ok(v.clone()),
                    None => Err(self.not_found(target, &walked, seg, &resolved, from, origin)),
                };
            }
            match node.child(seg) {
                Some(next) => node = next,
                None => return Err(self.not_found(target, &walked, seg, node, from, origin)),
            }
            walked = child_path(&walked, seg);
        }
        self.cycle_check(&walked, from, origin)?;
        self.resolve_node(&mut walked, node)
    }

    fn not_found(
        &self,
        target: &str,
        walked: &str,
        seg: &str,
        node: &Value,
        from: &str,
        origin: Origin,
    ) -> ConfigError {
        let at = if walked.is_empty() { "the top level".to_string() } else { format!("'{walked}'") };
        let msg = match &node.kind {
            Kind::Map(_) => format!("reference '${{{target}}}' not found: {at} has no key '{seg}'"),
            Kind::List(l) | Kind::Tuple(l) => format!(
                "reference '${{{target}}}' not found: {at} is a {} of {} items, '{seg}' is not an index into it",
                node.type_name(),
                l.len()
            ),
            _ => format!("reference '${{{target}}}' not found: {at} is a {}", node.type_name()),
        };
        let mut e = self.error(msg, from, origin);
        if let Kind::Map(m) = &node.kind
            && let Some(h) = did_you_mean(seg, m.keys().map(String::as_str))
        {
            e = e.hint(h);
        }
        e
    }
}

/// `NAME` or `NAME,default` (env interpolation). `whole` types the result as a plain scalar.
fn env_value(spec: &str, whole: bool) -> std::result::Result<Value, String> {
    let (name, default) = match spec.split_once(',') {
        Some((n, d)) => (n.trim(), Some(d.trim())),
        None => (spec.trim(), None),
    };
    env_lookup(name, default, whole)
}

fn env_lookup(name: &str, default: Option<&str>, whole: bool) -> std::result::Result<Value, String> {
    if name.is_empty() {
        return Err("empty environment variable name".to_string());
    }
    let text = match (std::env::var(name), default) {
        (Ok(v), _) => v,
        (Err(_), Some(d)) => d.to_string(),
        (Err(_), None) => return Err(format!("environment variable '{name}' is not set")),
    };
    if whole
        && !text.is_empty()
        && let Ok(kind) = resolve_plain(&text)
    {
        return Ok(Value::new(kind));
    }
    Ok(Value::str(text))
}

/// Substitute MMEngine's `{{_base_.a.b}}` (a value of the merged bases) and
/// `{{$NAME:default}}` (environment) in a file's own tree before it is merged onto its bases.
/// Other `{{...}}` text is left alone; `\{{` is a literal `{{` (one backslash is removed).
pub fn substitute_mmengine(
    node: &mut Value,
    base: Option<&Value>,
    sources: &Sources,
    referenced: &mut BTreeSet<String>,
    path: &mut Vec<String>,
) -> Result<()> {
    match &mut node.kind {
        Kind::Str(s) if s.contains("{{") => {
            let s = std::mem::take(s);
            let origin = node.origin;
            match substitute_str(&s, base, referenced) {
                Ok(mut v) => {
                    v.set_origin_deep(origin);
                    *node = v;
                    Ok(())
                }
                Err((msg, hint)) => {
                    let mut e = ConfigError::new(msg).key(path.join(".")).at_origin(origin, sources);
                    if let Some(h) = hint {
                        e = e.hint(h);
                    }
                    Err(e)
                }
            }
        }
        Kind::Map(m) => {
            for (k, v) in m.iter_mut() {
                path.push(k.clone());
                let r = substitute_mmengine(v, base, sources, referenced, path);
                path.pop();
                r?;
            }
            Ok(())
        }
        Kind::List(items) | Kind::Tuple(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                path.push(i.to_string());
                let r = substitute_mmengine(v, base, sources, referenced, path);
                path.pop();
                r?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

type SubstError = (String, Option<String>);

fn substitute_str(
    s: &str,
    base: Option<&Value>,
    referenced: &mut BTreeSet<String>,
) -> std::result::Result<Value, SubstError> {
    if let Some(inner) = s.strip_prefix("{{").and_then(|r| r.strip_suffix("}}"))
        && !inner.contains("{{")
        && !inner.contains("}}")
    {
        return Ok(placeholder(inner.trim(), base, referenced, true)?.unwrap_or_else(|| Value::str(s)));
    }
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("{{") {
        if rest[..i].ends_with('\\') {
            // `\{{` is a literal `{{` (what a config dump writes for one)
            out.push_str(&rest[..i - 1]);
            out.push_str("{{");
            rest = &rest[i + 2..];
            continue;
        }
        let Some(end) = rest[i + 2..].find("}}") else { break };
        let inner = rest[i + 2..i + 2 + end].trim();
        let close = i + 4 + end;
        match placeholder(inner, base, referenced, false)? {
            Some(v) => {
                out.push_str(&rest[..i]);
                out.push_str(&v.to_embedded_string());
            }
            None => out.push_str(&rest[..close]),
        }
        rest = &rest[close..];
    }
    out.push_str(rest);
    Ok(Value::str(out))
}

/// The value of one `{{...}}` body, or `None` when it is not an MMEngine placeholder.
fn placeholder(
    inner: &str,
    base: Option<&Value>,
    referenced: &mut BTreeSet<String>,
    whole: bool,
) -> std::result::Result<Option<Value>, SubstError> {
    if let Some(key) = inner.strip_prefix("_base_.") {
        let Some(base) = base else {
            return Err((
                format!("'{{{{{inner}}}}}' refers to _base_, but this file has no _base_"),
                Some("add the file that defines it to _base_, or use ${...} to refer to the merged config".into()),
            ));
        };
        referenced.insert(key.to_string());
        return match base.get_path(key) {
            Some(v) => Ok(Some(v.clone())),
            None => {
                let first = key.split('.').next().unwrap_or(key);
                let hint = base.as_map().and_then(|m| did_you_mean(first, m.keys().map(String::as_str)));
                Err((format!("'{{{{{inner}}}}}' not found in the base configs"), hint))
            }
        };
    }
    if let Some(spec) = inner.strip_prefix('$') {
        let (name, default) = match spec.split_once(':') {
            Some((n, d)) => (n.trim(), Some(d.trim())),
            None => (spec.trim(), None),
        };
        return env_lookup(name, default, whole)
            .map(Some)
            .map_err(|m| (m, Some(format!("set the variable, or give a default: {{{{${name}:default}}}}"))));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse::parse_yaml_str;

    fn y(s: &str) -> Value {
        parse_yaml_str(s, "t.yaml").unwrap()
    }

    fn interp(s: &str) -> Result<(Value, BTreeSet<String>)> {
        let mut refs = BTreeSet::new();
        let mut src = Sources::new();
        src.add_file("t.yaml");
        interpolate(y(s), Some(&src), &mut refs).map(|v| (v, refs))
    }

    #[test]
    fn whole_references_keep_type() {
        let (v, refs) = interp("n: 3\nf: 0.5\nm: {a: [1, 2]}\nx: ${n}\ny: ${m}\nz: ${f}\nw: ${m.a.1}\n").unwrap();
        assert_eq!(v.get_path("x").unwrap().kind, Kind::Int(3));
        assert_eq!(*v.get_path("y").unwrap(), y("{a: [1, 2]}"));
        assert_eq!(v.get_path("z").unwrap().kind, Kind::Float(0.5));
        assert_eq!(v.get_path("w").unwrap().kind, Kind::Int(2));
        assert_eq!(refs.into_iter().collect::<Vec<_>>(), ["f", "m", "m.a.1", "n"]);
    }

    #[test]
    fn embedded_references_are_stringified() {
        let (v, _) = interp(
            "root: /data\nn: 3\nf: 1.0e-5\nb: true\nl: [1, a]\np: ${root}/coco_${n}_${f}_${b}_${l}\nesc: \\${root}\n",
        )
        .unwrap();
        assert_eq!(v.get_path("p").unwrap().kind, Kind::Str("/data/coco_3_1e-05_True_[1, a]".into()));
        assert_eq!(v.get_path("esc").unwrap().kind, Kind::Str("${root}".into()));
    }

    #[test]
    fn chained_and_nested_references() {
        let (v, _) = interp("a: ${b.c}\nb: ${d}\nd: {c: '${e}'}\ne: 7\n").unwrap();
        assert_eq!(v.get_path("a").unwrap().kind, Kind::Int(7));
        assert_eq!(*v.get_path("b").unwrap(), y("{c: 7}"));
        let (v, _) = interp("m: {x: 1, y: '${m.x}'}\n").unwrap();
        assert_eq!(v.get_path("m.y").unwrap().kind, Kind::Int(1));
    }

    #[test]
    fn env_with_and_without_default() {
        // SAFETY (test only): names unique to this test.
        unsafe {
            std::env::set_var("KILN_TEST_EPOCHS", "12");
            std::env::set_var("KILN_TEST_ROOT", "/mnt/d");
        }
        let (v, _) = interp("a: ${env:KILN_TEST_EPOCHS}\nb: ${env:KILN_TEST_UNSET_XYZ, 0.5}\nc: ${env:KILN_TEST_ROOT}/x\nd: ${env:KILN_TEST_UNSET_XYZ,abc}\n").unwrap();
        assert_eq!(v.get_path("a").unwrap().kind, Kind::Int(12));
        assert_eq!(v.get_path("b").unwrap().kind, Kind::Float(0.5));
        assert_eq!(v.get_path("c").unwrap().kind, Kind::Str("/mnt/d/x".into()));
        assert_eq!(v.get_path("d").unwrap().kind, Kind::Str("abc".into()));
        let e = interp("a:\n  b: ${env:KILN_TEST_UNSET_XYZ}\n").unwrap_err();
        assert!(e.message.contains("'KILN_TEST_UNSET_XYZ' is not set"), "{e}");
        assert_eq!(e.key_path.as_deref(), Some("a.b"));
        assert_eq!(e.line, Some(2));
    }

    #[test]
    fn missing_reference_names_the_referencing_key() {
        let e = interp("model:\n  num_classes: ${num_clases}\nnum_classes: 3\n").unwrap_err();
        assert!(e.message.contains("'${num_clases}' not found"), "{e}");
        assert_eq!(e.key_path.as_deref(), Some("model.num_classes"));
        assert_eq!((e.file.as_deref(), e.line, e.col), (Some("t.yaml"), Some(2), Some(3)));
        assert!(e.hint.unwrap().contains("num_classes"));
        let e = interp("l: [1]\nx: ${l.3}\n").unwrap_err();
        assert!(e.message.contains("list of 1 items"), "{e}");
    }

    #[test]
    fn cycles_are_errors_with_the_chain() {
        let e = interp("x: ${y}\ny: ${x}\n").unwrap_err();
        assert!(e.message.contains("reference cycle: x -> y -> x"), "{e}");
        assert_eq!(e.key_path.as_deref(), Some("y"));
        let e = interp("a: {b: '${a}'}\n").unwrap_err();
        assert!(e.message.contains("reference cycle: a.b -> a"), "{e}");
        let e = interp("a: ${a}\n").unwrap_err();
        assert!(e.message.contains("cycle"), "{e}");
    }

    #[test]
    fn malformed_references() {
        assert!(interp("a: ${b\n").unwrap_err().message.contains("unterminated"));
        assert!(interp("a: ${}\n").unwrap_err().message.contains("empty reference"));
    }

    #[test]
    fn mmengine_forms() {
        let base = y("num_classes: 80\nroot: /d\nm: {k: [1]}\n");
        let mut child = y(
            "a: '{{_base_.num_classes}}'\nb: '{{ _base_.root }}/x'\nc: '{{_base_.m}}'\nd: '{{$KILN_TEST_UNSET_MM:4}}'\ne: '{{not_ours}}'\n",
        );
        let mut refs = BTreeSet::new();
        substitute_mmengine(&mut child, Some(&base), &Sources::new(), &mut refs, &mut Vec::new()).unwrap();
        assert_eq!(child, y("a: 80\nb: /d/x\nc: {k: [1]}\nd: 4\ne: '{{not_ours}}'\n"));
        assert!(refs.contains("num_classes") && refs.contains("root"));
        let mut bad = y("a: '{{_base_.nope}}'\n");
        let e = substitute_mmengine(&mut bad, Some(&base), &Sources::new(), &mut refs, &mut Vec::new()).unwrap_err();
        assert!(e.message.contains("not found in the base configs"), "{e}");
        assert_eq!(e.key_path.as_deref(), Some("a"));
        let mut nobase = y("a: '{{_base_.x}}'\n");
        assert!(substitute_mmengine(&mut nobase, None, &Sources::new(), &mut refs, &mut Vec::new()).is_err());
    }
}
