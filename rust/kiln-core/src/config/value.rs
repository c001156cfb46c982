//! The ordered value tree every config format is read into.

use std::fmt::Write as _;

use indexmap::IndexMap;

/// A map with insertion order preserved.
pub type Map = IndexMap<String, Value>;

/// Where a value was set: a position in a source file, a command-line override, or unknown.
///
/// File and override ids index into [`crate::config::Sources`]. `line == 0` means the file is
/// known but not the position (configs executed by Python).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Origin {
    #[default]
    Unknown,
    File {
        file: u32,
        line: u32,
        col: u32,
    },
    Override(u32),
}

/// The payload of a [`Value`].
#[derive(Clone, Debug)]
pub enum Kind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<Value>),
    /// A sequence that must stay a tuple (Python configs write them; `!!python/tuple` in YAML).
    Tuple(Vec<Value>),
    Map(Map),
}

/// One node of the config tree together with the place that set it.
///
/// Equality compares the data only, never the origins.
#[derive(Clone, Debug)]
pub struct Value {
    pub kind: Kind,
    pub origin: Origin,
}

impl PartialEq for Kind {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Kind::Null, Kind::Null) => true,
            (Kind::Bool(a), Kind::Bool(b)) => a == b,
            (Kind::Int(a), Kind::Int(b)) => a == b,
            (Kind::Float(a), Kind::Float(b)) => a == b || (a.is_nan() && b.is_nan()),
            (Kind::Str(a), Kind::Str(b)) => a == b,
            (Kind::List(a), Kind::List(b)) | (Kind::Tuple(a), Kind::Tuple(b)) => a == b,
            // Order matters for configs: a dump must reproduce it.
            (Kind::Map(a), Kind::Map(b)) => a.len() == b.len() && a.iter().zip(b.iter()).all(|(x, y)| x == y),
            _ => false,
        }
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind
    }
}

impl From<Kind> for Value {
    fn from(kind: Kind) -> Self {
        Value { kind, origin: Origin::Unknown }
    }
}

impl Value {
    /// A value with an unknown origin.
    pub fn new(kind: Kind) -> Self {
        kind.into()
    }

    /// A value set at `origin`.
    pub fn at(kind: Kind, origin: Origin) -> Self {
        Value { kind, origin }
    }

    /// A `null` with no origin.
    pub fn null() -> Self {
        Kind::Null.into()
    }

    /// An empty map with no origin.
    pub fn empty_map() -> Self {
        Kind::Map(Map::new()).into()
    }

    /// A string with no origin.
    pub fn str(s: impl Into<String>) -> Self {
        Kind::Str(s.into()).into()
    }

    /// The name of the value's type, as used in error messages.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            Kind::Null => "null",
            Kind::Bool(_) => "bool",
            Kind::Int(_) => "int",
            Kind::Float(_) => "float",
            Kind::Str(_) => "string",
            Kind::List(_) => "list",
            Kind::Tuple(_) => "tuple",
            Kind::Map(_) => "map",
        }
    }

    /// The map, if this value is one.
    pub fn as_map(&self) -> Option<&Map> {
        match &self.kind {
            Kind::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The map, mutably, if this value is one.
    pub fn as_map_mut(&mut self) -> Option<&mut Map> {
        match &mut self.kind {
            Kind::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The items, if this value is a list or a tuple.
    pub fn as_seq(&self) -> Option<&Vec<Value>> {
        match &self.kind {
            Kind::List(items) | Kind::Tuple(items) => Some(items),
            _ => None,
        }
    }

    /// The string, if this value is one.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Set the origin of this node and of everything below it.
    pub fn set_origin_deep(&mut self, origin: Origin) {
        self.origin = origin;
        match &mut self.kind {
            Kind::List(items) | Kind::Tuple(items) => items.iter_mut().for_each(|v| v.set_origin_deep(origin)),
            Kind::Map(map) => map.values_mut().for_each(|v| v.set_origin_deep(origin)),
            _ => {}
        }
    }

    /// Follow a dotted path (`a.b.0.c`); list items are addressed by index.
    pub fn get_path(&self, path: &str) -> Option<&Value> {
        if path.is_empty() {
            return Some(self);
        }
        let mut node = self;
        for seg in path.split('.') {
            node = node.child(seg)?;
        }
        Some(node)
    }

    /// The child named `seg`: a map key, or a list index (negative counts from the end).
    pub fn child(&self, seg: &str) -> Option<&Value> {
        match &self.kind {
            Kind::Map(m) => m.get(seg),
            Kind::List(items) | Kind::Tuple(items) => list_index(seg, items.len()).map(|i| &items[i]),
            _ => None,
        }
    }

    /// Text for embedding inside a longer string: scalars as Python's `str()` writes them,
    /// lists and maps in YAML flow style.
    pub fn to_embedded_string(&self) -> String {
        match &self.kind {
            Kind::Null => "None".to_string(),
            Kind::Bool(true) => "True".to_string(),
            Kind::Bool(false) => "False".to_string(),
            Kind::Int(i) => i.to_string(),
            Kind::Float(f) => float_repr(*f),
            Kind::Str(s) => s.clone(),
            Kind::List(_) | Kind::Tuple(_) | Kind::Map(_) => {
                let mut out = String::new();
                crate::config::dump::write_flow(&mut out, self);
                out
            }
        }
    }
}

/// One step of a key path: a map key or a list index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// Dotted form of a key path: `a.b.0.c`.
pub fn join_path(segs: &[Seg]) -> String {
    let mut out = String::new();
    for (i, s) in segs.iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        match s {
            Seg::Key(k) => out.push_str(k),
            Seg::Index(n) => {
                let _ = write!(out, "{n}");
            }
        }
    }
    out
}

/// Parse `seg` as an index into a list of `len` items; negative indices count from the end.
pub fn list_index(seg: &str, len: usize) -> Option<usize> {
    let i: i64 = seg.parse().ok()?;
    let idx = if i < 0 { len as i64 + i } else { i };
    if idx >= 0 && (idx as usize) < len { Some(idx as usize) } else { None }
}

/// Format a float the way Python's `repr()` does: shortest round-trip digits, fixed notation
/// for exponents in [-4, 16), scientific (`1e-05`, `1e+16`) outside.
pub fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    // Rust's `{:e}` gives the shortest digits that round-trip, e.g. "-1.2345e-5".
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').expect("`{:e}` always writes an exponent");
    let exp: i32 = exp.parse().expect("`{:e}` writes a decimal exponent");
    let (neg, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if (-4..16).contains(&exp) {
        if exp >= 0 {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                out.push_str(&digits);
                out.extend(std::iter::repeat_n('0', int_len - digits.len()));
                out.push_str(".0");
            } else {
                out.push_str(&digits[..int_len]);
                out.push('.');
                out.push_str(&digits[int_len..]);
            }
        } else {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-exp - 1) as usize));
            out.push_str(&digits);
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_repr_matches_python() {
        let cases = [
            (0.1, "0.1"),
            (1.0, "1.0"),
            (-0.0, "-0.0"),
            (100.0, "100.0"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (1.5e300, "1.5e+300"),
            (123.456, "123.456"),
            (-2.5e-7, "-2.5e-07"),
            (f64::INFINITY, "inf"),
        ];
        for (f, want) in cases {
            assert_eq!(float_repr(f), want, "{f}");
        }
    }

    #[test]
    fn equality_ignores_origin_but_not_order() {
        let mut a = Map::new();
        a.insert("x".into(), Value::at(Kind::Int(1), Origin::Override(0)));
        a.insert("y".into(), Value::new(Kind::Int(2)));
        let mut b = Map::new();
        b.insert("x".into(), Value::new(Kind::Int(1)));
        b.insert("y".into(), Value::new(Kind::Int(2)));
        assert_eq!(Value::new(Kind::Map(a.clone())), Value::new(Kind::Map(b)));
        let mut c = Map::new();
        c.insert("y".into(), Value::new(Kind::Int(2)));
        c.insert("x".into(), Value::new(Kind::Int(1)));
        assert_ne!(Value::new(Kind::Map(a)), Value::new(Kind::Map(c)));
    }

    #[test]
    fn get_path_walks_maps_and_lists() {
        let mut inner = Map::new();
        inner.insert("l".into(), Value::new(Kind::List(vec![Value::new(Kind::Int(5)), Value::new(Kind::Int(6))])));
        let mut root = Map::new();
        root.insert("a".into(), Value::new(Kind::Map(inner)));
        let root = Value::new(Kind::Map(root));
        assert_eq!(root.get_path("a.l.1"), Some(&Value::new(Kind::Int(6))));
        assert_eq!(root.get_path("a.l.-1"), Some(&Value::new(Kind::Int(6))));
        assert!(root.get_path("a.l.2").is_none());
        assert!(root.get_path("a.x").is_none());
    }
}
