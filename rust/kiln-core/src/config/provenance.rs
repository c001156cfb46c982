//! Where every leaf of a loaded config came from.

use indexmap::IndexMap;

use super::value::{Kind, Origin, Value};

/// The files and overrides that [`Origin`] ids point into.
#[derive(Clone, Debug, Default)]
pub struct Sources {
    files: Vec<String>,
    overrides: Vec<String>,
}

impl Sources {
    /// No files and no overrides yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The id of `name`, registering it on first use.
    pub fn add_file(&mut self, name: &str) -> u32 {
        if let Some(i) = self.files.iter().position(|f| f == name) {
            return i as u32;
        }
        self.files.push(name.to_string());
        (self.files.len() - 1) as u32
    }

    /// Register an override's text (as written on the command line); returns its id.
    pub fn add_override(&mut self, text: &str) -> u32 {
        self.overrides.push(text.to_string());
        (self.overrides.len() - 1) as u32
    }

    /// The file registered as `id` (`<unknown>` for an id never handed out).
    pub fn file_name(&self, id: u32) -> &str {
        self.files.get(id as usize).map(String::as_str).unwrap_or("<unknown>")
    }

    /// The override registered as `id` (`<unknown>` for an id never handed out).
    pub fn override_text(&self, id: u32) -> &str {
        self.overrides.get(id as usize).map(String::as_str).unwrap_or("<unknown>")
    }

    /// `file:line:col`, `file` (position unknown) or `--cfg-options a.b=1`.
    pub fn describe(&self, origin: Origin) -> Option<String> {
        match origin {
            Origin::Unknown => None,
            Origin::File { file, line: 0, .. } => Some(self.file_name(file).to_string()),
            Origin::File { file, line, col } => {
                // Called once per leaf of every load: built by hand rather than `format!`.
                let name = self.file_name(file);
                let mut out = String::with_capacity(name.len() + 12);
                out.push_str(name);
                out.push(':');
                push_u32(&mut out, line);
                out.push(':');
                push_u32(&mut out, col);
                Some(out)
            }
            Origin::Override(i) => Some(format!("--cfg-options {}", self.override_text(i))),
        }
    }
}

/// Map every leaf's dotted path (list items by index) to the place that set it.
///
/// Leaves are scalars and empty lists/maps; leaves of unknown origin are left out.
pub fn collect(root: &Value, sources: &Sources) -> IndexMap<String, String> {
    let mut out = IndexMap::new();
    let mut path = String::new();
    walk(root, &mut path, sources, &mut out);
    out
}

fn walk(node: &Value, path: &mut String, sources: &Sources, out: &mut IndexMap<String, String>) {
    match &node.kind {
        Kind::Map(m) if !m.is_empty() => {
            for (k, child) in m {
                let len = push_seg(path, k);
                walk(child, path, sources, out);
                path.truncate(len);
            }
        }
        Kind::List(l) | Kind::Tuple(l) if !l.is_empty() => {
            let mut buf = itoa_buf();
            for (i, child) in l.iter().enumerate() {
                let len = push_seg(path, format_index(&mut buf, i));
                walk(child, path, sources, out);
                path.truncate(len);
            }
        }
        _ => {
            if !path.is_empty()
                && let Some(d) = sources.describe(node.origin)
            {
                out.insert(path.clone(), d);
            }
        }
    }
}

fn push_seg(path: &mut String, seg: &str) -> usize {
    let len = path.len();
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(seg);
    len
}

fn push_u32(out: &mut String, mut n: u32) {
    let mut digits = [0u8; 10];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(&digits[i..]).expect("ASCII digits"));
}

fn itoa_buf() -> String {
    String::with_capacity(20)
}

fn format_index(buf: &mut String, i: usize) -> &str {
    use std::fmt::Write as _;
    buf.clear();
    let _ = write!(buf, "{i}");
    buf
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::value::Map;

    #[test]
    fn collects_leaves_with_indices() {
        let mut s = Sources::new();
        let f = s.add_file("/c/a.yaml");
        let o = s.add_override("x.l.1=3");
        let mut m = Map::new();
        m.insert(
            "l".into(),
            Value::at(
                Kind::List(vec![
                    Value::at(Kind::Int(1), Origin::File { file: f, line: 2, col: 5 }),
                    Value::at(Kind::Int(3), Origin::Override(o)),
                ]),
                Origin::File { file: f, line: 1, col: 1 },
            ),
        );
        m.insert("e".into(), Value::at(Kind::Map(Map::new()), Origin::File { file: f, line: 4, col: 1 }));
        let mut root = Map::new();
        root.insert("x".into(), Value::new(Kind::Map(m)));
        let p = collect(&Value::new(Kind::Map(root)), &s);
        assert_eq!(p["x.l.0"], "/c/a.yaml:2:5");
        assert_eq!(p["x.l.1"], "--cfg-options x.l.1=3");
        assert_eq!(p["x.e"], "/c/a.yaml:4:1");
        assert_eq!(p.len(), 3);
    }
}
