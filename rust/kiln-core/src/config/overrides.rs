//! Command-line overrides (`--cfg-options`):
//!
//! - `a.b.c=value` sets an existing key (list items by index: `param_scheduler.1.milestones=[16,22]`);
//! - `+a.b=value` sets a key, creating it and any missing maps on the way;
//! - `~a.b` deletes a key or list item.
//!
//! Values are YAML flow text: `3`, `0.1`, `true`, `null`, `[1, 2]`, `{a: 1}`, `abc`, `"3"`.
//! A bare comma list (`1,2`) is a list. Overrides are applied after merging and before
//! interpolation, so `${...}` references see overridden values.

use super::error::{ConfigError, Result, did_you_mean};
use super::parse::{MAX_DEPTH, SourceRef, yaml};
use super::provenance::Sources;
use super::value::{Kind, Origin, Value, list_index};

/// One parsed override.
#[derive(Clone, Debug, PartialEq)]
pub enum Override {
    Set { path: Vec<String>, value: Value, create: bool },
    Delete { path: Vec<String> },
}

fn syntax_error(text: &str, msg: &str) -> ConfigError {
    ConfigError::new(format!("bad override '{text}': {msg}"))
        .hint("write KEY=VALUE to set, +KEY=VALUE to add a new key, ~KEY to delete (KEY is dotted: a.b.0.c)")
}

/// Parse one override as written on the command line.
pub fn parse_override(text: &str) -> Result<Override> {
    let t = text.trim();
    if let Some(rest) = t.strip_prefix('~') {
        if rest.contains('=') {
            return Err(syntax_error(text, "'~KEY' deletes and takes no value"));
        }
        return Ok(Override::Delete { path: parse_key(rest, text)? });
    }
    let (create, rest) = match t.strip_prefix('+') {
        Some(r) => (true, r),
        None => (false, t),
    };
    let Some((key, value)) = rest.split_once('=') else {
        return Err(syntax_error(text, "expected KEY=VALUE"));
    };
    let path = parse_key(key.trim(), text)?;
    let value = parse_value(value.trim()).map_err(|m| syntax_error(text, &m))?;
    if path.len() + depth(&value) > MAX_DEPTH {
        return Err(syntax_error(text, &format!("the key and value nest deeper than {MAX_DEPTH} levels")));
    }
    Ok(Override::Set { path, value, create })
}

fn parse_key(key: &str, text: &str) -> Result<Vec<String>> {
    if key.is_empty() {
        return Err(syntax_error(text, "the key is empty"));
    }
    // The tree is walked recursively (conversion to Python, drop): a path is capped like
    // the nesting of a parsed file, before any segment is allocated.
    if key.split('.').nth(MAX_DEPTH).is_some() {
        return Err(syntax_error(text, &format!("the key has more than {MAX_DEPTH} segments")));
    }
    let segs: Vec<String> = key.split('.').map(str::to_string).collect();
    if segs.iter().any(|s| s.is_empty() || s.chars().any(char::is_whitespace)) {
        return Err(syntax_error(text, "the key must be dotted names without spaces, e.g. a.b.0.c"));
    }
    Ok(segs)
}

/// Levels of collections in `v` (a scalar is 0); `v` comes from a depth-capped parse.
fn depth(v: &Value) -> usize {
    match &v.kind {
        Kind::List(items) | Kind::Tuple(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Kind::Map(m) => 1 + m.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Type an override value: YAML flow syntax, a bare comma list is a list, and text that is
/// not valid YAML but does not look like a collection or quoted string is taken verbatim.
pub fn parse_value(text: &str) -> std::result::Result<Value, String> {
    if text.is_empty() {
        return Ok(Value::str(""));
    }
    let wrapped = format!("[{text}]");
    match yaml::parse(&wrapped, SourceRef { id: 0, name: "<override>" }) {
        Ok(Value { kind: Kind::List(mut items), .. }) => {
            let mut v = if items.len() == 1 { items.pop().expect("one item") } else { Value::new(Kind::List(items)) };
            v.set_origin_deep(Origin::Unknown);
            Ok(v)
        }
        Ok(_) => Err("could not read the value".to_string()),
        Err(e) if text.starts_with(['[', '{', '"', '\'']) => {
            Err(format!("the value is not valid YAML ({})", e.message))
        }
        Err(_) => Ok(Value::str(text)),
    }
}

/// Apply overrides in order; each leaf they set is attributed to its override in `sources`.
pub fn apply_overrides(root: &mut Value, overrides: &[String], sources: &mut Sources) -> Result<()> {
    for text in overrides {
        let op = parse_override(text)?;
        let id = sources.add_override(text.trim());
        apply_one(root, op, Origin::Override(id)).map_err(|e| {
            let msg = format!("override '{}': {}", text.trim(), e.message);
            ConfigError { message: msg, ..e }
        })?;
    }
    Ok(())
}

/// Apply one parsed override.
pub fn apply_one(root: &mut Value, op: Override, origin: Origin) -> Result<()> {
    let (path, create) = match &op {
        Override::Set { path, create, .. } => (path.clone(), *create),
        Override::Delete { path } => (path.clone(), false),
    };
    let (last, parents) = path.split_last().expect("keys have at least one segment");
    let mut node = root;
    for (depth, seg) in parents.iter().enumerate() {
        let here = &path[..depth];
        node = step(node, seg, here, create)?;
    }
    let parent_path = &path[..path.len() - 1];
    match op {
        Override::Set { mut value, .. } => {
            value.set_origin_deep(origin);
            set_child(node, last, value, parent_path, create)
        }
        Override::Delete { .. } => delete_child(node, last, parent_path),
    }
}

fn joined(path: &[String]) -> String {
    path.join(".")
}

fn joined_with(path: &[String], seg: &str) -> String {
    if path.is_empty() { seg.to_string() } else { format!("{}.{seg}", joined(path)) }
}

fn missing_key(map: &super::value::Map, seg: &str, path: &[String], can_add: bool) -> ConfigError {
    let full = joined_with(path, seg);
    let mut hint = did_you_mean(seg, map.keys().map(String::as_str)).unwrap_or_default();
    if can_add {
        if !hint.is_empty() {
            hint.push(' ');
        }
        hint.push_str(&format!("To add a new key write '+{full}=...'."));
    }
    let where_ = if path.is_empty() { "at the top level".to_string() } else { format!("in '{}'", joined(path)) };
    ConfigError::new(format!("key '{seg}' does not exist {where_}")).key(full).hint(hint)
}

fn bad_index(seg: &str, len: usize, path: &[String]) -> ConfigError {
    let full = joined_with(path, seg);
    match seg.parse::<i64>() {
        Ok(_) => {
            ConfigError::new(format!("index {seg} is out of range for '{}' (a list of {len} items)", joined(path)))
                .key(full)
                .hint(format!("valid indices are 0..{}", len.saturating_sub(1)))
        }
        Err(_) => ConfigError::new(format!("'{}' is a list; expected an index, got '{seg}'", joined(path))).key(full),
    }
}

fn not_a_container(node: &Value, seg: &str, path: &[String]) -> ConfigError {
    ConfigError::new(format!("cannot go into '{}': it is a {}, not a map or list", joined(path), node.type_name()))
        .key(joined_with(path, seg))
        .hint(format!("set the whole value instead: {}={{...}}", joined(path)))
}

fn step<'a>(node: &'a mut Value, seg: &str, path: &[String], create: bool) -> Result<&'a mut Value> {
    if !matches!(node.kind, Kind::Map(_) | Kind::List(_) | Kind::Tuple(_)) {
        return Err(not_a_container(node, seg, path));
    }
    match &mut node.kind {
        Kind::Map(m) => {
            if !m.contains_key(seg) {
                if !create {
                    return Err(missing_key(m, seg, path, true));
                }
                m.insert(seg.to_string(), Value::empty_map());
            }
            Ok(m.get_mut(seg).expect("present"))
        }
        Kind::List(items) | Kind::Tuple(items) => {
            let len = items.len();
            match list_index(seg, len) {
                Some(i) => Ok(&mut items[i]),
                None => Err(bad_index(seg, len, path)),
            }
        }
        _ => unreachable!("checked above"),
    }
}

fn set_child(node: &mut Value, seg: &str, value: Value, path: &[String], create: bool) -> Result<()> {
    match &mut node.kind {
        Kind::Map(m) => {
            match m.get_mut(seg) {
                Some(slot) => *slot = value,
                None if create => {
                    m.insert(seg.to_string(), value);
                }
                None => return Err(missing_key(m, seg, path, true)),
            }
            Ok(())
        }
        Kind::List(items) | Kind::Tuple(items) => {
            let len = items.len();
            match list_index(seg, len) {
                Some(i) => items[i] = value,
                None if create && seg.parse::<usize>().ok() == Some(len) => items.push(value),
                None => return Err(bad_index(seg, len, path)),
            }
            Ok(())
        }
        _ => Err(not_a_container(node, seg, path)),
    }
}

fn delete_child(node: &mut Value, seg: &str, path: &[String]) -> Result<()> {
    match &mut node.kind {
        Kind::Map(m) => match m.shift_remove(seg) {
            Some(_) => Ok(()),
            None => Err(missing_key(m, seg, path, false)),
        },
        Kind::List(items) | Kind::Tuple(items) => {
            let len = items.len();
            match list_index(seg, len) {
                Some(i) => {
                    items.remove(i);
                    Ok(())
                }
                None => Err(bad_index(seg, len, path)),
            }
        }
        _ => Err(not_a_container(node, seg, path)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse::parse_yaml_str;

    fn y(s: &str) -> Value {
        parse_yaml_str(s, "t.yaml").unwrap()
    }

    fn apply(root: &mut Value, ovs: &[&str]) -> Result<Sources> {
        let mut s = Sources::new();
        let ovs: Vec<String> = ovs.iter().map(|s| s.to_string()).collect();
        apply_overrides(root, &ovs, &mut s)?;
        Ok(s)
    }

    #[test]
    fn deep_override_paths_are_rejected_not_a_stack_overflow() {
        let long = vec!["b"; 20_000].join(".");
        for text in [format!("+{long}=1"), format!("~{long}"), format!("{long}=1")] {
            let e = parse_override(&text).unwrap_err();
            assert!(e.message.contains("more than 256 segments"), "{}", e.message);
        }
        let mut root = y("a: 1\n");
        let e = apply(&mut root, &[&format!("+{long}=1")]).unwrap_err();
        assert!(e.message.contains("more than 256 segments"));
        // at the limit it still works, and key + value together are capped too
        let ok = vec!["b"; 256].join(".");
        assert!(parse_override(&format!("+{ok}=1")).is_ok());
        let e = parse_override(&format!("+{ok}=[1]")).unwrap_err();
        assert!(e.message.contains("nest deeper than 256 levels"), "{}", e.message);
        let deep_value = format!("+a={}1{}", "[".repeat(200), "]".repeat(200));
        assert!(parse_override(&deep_value).is_ok());
        let e = parse_override(&format!("+{}={}1{}", vec!["k"; 100].join("."), "[".repeat(200), "]".repeat(200)))
            .unwrap_err();
        assert!(e.message.contains("nest deeper"));
    }

    const CFG: &str = "train_cfg: {max_epochs: 12, val_interval: 1}\nparam_scheduler:\n  - {type: LinearLR, end: 500}\n  - {type: MultiStepLR, milestones: [8, 11]}\nname: x\n";

    #[test]
    fn value_typing() {
        let cases = [
            ("3", Kind::Int(3)),
            ("0.1", Kind::Float(0.1)),
            ("true", Kind::Bool(true)),
            ("null", Kind::Null),
            ("abc", Kind::Str("abc".into())),
            ("'3'", Kind::Str("3".into())),
            ("", Kind::Str("".into())),
            ("/data/coco/", Kind::Str("/data/coco/".into())),
            ("a]b", Kind::Str("a]b".into())),
        ];
        for (text, want) in cases {
            assert_eq!(parse_value(text).unwrap().kind, want, "{text}");
        }
        assert_eq!(parse_value("[1,2]").unwrap(), y("[1, 2]"));
        assert_eq!(parse_value("1,2").unwrap(), y("[1, 2]"));
        assert_eq!(parse_value("{a: 1, b: [x]}").unwrap(), y("{a: 1, b: [x]}"));
        assert!(parse_value("[1, 2").is_err());
    }

    #[test]
    fn set_existing_with_list_index() {
        let mut c = y(CFG);
        let s = apply(&mut c, &["train_cfg.max_epochs=3", "param_scheduler.1.milestones=[16,22]", "name=y"]).unwrap();
        assert_eq!(c.get_path("train_cfg.max_epochs").unwrap().kind, Kind::Int(3));
        assert_eq!(*c.get_path("param_scheduler.1.milestones").unwrap(), y("[16, 22]"));
        assert_eq!(c.get_path("name").unwrap().kind, Kind::Str("y".into()));
        let o = c.get_path("param_scheduler.1.milestones.0").unwrap().origin;
        assert_eq!(s.describe(o).unwrap(), "--cfg-options param_scheduler.1.milestones=[16,22]");
    }

    #[test]
    fn unknown_key_suggests_and_plus_adds() {
        let mut c = y(CFG);
        let e = apply(&mut c, &["train_cfg.max_epoch=3"]).unwrap_err();
        assert!(e.message.contains("'max_epoch' does not exist"), "{e}");
        assert_eq!(e.key_path.as_deref(), Some("train_cfg.max_epoch"));
        let hint = e.hint.unwrap();
        assert!(hint.contains("did you mean 'max_epochs'"), "{hint}");
        assert!(hint.contains("+train_cfg.max_epoch="), "{hint}");
        apply(&mut c, &["+train_cfg.new.deep=1", "+extra=[1]"]).unwrap();
        assert_eq!(c.get_path("train_cfg.new.deep").unwrap().kind, Kind::Int(1));
        assert_eq!(*c.get_path("extra").unwrap(), y("[1]"));
    }

    #[test]
    fn delete_keys_and_items() {
        let mut c = y(CFG);
        apply(&mut c, &["~train_cfg.val_interval", "~param_scheduler.0"]).unwrap();
        assert_eq!(*c.get_path("train_cfg").unwrap(), y("{max_epochs: 12}"));
        assert_eq!(c.get_path("param_scheduler.0.type").unwrap().kind, Kind::Str("MultiStepLR".into()));
        let e = apply(&mut c, &["~train_cfg.nope"]).unwrap_err();
        assert!(e.message.contains("does not exist"), "{e}");
    }

    #[test]
    fn index_errors() {
        let mut c = y(CFG);
        let e = apply(&mut c, &["param_scheduler.5.end=1"]).unwrap_err();
        assert!(e.message.contains("out of range"), "{e}");
        assert!(e.message.contains("2 items"), "{e}");
        let e = apply(&mut c, &["param_scheduler.x.end=1"]).unwrap_err();
        assert!(e.message.contains("expected an index"), "{e}");
        let e = apply(&mut c, &["name.x=1"]).unwrap_err();
        assert!(e.message.contains("it is a string"), "{e}");
        apply(&mut c, &["+param_scheduler.2={type: X}"]).unwrap();
        assert_eq!(c.get_path("param_scheduler.2.type").unwrap().kind, Kind::Str("X".into()));
    }

    #[test]
    fn bad_syntax() {
        for bad in ["novalue", "=3", "a..b=1", "~a=1", "a b=1", "a=[1, 2"] {
            let e = parse_override(bad).unwrap_err();
            assert!(e.message.starts_with("bad override"), "{bad}: {e}");
            assert!(e.hint.is_some());
        }
    }
}
