//! TOML reader on the `toml` crate's spanned document tree.

use toml::de::{DeTable, DeValue};

use super::{LineIndex, SourceRef};
use crate::config::error::{ConfigError, Result};
use crate::config::value::{Kind, Map, Origin, Value};

/// Parse a TOML document into the value tree.
pub fn parse(text: &str, src: SourceRef<'_>) -> Result<Value> {
    let lines = LineIndex::new(text);
    let table = DeTable::parse(text).map_err(|e| {
        let (line, col) = e.span().map(|s| lines.position(text, s.start)).unwrap_or((0, 0));
        ConfigError::new(format!("invalid TOML: {}", e.message().trim())).at(src.name, line, col)
    })?;
    let conv = Conv { text, src, lines: &lines };
    let origin = conv.origin(table.span().start);
    let mut path = Vec::new();
    Ok(Value::at(conv.table(table.get_ref(), &mut path)?, origin))
}

struct Conv<'a> {
    text: &'a str,
    src: SourceRef<'a>,
    lines: &'a LineIndex,
}

impl Conv<'_> {
    fn origin(&self, at: usize) -> Origin {
        let (line, col) = self.lines.position(self.text, at);
        Origin::File { file: self.src.id, line, col }
    }

    fn table(&self, t: &DeTable<'_>, path: &mut Vec<String>) -> Result<Kind> {
        let mut map = Map::new();
        for (k, v) in t.iter() {
            path.push(k.get_ref().to_string());
            let kind = self.value(v.get_ref(), v.span().start, path)?;
            path.pop();
            map.insert(k.get_ref().to_string(), Value::at(kind, self.origin(k.span().start)));
        }
        Ok(Kind::Map(map))
    }

    fn value(&self, v: &DeValue<'_>, at: usize, path: &mut Vec<String>) -> Result<Kind> {
        Ok(match v {
            DeValue::String(s) => Kind::Str(s.to_string()),
            DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) => Kind::Int(n),
                Err(_) => {
                    let (line, col) = self.lines.position(self.text, at);
                    return Err(ConfigError::new(format!("integer {i} does not fit in 64 bits"))
                        .at(self.src.name, line, col)
                        .key(path.join(".")));
                }
            },
            DeValue::Float(f) => Kind::Float(parse_toml_float(f.as_str())),
            DeValue::Boolean(b) => Kind::Bool(*b),
            DeValue::Datetime(d) => Kind::Str(d.to_string()),
            DeValue::Array(items) => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    path.push(i.to_string());
                    let kind = self.value(item.get_ref(), item.span().start, path)?;
                    path.pop();
                    out.push(Value::at(kind, self.origin(item.span().start)));
                }
                Kind::List(out)
            }
            DeValue::Table(t) => self.table(t, path)?,
        })
    }
}

fn parse_toml_float(s: &str) -> f64 {
    match s.trim_start_matches('+') {
        "inf" => f64::INFINITY,
        "-inf" => f64::NEG_INFINITY,
        "nan" | "-nan" => f64::NAN,
        other => other.replace('_', "").parse().unwrap_or(f64::NAN),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<Value> {
        parse(text, SourceRef { id: 0, name: "t.toml" })
    }

    #[test]
    fn tables_arrays_and_positions() {
        let v = p("b = 1\n[a]\nx = [1, 2.5, \"q\"]\n[a.y]\nz = true\n").unwrap();
        assert_eq!(v.as_map().unwrap().keys().collect::<Vec<_>>(), ["b", "a"]);
        assert_eq!(v.get_path("a.x.1").unwrap().kind, Kind::Float(2.5));
        assert_eq!(v.get_path("a.y.z").unwrap().kind, Kind::Bool(true));
        assert_eq!(v.get_path("a.x").unwrap().origin, Origin::File { file: 0, line: 3, col: 1 });
    }

    #[test]
    fn duplicate_keys_fail_with_position() {
        let e = p("a = 1\na = 2\n").unwrap_err();
        assert!(e.message.contains("invalid TOML"), "{e}");
        assert_eq!(e.line, Some(2), "{e}");
    }
}
