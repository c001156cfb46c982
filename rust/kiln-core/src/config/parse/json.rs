//! JSON reader with positions and duplicate-key detection (RFC 8259, nothing more).

use super::{LineIndex, MAX_DEPTH, SourceRef};
use crate::config::error::{ConfigError, Result};
use crate::config::value::{Kind, Map, Origin, Value};

/// Parse a JSON text into the value tree.
pub fn parse(text: &str, src: SourceRef<'_>) -> Result<Value> {
    let mut p = JsonParser { s: text.as_bytes(), text, pos: 0, src, lines: LineIndex::new(text), path: Vec::new() };
    p.ws();
    let v = p.value(0)?;
    p.ws();
    if p.pos < p.s.len() {
        return Err(p.err("unexpected text after the JSON value"));
    }
    Ok(v)
}

struct JsonParser<'a> {
    s: &'a [u8],
    text: &'a str,
    pos: usize,
    src: SourceRef<'a>,
    lines: LineIndex,
    path: Vec<String>,
}

impl JsonParser<'_> {
    fn origin(&self, at: usize) -> Origin {
        let (line, col) = self.lines.position(self.text, at);
        Origin::File { file: self.src.id, line, col }
    }

    fn err(&self, msg: impl Into<String>) -> ConfigError {
        self.err_at(self.pos, msg)
    }

    fn err_at(&self, at: usize, msg: impl Into<String>) -> ConfigError {
        let (line, col) = self.lines.position(self.text, at);
        ConfigError::new(format!("invalid JSON: {}", msg.into())).at(self.src.name, line, col).key(self.path.join("."))
    }

    fn ws(&mut self) {
        while self.pos < self.s.len() && matches!(self.s[self.pos], b' ' | b'\t' | b'\n' | b'\r') {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn expect(&mut self, c: u8) -> Result<()> {
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err(format!("expected '{}'", c as char)))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value> {
        if depth > MAX_DEPTH {
            return Err(self.err(format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        let start = self.pos;
        let kind = match self.peek() {
            None => return Err(self.err("unexpected end of input")),
            Some(b'{') => return self.object(depth),
            Some(b'[') => {
                self.pos += 1;
                let mut items = Vec::new();
                self.ws();
                if self.peek() == Some(b']') {
                    self.pos += 1;
                } else {
                    loop {
                        self.ws();
                        self.path.push(items.len().to_string());
                        items.push(self.value(depth + 1)?);
                        self.path.pop();
                        self.ws();
                        match self.peek() {
                            Some(b',') => self.pos += 1,
                            Some(b']') => {
                                self.pos += 1;
                                break;
                            }
                            _ => return Err(self.err("expected ',' or ']'")),
                        }
                    }
                }
                Kind::List(items)
            }
            Some(b'"') => Kind::Str(self.string()?),
            Some(b't') => self.word("true", Kind::Bool(true))?,
            Some(b'f') => self.word("false", Kind::Bool(false))?,
            Some(b'n') => self.word("null", Kind::Null)?,
            Some(c) if c == b'-' || c.is_ascii_digit() => self.number()?,
            Some(_) => return Err(self.err("expected a JSON value")),
        };
        Ok(Value::at(kind, self.origin(start)))
    }

    fn object(&mut self, depth: usize) -> Result<Value> {
        let start = self.pos;
        self.pos += 1;
        let mut map = Map::new();
        self.ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Value::at(Kind::Map(map), self.origin(start)));
        }
        loop {
            self.ws();
            let key_at = self.pos;
            if self.peek() != Some(b'"') {
                return Err(self.err("expected a string key"));
            }
            let key = self.string()?;
            if let Some(first) = map.get(&key) {
                let first_line = match first.origin {
                    Origin::File { line, .. } => format!(" (first defined at line {line})"),
                    _ => String::new(),
                };
                self.path.push(key.clone());
                return Err(self
                    .err_at(key_at, format!("duplicate key '{key}'{first_line}"))
                    .hint("each key may appear once per object; remove or rename one of them"));
            }
            self.ws();
            self.expect(b':')?;
            self.ws();
            self.path.push(key.clone());
            let mut v = self.value(depth + 1)?;
            self.path.pop();
            v.origin = self.origin(key_at);
            map.insert(key, v);
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    break;
                }
                _ => return Err(self.err("expected ',' or '}'")),
            }
        }
        Ok(Value::at(Kind::Map(map), self.origin(start)))
    }

    fn word(&mut self, w: &str, kind: Kind) -> Result<Kind> {
        if self.s[self.pos..].starts_with(w.as_bytes()) {
            self.pos += w.len();
            Ok(kind)
        } else {
            Err(self.err("expected a JSON value"))
        }
    }

    fn number(&mut self) -> Result<Kind> {
        let start = self.pos;
        let mut is_float = false;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        let digits = |p: &mut Self| {
            let s = p.pos;
            while p.peek().is_some_and(|c| c.is_ascii_digit()) {
                p.pos += 1;
            }
            p.pos - s
        };
        let int_start = self.pos;
        if digits(self) == 0 {
            return Err(self.err("expected digits"));
        }
        if self.s[int_start] == b'0' && self.pos - int_start > 1 {
            return Err(self.err_at(int_start, "leading zeros are not allowed"));
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            is_float = true;
            if digits(self) == 0 {
                return Err(self.err("expected digits after '.'"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            is_float = true;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if digits(self) == 0 {
                return Err(self.err("expected exponent digits"));
            }
        }
        let text = &self.text[start..self.pos];
        if !is_float && let Ok(i) = text.parse::<i64>() {
            return Ok(Kind::Int(i));
        }
        if !is_float {
            return Err(self.err_at(start, format!("integer {text} does not fit in 64 bits")));
        }
        text.parse::<f64>().map(Kind::Float).map_err(|_| self.err_at(start, "invalid number"))
    }

    fn hex4(&mut self) -> Result<u32> {
        let h = self.s.get(self.pos..self.pos + 4).ok_or_else(|| self.err("truncated \\u escape"))?;
        let h = std::str::from_utf8(h).map_err(|_| self.err("invalid \\u escape"))?;
        let v = u32::from_str_radix(h, 16).map_err(|_| self.err("invalid \\u escape"))?;
        self.pos += 4;
        Ok(v)
    }

    fn string(&mut self) -> Result<String> {
        self.pos += 1; // opening quote
        let mut out = String::new();
        loop {
            let run = self.pos;
            while self.peek().is_some_and(|c| c != b'"' && c != b'\\' && c >= 0x20) {
                self.pos += 1;
            }
            out.push_str(&self.text[run..self.pos]);
            match self.peek() {
                None => return Err(self.err("unterminated string")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let c = self.peek().ok_or_else(|| self.err("unterminated string"))?;
                    self.pos += 1;
                    match c {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let mut cp = self.hex4()?;
                            if (0xD800..0xDC00).contains(&cp) && self.s[self.pos..].starts_with(b"\\u") {
                                self.pos += 2;
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err(self.err("invalid surrogate pair"));
                                }
                                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                            }
                            out.push(char::from_u32(cp).ok_or_else(|| self.err("invalid \\u escape"))?);
                        }
                        _ => return Err(self.err_at(self.pos - 1, "invalid escape")),
                    }
                }
                Some(_) => return Err(self.err("control character in string")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<Value> {
        parse(text, SourceRef { id: 0, name: "t.json" })
    }

    #[test]
    fn values_and_positions() {
        let v = p("{\"b\": 1, \"a\": {\"x\": [1, 2.5, \"q\\u00e9\\ud83d\\ude00\", null, true, -3e2]}}").unwrap();
        assert_eq!(v.as_map().unwrap().keys().collect::<Vec<_>>(), ["b", "a"]);
        assert_eq!(v.get_path("a.x.2").unwrap().kind, Kind::Str("qé😀".into()));
        assert_eq!(v.get_path("a.x.5").unwrap().kind, Kind::Float(-300.0));
        assert_eq!(v.get_path("b").unwrap().origin, Origin::File { file: 0, line: 1, col: 2 });
    }

    #[test]
    fn errors() {
        let e = p("{\"a\": 1,\n \"a\": 2}").unwrap_err();
        assert!(e.message.contains("duplicate key 'a'"), "{e}");
        assert_eq!((e.line, e.col), (Some(2), Some(2)));
        let e = p("{\"a\": [1, 2}").unwrap_err();
        assert!(e.message.contains("expected ',' or ']'"), "{e}");
        assert_eq!(e.key_path.as_deref(), Some("a"));
        assert!(p("{\"a\": 01}").is_err());
        assert!(p("{} x").is_err());
    }
}
