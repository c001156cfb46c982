//! Recursive merge: maps merge key by key, anything else replaces, `_delete_: true` in a
//! child map replaces the base map instead of merging into it.

use super::value::{Kind, Value};

/// The key that asks a child map to replace its base instead of merging.
pub const DELETE_KEY: &str = "_delete_";

/// Merge `child` on top of `base`, in place. `_delete_` keys never reach the result.
///
/// Existing keys keep their position in `base`; new keys are appended in `child`'s order.
pub fn merge_into(base: &mut Value, mut child: Value) {
    let replace = match (&mut base.kind, &mut child.kind) {
        (Kind::Map(_), Kind::Map(cm)) => take_delete_flag(cm),
        _ => true,
    };
    if replace {
        strip_delete(&mut child);
        *base = child;
        return;
    }
    let Kind::Map(cm) = child.kind else { unreachable!("checked above") };
    if child.origin != Default::default() {
        base.origin = child.origin;
    }
    let Kind::Map(bm) = &mut base.kind else { unreachable!("checked above") };
    for (k, cv) in cm {
        match bm.get_mut(&k) {
            Some(bv) => merge_into(bv, cv),
            None => {
                let mut cv = cv;
                strip_delete(&mut cv);
                bm.insert(k, cv);
            }
        }
    }
}

/// Merge two values and return the result (see [`merge_into`]).
pub fn merge(mut base: Value, child: Value) -> Value {
    merge_into(&mut base, child);
    base
}

/// Remove `_delete_` from `map`; true when it asked for replacement.
fn take_delete_flag(map: &mut super::value::Map) -> bool {
    matches!(map.shift_remove(DELETE_KEY).map(|v| v.kind), Some(Kind::Bool(true)))
}

/// Remove every `_delete_` key below `v`.
pub fn strip_delete(v: &mut Value) {
    match &mut v.kind {
        Kind::Map(m) => {
            m.shift_remove(DELETE_KEY);
            m.values_mut().for_each(strip_delete);
        }
        Kind::List(items) => items.iter_mut().for_each(strip_delete),
        _ => {}
    }
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
    fn delete_false_merges_and_delete_keys_never_survive() {
        let base = y("a: {x: 1}\n");
        let child = y("a: {_delete_: false, y: 2}\nn: {_delete_: true, k: {_delete_: true, v: 1}}\n");
        assert_eq!(merge(base, child), y("a: {x: 1, y: 2}\nn: {k: {v: 1}}\n"));
    }

    #[test]
    fn merge_with_empty_is_identity() {
        let v = y("a: {x: [1, {b: 2}]}\nb: s\n");
        assert_eq!(merge(Value::empty_map(), v.clone()), v);
        assert_eq!(merge(v.clone(), Value::empty_map()), v);
    }
}
