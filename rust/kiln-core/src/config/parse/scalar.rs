//! Plain-scalar typing: the YAML 1.2 core schema (`null`, `true`, `12`, `0x1f`, `1e-4`, `.inf`).

use crate::config::value::Kind;

/// The type of an unquoted YAML scalar. `Err` carries a message (an integer too large).
pub fn resolve_plain(s: &str) -> Result<Kind, String> {
    Ok(resolve_non_string(s)?.unwrap_or_else(|| Kind::Str(s.to_string())))
}

/// Like [`resolve_plain`] but takes the text by value, so strings are not copied.
pub fn resolve_plain_owned(s: String) -> Result<Kind, String> {
    Ok(resolve_non_string(&s)?.unwrap_or(Kind::Str(s)))
}

/// The non-string value `s` denotes, or `None` when it is a string.
fn resolve_non_string(s: &str) -> Result<Option<Kind>, String> {
    Ok(Some(match s {
        "" | "~" | "null" | "Null" | "NULL" => Kind::Null,
        "true" | "True" | "TRUE" => Kind::Bool(true),
        "false" | "False" | "FALSE" => Kind::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => Kind::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => Kind::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => Kind::Float(f64::NAN),
        _ => {
            // Only text starting like a number can be one.
            if !s.starts_with(|c: char| c.is_ascii_digit() || matches!(c, '-' | '+' | '.')) {
                return Ok(None);
            }
            if let Some(i) = parse_int(s)? {
                Kind::Int(i)
            } else if is_float_syntax(s)
                && let Ok(f) = s.parse::<f64>()
            {
                Kind::Float(f)
            } else {
                return Ok(None);
            }
        }
    }))
}

/// `[-+]?[0-9]+`, `0o[0-7]+` or `0x[0-9a-fA-F]+`; `Ok(None)` when `s` is not an integer.
fn parse_int(s: &str) -> Result<Option<i64>, String> {
    let (radix, digits, neg) = if let Some(h) = s.strip_prefix("0x") {
        (16, h, false)
    } else if let Some(o) = s.strip_prefix("0o") {
        (8, o, false)
    } else {
        let (neg, d) = match s.as_bytes().first() {
            Some(b'-') => (true, &s[1..]),
            Some(b'+') => (false, &s[1..]),
            _ => (false, s),
        };
        (10, d, neg)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Ok(None);
    }
    let parsed =
        if neg { i64::from_str_radix(&format!("-{digits}"), radix) } else { i64::from_str_radix(digits, radix) };
    parsed.map(Some).map_err(|_| format!("integer {s} does not fit in 64 bits"))
}

/// `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`
fn is_float_syntax(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'-' | b'+')) {
        i += 1;
    }
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let int_digits = i - int_start;
    let mut frac_digits = 0;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let f = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        frac_digits = i - f;
    }
    if int_digits == 0 && frac_digits == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
            i += 1;
        }
        let e = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == e {
            return false;
        }
    }
    i == b.len()
}

/// Words that some YAML reader (1.1 or 1.2) turns into something other than a string.
const RESERVED: &[&str] = &["null", "true", "false", "yes", "no", "on", "off"];

/// Whether `s` can be written unquoted and read back as the same string by YAML 1.2 and
/// YAML 1.1 readers (PyYAML) alike. Deliberately conservative.
pub fn plain_is_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if !(first.is_ascii_alphabetic() || first == '_' || first == '/') {
        return false;
    }
    if s.ends_with(' ') || s.contains("  ") {
        return false;
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-' | ' ' | '(' | ')' | '+' | '=' | '@'))
    {
        return false;
    }
    let lower = s.to_ascii_lowercase();
    !RESERVED.contains(&lower.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_schema() {
        assert_eq!(resolve_plain("~").unwrap(), Kind::Null);
        assert_eq!(resolve_plain("True").unwrap(), Kind::Bool(true));
        assert_eq!(resolve_plain("12").unwrap(), Kind::Int(12));
        assert_eq!(resolve_plain("-12").unwrap(), Kind::Int(-12));
        assert_eq!(resolve_plain("0x1f").unwrap(), Kind::Int(31));
        assert_eq!(resolve_plain("0o17").unwrap(), Kind::Int(15));
        assert_eq!(resolve_plain("1e-4").unwrap(), Kind::Float(1e-4));
        assert_eq!(resolve_plain("0.1").unwrap(), Kind::Float(0.1));
        assert_eq!(resolve_plain(".5").unwrap(), Kind::Float(0.5));
        assert_eq!(resolve_plain("-.inf").unwrap(), Kind::Float(f64::NEG_INFINITY));
        assert_eq!(resolve_plain("yes").unwrap(), Kind::Str("yes".into()));
        assert_eq!(resolve_plain("1_000").unwrap(), Kind::Str("1_000".into()));
        assert_eq!(resolve_plain("1e").unwrap(), Kind::Str("1e".into()));
        assert_eq!(resolve_plain(".").unwrap(), Kind::Str(".".into()));
        assert!(resolve_plain("99999999999999999999").is_err());
        assert_eq!(resolve_plain("-9223372036854775808").unwrap(), Kind::Int(i64::MIN));
    }

    #[test]
    fn plain_safety() {
        for s in ["abc", "a b", "ResNet", "/tmp/x", "data/coco", "a-b_c.d", "x+y"] {
            assert!(plain_is_safe(s), "{s}");
        }
        for s in [
            "",
            "1",
            "1.0",
            "yes",
            "No",
            "true",
            "null",
            "a: b",
            "a #b",
            " a",
            "a ",
            "-a",
            ".5",
            "*x",
            "a,b",
            "2001-01-01",
        ] {
            assert!(!plain_is_safe(s), "{s}");
        }
    }
}
