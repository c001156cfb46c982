//! Recursive merge with MMEngine's rules: maps merge key by key, anything else replaces, and
//! `_delete_` (any true value) in a child map that meets a base map replaces the base map
//! instead of merging into it.
//!
//! `_delete_` is consumed only where a child map meets an existing base key; elsewhere (a key
//! the base does not have, or a config without bases) it stays in the tree, as in MMEngine.

use super::value::{Kind, Map, Value};

/// The key that asks a child map to replace its base instead of merging.
pub const DELETE_KEY: &str = "_delete_";

/// Merge `child` on top of `base`, in place.
///
/// Existing keys keep their position in `base`; new keys are appended in `child`'s order.
pub fn merge_into(base: &mut Value, child: Value) {
    let Value { kind, origin } = child;
    match (&mut base.kind, kind) {
        (Kind::Map(bm), Kind::Map(cm)) => {
            if origin != Default::default() {
                base.origin = origin;
            }
            for (k, cv) in cm {
                merge_entry(bm, k, cv);
            }
        }
        (_, kind) => *base = Value { kind, origin },
    }
}

/// Set `key` of `base` to `child`: merged into the base value when both are maps and the
/// child does not ask for replacement, else replacing it.
fn merge_entry(base: &mut Map, key: String, mut child: Value) {
    let Some(slot) = base.get_mut(&key) else {
        base.insert(key, child);
        return;
    };
    if let Kind::Map(cm) = &mut child.kind {
        let replace = cm.shift_remove(DELETE_KEY).is_some_and(|flag| is_truthy(&flag));
        if !replace && matches!(slot.kind, Kind::Map(_)) {
            merge_into(slot, child);
            return;
        }
    }
    *slot = child;
}

/// Python's truthiness, which decides whether a `_delete_` value asks for replacement.
fn is_truthy(v: &Value) -> bool {
    match &v.kind {
        Kind::Null => false,
        Kind::Bool(b) => *b,
        Kind::Int(i) => *i != 0,
        Kind::Float(f) => *f != 0.0,
        Kind::Str(s) => !s.is_empty(),
        Kind::List(items) | Kind::Tuple(items) => !items.is_empty(),
        Kind::Map(m) => !m.is_empty(),
    }
}

/// Merge two values and return the result (see [`merge_into`]).
pub fn merge(mut base: Value, child: Value) -> Value {
    merge_into(&mut base, child);
    base
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse::parse_yaml_str;

    fn y(s: &str) -> Value {
        parse_yaml_str(s, "t.yaml").unwrap()
    }

    #[test]
    fn maps_merge_lists_replace() {
        let base = y("a: {x: 1, y: [1, 2]}\nb: 2\n");
        let child = y("a: {y: [3], z: 4}\nc: 5\n");
        assert_eq!(merge(base, child), y("a: {x: 1, y: [3], z: 4}\nb: 2\nc: 5\n"));
    }

    #[test]
    fn scalars_and_type_changes_replace() {
        assert_eq!(merge(y("a: {x: 1}"), y("a: 3")), y("a: 3"));
        assert_eq!(merge(y("a: 3"), y("a: {x: 1}")), y("a: {x: 1}"));
        assert_eq!(merge(y("a: 3"), y("a: null")), y("a: null"));
    }

    #[test]
    fn delete_replaces_the_base_map() {
        let base = y("opt: {type: SGD, lr: 0.1, momentum: 0.9}\n");
        let child = y("opt: {_delete_: true, type: AdamW, lr: 0.001}\n");
        assert_eq!(merge(base, child), y("opt: {type: AdamW, lr: 0.001}\n"));
    }

    #[test]
    fn delete_false_merges_and_delete_without_a_base_key_stays() {
        let base = y("a: {x: 1}\nb: {x: 1, k: {v: 0}}\n");
        let child = y(
            "a: {_delete_: false, y: 2}\nn: {_delete_: true, k: {_delete_: true, v: 1}}\nb: {_delete_: 1, k: {_delete_: true}}\n",
        );
        assert_eq!(
            merge(base, child),
            y("a: {x: 1, y: 2}\nb: {k: {_delete_: true}}\nn: {_delete_: true, k: {_delete_: true, v: 1}}\n")
        );
    }

    #[test]
    fn a_map_over_a_scalar_replaces_it() {
        assert_eq!(merge(y("a: 3\n"), y("a: {x: 1}\n")), y("a: {x: 1}\n"));
        assert_eq!(merge(y("a: {x: 1}\n"), y("a: !!python/tuple [1]\n")), y("a: !!python/tuple [1]\n"));
    }

    #[test]
    fn merge_with_empty_is_identity() {
        let v = y("a: {x: [1, {b: 2}]}\nb: s\n");
        assert_eq!(merge(Value::empty_map(), v.clone()), v);
        assert_eq!(merge(v.clone(), Value::empty_map()), v);
    }
}
