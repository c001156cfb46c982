//! Deterministic YAML writer: block style, keys in insertion order, two-space indents, strings
//! quoted whenever a YAML reader (1.2 or 1.1) could read them as anything but that string, so
//! reading the dump back gives the same tree.
//!
//! Tuples are written in flow style with PyYAML's tag, `!!python/tuple [1, 2]`, which the
//! loader reads back as a tuple.
//!
//! [`dump_yaml`] writes plain data. A config dump ([`dump_config_yaml`]) must also survive the
//! loader's own string syntax: it writes `\${` for a literal `${` and `\{{` for a literal `{{`,
//! so interpolation and MMEngine placeholders leave the reloaded strings as they were.

use std::borrow::Cow;
use std::fmt::Write as _;

use super::parse::scalar::plain_is_safe;
use super::value::{Kind, Map, Value, float_repr};

/// Dump `v` as a block-style YAML document (ending in a newline).
pub fn dump_yaml(v: &Value) -> String {
    dump_with(v, false)
}

/// Dump a config tree as YAML that loads back to the same tree: like [`dump_yaml`], with
/// every string value escaped by [`escape_refs`] (keys are never interpolated and are kept).
pub fn dump_config_yaml(v: &Value) -> String {
    dump_with(v, true)
}

/// `s` with a backslash before every `${` and every `{{`, the loader's escapes for literal
/// text; the loader removes exactly one backslash before each, so this round-trips any string.
pub fn escape_refs(s: &str) -> Cow<'_, str> {
    if !s.contains("${") && !s.contains("{{") {
        return Cow::Borrowed(s);
    }
    Cow::Owned(s.replace("${", "\\${").replace("{{", "\\{{"))
}

fn dump_with(v: &Value, esc: bool) -> String {
    let mut out = String::new();
    match &v.kind {
        Kind::Map(m) if !m.is_empty() => write_map(&mut out, m, 0, false, esc),
        Kind::List(l) if !l.is_empty() => write_list(&mut out, l, 0, false, esc),
        _ => {
            write_inline(&mut out, v, esc);
            out.push('\n');
        }
    }
    out
}

fn indent(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

/// Write the entries of `m` at `ind` spaces; with `inline_first` the first entry continues
/// the current line (after `- `).
fn write_map(out: &mut String, m: &Map, ind: usize, inline_first: bool, esc: bool) {
    for (i, (k, v)) in m.iter().enumerate() {
        if i > 0 || !inline_first {
            indent(out, ind);
        }
        write_str(out, k);
        out.push(':');
        write_block_value(out, v, ind, esc);
    }
}

fn write_list(out: &mut String, l: &[Value], ind: usize, inline_first: bool, esc: bool) {
    for (i, v) in l.iter().enumerate() {
        if i > 0 || !inline_first {
            indent(out, ind);
        }
        out.push_str("- ");
        match &v.kind {
            Kind::Map(m) if !m.is_empty() => write_map(out, m, ind + 2, true, esc),
            Kind::List(items) if !items.is_empty() => write_list(out, items, ind + 2, true, esc),
            _ => {
                write_inline(out, v, esc);
                out.push('\n');
            }
        }
    }
}

/// The value after `key:`; nested collections go on the following lines.
fn write_block_value(out: &mut String, v: &Value, ind: usize, esc: bool) {
    match &v.kind {
        Kind::Map(m) if !m.is_empty() => {
            out.push('\n');
            write_map(out, m, ind + 2, false, esc);
        }
        Kind::List(l) if !l.is_empty() => {
            out.push('\n');
            write_list(out, l, ind + 2, false, esc);
        }
        _ => {
            out.push(' ');
            write_inline(out, v, esc);
            out.push('\n');
        }
    }
}

/// A scalar, or a collection in flow style.
fn write_inline(out: &mut String, v: &Value, esc: bool) {
    match &v.kind {
        Kind::Null => out.push_str("null"),
        Kind::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Kind::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Kind::Float(f) => out.push_str(&yaml_float(*f)),
        Kind::Str(s) if esc => write_str(out, &escape_refs(s)),
        Kind::Str(s) => write_str(out, s),
        Kind::List(_) | Kind::Tuple(_) | Kind::Map(_) => write_flow_with(out, v, esc),
    }
}

/// YAML flow style: `[1, a]`, `{a: 1, b: [x]}`.
pub fn write_flow(out: &mut String, v: &Value) {
    write_flow_with(out, v, false)
}

fn write_flow_with(out: &mut String, v: &Value, esc: bool) {
    match &v.kind {
        Kind::List(items) | Kind::Tuple(items) => {
            if matches!(v.kind, Kind::Tuple(_)) {
                out.push_str("!!python/tuple ");
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_flow_with(out, item, esc);
            }
            out.push(']');
        }
        Kind::Map(m) => {
            out.push('{');
            for (i, (k, item)) in m.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_str(out, k);
                out.push_str(": ");
                write_flow_with(out, item, esc);
            }
            out.push('}');
        }
        _ => write_inline(out, v, esc),
    }
}

/// A float both YAML 1.2 and 1.1 readers parse back exactly: `0.1`, `1.0e-05`, `.inf`.
fn yaml_float(f: f64) -> String {
    if f.is_nan() {
        return ".nan".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 { ".inf" } else { "-.inf" }.to_string();
    }
    let r = float_repr(f);
    match r.split_once('e') {
        Some((m, e)) if !m.contains('.') => format!("{m}.0e{e}"),
        _ => r,
    }
}

fn write_str(out: &mut String, s: &str) {
    if plain_is_safe(s) {
        out.push_str(s);
        return;
    }
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            '\u{85}' | '\u{a0}' | '\u{2028}' | '\u{2029}' | '\u{feff}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse::parse_yaml_str;

    fn y(s: &str) -> Value {
        parse_yaml_str(s, "t.yaml").unwrap()
    }

    #[test]
    fn block_layout() {
        let v = y(
            "model: {type: M, heads: [{type: H, n: 1}, {}], empty: []}\nlr: 1.0e-05\nnames: [a, '1', 'yes', null]\nnested: [[1, 2], [3]]\n",
        );
        let want = "\
model:
  type: M
  heads:
    - type: H
      n: 1
    - {}
  empty: []
lr: 1.0e-05
names:
  - a
  - \"1\"
  - \"yes\"
  - null
nested:
  - - 1
    - 2
  - - 3
";
        assert_eq!(dump_yaml(&v), want);
    }

    #[test]
    fn round_trip_is_a_fixed_point() {
        let src = "a: {b: [1, 2.5, -0.0, 1e300, .inf, -.inf]}\ns:\n  - ''\n  - ' lead'\n  - \"multi\\nline\\ttab\"\n  - 'quote \" and \\\\'\n  - 'a: b'\n  - '#x'\n  - 'true'\n  - '0x10'\n  - '1_000'\n  - 2001-01-01\n  - é ünïcode\n  - '~'\n  - 'null'\n  - '[x]'\n  - '{x}'\n  - '*a'\n  - '&a'\n  - '!t'\n  - '%p'\n  - '@x'\n  - '`x'\n  - '- x'\n  - '? x'\n  - '|'\n  - '>'\n'1': int-like key\n'key with: colon': 1\nnull_value: null\nbig: 9223372036854775807\n";
        let v = y(src);
        let d = dump_yaml(&v);
        let back = y(&d);
        assert_eq!(back, v, "dump was:\n{d}");
        assert_eq!(dump_yaml(&back), d);
    }

    #[test]
    fn tuples_round_trip_with_their_tag() {
        let v = y("t: !!python/tuple [1, [2, !!python/tuple []], {a: !!python/tuple [x]}]\nl: [!!python/tuple [3]]\n");
        let d = dump_yaml(&v);
        assert_eq!(
            d,
            "t: !!python/tuple [1, [2, !!python/tuple []], {a: !!python/tuple [x]}]\nl:\n  - !!python/tuple [3]\n"
        );
        assert_eq!(y(&d), v);
    }

    #[test]
    fn top_level_scalars_and_empty() {
        assert_eq!(dump_yaml(&Value::empty_map()), "{}\n");
        assert_eq!(dump_yaml(&Value::new(Kind::Int(3))), "3\n");
        assert_eq!(dump_yaml(&Value::null()), "null\n");
    }

    #[test]
    fn floats() {
        assert_eq!(yaml_float(0.1), "0.1");
        assert_eq!(yaml_float(1e-5), "1.0e-05");
        assert_eq!(yaml_float(2.5e20), "2.5e+20");
        assert_eq!(yaml_float(3.0), "3.0");
    }
}
