//! YAML reader: builds the value tree from marked parser events, so every node knows its
//! line and column and duplicate keys are caught where they occur.

use std::collections::HashMap;
use std::str::Chars;

use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::{Marker, ScanError, TScalarStyle};

use super::scalar::{resolve_plain, resolve_plain_owned};
use super::{MAX_DEPTH, SourceRef};
use crate::config::error::{ConfigError, Result};
use crate::config::value::{Kind, Map, Origin, Seg, Value, join_path};

const CORE_TAG: &str = "tag:yaml.org,2002:";

/// The tag of a sequence that is a tuple (`!!python/tuple [1, 2]`), as PyYAML writes it.
pub const TUPLE_TAG_SUFFIX: &str = "python/tuple";

fn is_tuple_tag(tag: Option<&Tag>) -> bool {
    tag.is_some_and(|t| t.handle == CORE_TAG && t.suffix == TUPLE_TAG_SUFFIX)
}

/// Parse one YAML document. An empty document is `null`; a second document is an error.
pub fn parse(text: &str, src: SourceRef<'_>) -> Result<Value> {
    let mut b = Builder { parser: Parser::new_from_str(text), src, anchors: HashMap::new(), path: Vec::new() };
    b.document()
}

struct Builder<'a> {
    parser: Parser<Chars<'a>>,
    src: SourceRef<'a>,
    anchors: HashMap<usize, Value>,
    /// Key path of the node being built, for error messages.
    path: Vec<Seg>,
}

impl Builder<'_> {
    fn document(&mut self) -> Result<Value> {
        let (ev, mark) = self.next()?;
        if ev != Event::StreamStart {
            return Err(self.err(mark, "expected the start of a YAML stream"));
        }
        let (ev, mark) = self.next()?;
        let value = match ev {
            Event::StreamEnd => return Ok(Value::at(Kind::Null, self.origin(mark))),
            Event::DocumentStart => {
                let (ev, mark) = self.next()?;
                let v = self.node(ev, mark, 0)?;
                let (ev, mark) = self.next()?;
                if ev != Event::DocumentEnd {
                    return Err(self.err(mark, "expected the end of the document"));
                }
                v
            }
            _ => return Err(self.err(mark, "expected a YAML document")),
        };
        let (ev, mark) = self.next()?;
        if ev != Event::StreamEnd {
            return Err(self
                .err(mark, "a config file must hold exactly one YAML document")
                .hint("remove the second document (after '---') or split it into its own file"));
        }
        Ok(value)
    }

    fn next(&mut self) -> Result<(Event, Marker)> {
        match self.parser.next_token() {
            Ok(x) => Ok(x),
            Err(e) => Err(scan_error(&e, self.src).key(self.key_path())),
        }
    }

    fn origin(&self, m: Marker) -> Origin {
        Origin::File { file: self.src.id, line: m.line() as u32, col: m.col() as u32 + 1 }
    }

    fn key_path(&self) -> String {
        join_path(&self.path)
    }

    fn err(&self, m: Marker, msg: impl Into<String>) -> ConfigError {
        ConfigError::new(msg).at(self.src.name, m.line() as u32, m.col() as u32 + 1).key(self.key_path())
    }

    fn node(&mut self, ev: Event, mark: Marker, depth: usize) -> Result<Value> {
        if depth > MAX_DEPTH {
            return Err(self.err(mark, format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        let (value, anchor) = match ev {
            Event::Scalar(text, style, anchor, tag) => {
                let kind = self.scalar(text, style, tag.as_ref(), mark)?;
                (Value::at(kind, self.origin(mark)), anchor)
            }
            Event::SequenceStart(anchor, tag) => {
                let tuple = is_tuple_tag(tag.as_ref());
                if !tuple {
                    self.check_collection_tag(tag.as_ref(), "seq", mark)?;
                }
                let mut items = Vec::new();
                loop {
                    let (ev, m) = self.next()?;
                    if ev == Event::SequenceEnd {
                        break;
                    }
                    self.path.push(Seg::Index(items.len()));
                    let item = self.node(ev, m, depth + 1)?;
                    self.path.pop();
                    items.push(item);
                }
                let kind = if tuple { Kind::Tuple(items) } else { Kind::List(items) };
                (Value::at(kind, self.origin(mark)), anchor)
            }
            Event::MappingStart(anchor, tag) => {
                self.check_collection_tag(tag.as_ref(), "map", mark)?;
                (self.mapping(mark, depth)?, anchor)
            }
            Event::Alias(id) => match self.anchors.get(&id) {
                Some(v) => (v.clone(), 0),
                None => return Err(self.err(mark, "alias to an unknown anchor")),
            },
            other => return Err(self.err(mark, format!("unexpected YAML event {other:?}"))),
        };
        if anchor > 0 {
            self.anchors.insert(anchor, value.clone());
        }
        Ok(value)
    }

    fn mapping(&mut self, mark: Marker, depth: usize) -> Result<Value> {
        let mut map = Map::new();
        // `<<: *anchor` merge keys (YAML 1.1, common in hand-written configs): explicit keys win.
        let mut merges: Vec<Map> = Vec::new();
        loop {
            let (ev, kmark) = self.next()?;
            let (key, merge_key) = match ev {
                Event::MappingEnd => break,
                Event::Scalar(k, style, anchor, _) => {
                    if anchor > 0 {
                        self.anchors.insert(anchor, Value::at(Kind::Str(k.clone()), self.origin(kmark)));
                    }
                    let merge = style == TScalarStyle::Plain && k == "<<";
                    (k, merge)
                }
                Event::Alias(id) => match self.anchors.get(&id).map(|v| &v.kind) {
                    Some(Kind::Str(s)) => (s.clone(), false),
                    _ => return Err(self.err(kmark, "only string anchors can be used as keys")),
                },
                _ => {
                    return Err(self
                        .err(kmark, "mapping keys must be plain strings")
                        .hint("lists and maps cannot be used as keys in a config"));
                }
            };
            if !merge_key && let Some(first) = map.get(&key) {
                let first_line = match first.origin {
                    Origin::File { line, .. } => format!(" (first defined at line {line})"),
                    _ => String::new(),
                };
                self.path.push(Seg::Key(key.clone()));
                let e = self
                    .err(kmark, format!("duplicate key '{key}'{first_line}"))
                    .hint("each key may appear once per mapping; remove or rename one of them");
                return Err(e);
            }
            // The key moves through the path stack instead of being copied.
            self.path.push(Seg::Key(key));
            let (vev, vmark) = self.next()?;
            let mut value = self.node(vev, vmark, depth + 1)?;
            let Some(Seg::Key(key)) = self.path.pop() else { unreachable!("pushed above") };
            if merge_key {
                match value.kind {
                    Kind::Map(m) => merges.push(m),
                    Kind::List(items) => {
                        for item in items {
                            match item.kind {
                                Kind::Map(m) => merges.push(m),
                                _ => return Err(self.err(vmark, "'<<' merges maps only")),
                            }
                        }
                    }
                    _ => return Err(self.err(vmark, "'<<' merges maps only")),
                }
                continue;
            }
            // A map entry is located at its key: that is where a reader looks for it.
            value.origin = self.origin(kmark);
            map.insert(key, value);
        }
        for m in merges {
            for (k, v) in m {
                map.entry(k).or_insert(v);
            }
        }
        Ok(Value::at(Kind::Map(map), self.origin(mark)))
    }

    fn scalar(&self, text: String, style: TScalarStyle, tag: Option<&Tag>, mark: Marker) -> Result<Kind> {
        let Some(tag) = tag else {
            return if style == TScalarStyle::Plain {
                resolve_plain_owned(text).map_err(|m| self.err(mark, m))
            } else {
                Ok(Kind::Str(text))
            };
        };
        if tag.handle != CORE_TAG {
            return Err(self.unsupported_tag(tag, mark));
        }
        let resolved = resolve_plain(&text).map_err(|m| self.err(mark, m))?;
        let kind = match (tag.suffix.as_str(), resolved) {
            ("str", _) => Kind::Str(text),
            ("int", k @ Kind::Int(_)) => k,
            ("float", k @ Kind::Float(_)) => k,
            ("float", Kind::Int(i)) => Kind::Float(i as f64),
            ("bool", k @ Kind::Bool(_)) => k,
            ("null", k @ Kind::Null) => k,
            ("int" | "float" | "bool" | "null", _) => {
                return Err(self.err(mark, format!("'{text}' is not a valid !!{}", tag.suffix)));
            }
            _ => return Err(self.unsupported_tag(tag, mark)),
        };
        Ok(kind)
    }

    fn check_collection_tag(&self, tag: Option<&Tag>, expected: &str, mark: Marker) -> Result<()> {
        match tag {
            None => Ok(()),
            Some(t) if t.handle == CORE_TAG && t.suffix == expected => Ok(()),
            Some(t) => Err(self.unsupported_tag(t, mark)),
        }
    }

    fn unsupported_tag(&self, tag: &Tag, mark: Marker) -> ConfigError {
        let shown =
            if tag.handle == CORE_TAG { format!("!!{}", tag.suffix) } else { format!("{}{}", tag.handle, tag.suffix) };
        self.err(mark, format!("unsupported YAML tag '{shown}'"))
            .hint("configs hold plain data: use lists instead of tuples and strings for anything else")
    }
}

fn scan_error(e: &ScanError, src: SourceRef<'_>) -> ConfigError {
    let m = e.marker();
    ConfigError::new(format!("invalid YAML: {}", e.info())).at(src.name, m.line() as u32, m.col() as u32 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<Value> {
        parse(text, SourceRef { id: 0, name: "t.yaml" })
    }

    #[test]
    fn types_order_and_positions() {
        let v = p("b: 1\na:\n  x: [1, 2.5, 'q', null, true]\n  y: \"3\"\n").unwrap();
        let m = v.as_map().unwrap();
        assert_eq!(m.keys().collect::<Vec<_>>(), ["b", "a"]);
        assert_eq!(v.get_path("b").unwrap().kind, Kind::Int(1));
        let x = v.get_path("a.x").unwrap();
        assert_eq!(
            x.kind,
            Kind::List(vec![
                Kind::Int(1).into(),
                Kind::Float(2.5).into(),
                Kind::Str("q".into()).into(),
                Kind::Null.into(),
                Kind::Bool(true).into()
            ])
        );
        assert_eq!(v.get_path("a.y").unwrap().kind, Kind::Str("3".into()));
        assert_eq!(v.get_path("a.y").unwrap().origin, Origin::File { file: 0, line: 4, col: 3 });
        assert_eq!(v.get_path("a.x.1").unwrap().origin, Origin::File { file: 0, line: 3, col: 10 });
    }

    #[test]
    fn duplicate_key_is_an_error_with_position() {
        let e = p("a: 1\nb:\n  c: 1\n  c: 2\n").unwrap_err();
        assert!(e.message.contains("duplicate key 'c'"), "{e}");
        assert!(e.message.contains("first defined at line 3"), "{e}");
        assert_eq!((e.file.as_deref(), e.line, e.col), (Some("t.yaml"), Some(4), Some(3)));
        assert_eq!(e.key_path.as_deref(), Some("b.c"));
    }

    #[test]
    fn malformed_yaml_reports_position() {
        let e = p("a: 1\nb: [1, 2\nc: 3\n").unwrap_err();
        assert!(e.message.starts_with("invalid YAML"), "{e}");
        assert_eq!(e.file.as_deref(), Some("t.yaml"));
        assert!(e.line.unwrap() >= 2, "{e}");
        let e = p("a: 1\n  b: 2\n").unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
    }

    #[test]
    fn empty_document_is_null_and_two_documents_fail() {
        assert_eq!(p("").unwrap().kind, Kind::Null);
        assert_eq!(p("# only a comment\n").unwrap().kind, Kind::Null);
        let e = p("a: 1\n---\nb: 2\n").unwrap_err();
        assert!(e.message.contains("exactly one"), "{e}");
    }

    #[test]
    fn anchors_aliases_and_merge_keys() {
        let v = p("base: &b {x: 1, y: 2}\nc:\n  <<: *b\n  y: 3\nd: *b\n").unwrap();
        assert_eq!(v.get_path("c.x").unwrap().kind, Kind::Int(1));
        assert_eq!(v.get_path("c.y").unwrap().kind, Kind::Int(3));
        assert_eq!(v.get_path("d.y").unwrap().kind, Kind::Int(2));
    }

    #[test]
    fn tags() {
        let v = p("a: !!str 12\nb: !!float 3\n").unwrap();
        assert_eq!(v.get_path("a").unwrap().kind, Kind::Str("12".into()));
        assert_eq!(v.get_path("b").unwrap().kind, Kind::Float(3.0));
        let t = p("a: !!python/tuple [1, [2, !!python/tuple []]]\n").unwrap();
        let inner = Kind::List(vec![Value::new(Kind::Int(2)), Value::new(Kind::Tuple(vec![]))]);
        assert_eq!(t.get_path("a").unwrap().kind, Kind::Tuple(vec![Value::new(Kind::Int(1)), Value::new(inner)]));
        let e = p("a: !!python/list [1, 2]\n").unwrap_err();
        assert!(e.message.contains("unsupported YAML tag"), "{e}");
        assert!(p("a: !!python/tuple {x: 1}\n").is_err());
        assert!(p("a: !!int x\n").is_err());
    }

    #[test]
    fn complex_keys_rejected() {
        assert!(p("? [1, 2]\n: x\n").is_err());
    }
}
