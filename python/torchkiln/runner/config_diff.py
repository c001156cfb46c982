"""What changed between the config a checkpoint was trained with and the current one.

Both are YAML texts (a checkpoint keeps its run's config in ``meta['cfg']``), parsed with the
Rust YAML reader and compared leaf by leaf: maps by key, lists of maps by index, any other
list as one value. The result is one line per change, e.g. ``train_cfg.max_epochs: 2 -> 3``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["IGNORED_KEYS", "config_changes", "flatten_config"]

#: Top-level keys that differ between a run and its resumption by design.
IGNORED_KEYS = frozenset({"resume"})

_MISSING = object()


def flatten_config(value: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted leaf path -> value. Lists of scalars are leaves; lists holding maps are indexed."""
    out: dict[str, Any] = {}
    if isinstance(value, Mapping) and value:
        for key, item in value.items():
            out.update(flatten_config(item, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(value, list) and any(isinstance(item, (Mapping, list)) for item in value):
        for index, item in enumerate(value):
            out.update(flatten_config(item, f"{prefix}.{index}" if prefix else str(index)))
        if not value:
            out[prefix] = []
    else:
        out[prefix] = value
    return out


def _show(value: Any) -> str:
    if value is _MISSING:
        return "(absent)"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value) if (not value or value.strip() != value or ":" in value) else value
    if isinstance(value, (list, dict)):
        text = repr(value)
        return text if len(text) <= 60 else text[:57] + "..."
    return repr(value) if isinstance(value, float) else str(value)


def config_changes(old_text: str, new_text: str, ignore: Iterable[str] = IGNORED_KEYS) -> list[str]:
    """Lines ``path: old -> new`` for every leaf that differs (added and removed ones too).

    :param old_text: the YAML text of the checkpoint's config.
    :param new_text: the YAML text of the current config.
    :param ignore: top-level keys left out of the comparison.
    :raises ValueError: a text is not a YAML mapping (the caller decides what to say).
    """
    from torchkiln._native import parse_yaml

    old = parse_yaml(old_text, "<checkpoint config>") or {}
    new = parse_yaml(new_text, "<current config>") or {}
    if not isinstance(old, Mapping) or not isinstance(new, Mapping):
        raise ValueError("a config text is not a YAML mapping")
    skip = set(ignore)
    old_flat = {
        k: v for k, v in flatten_config(dict(old)).items() if k.split(".", 1)[0] not in skip
    }
    new_flat = {
        k: v for k, v in flatten_config(dict(new)).items() if k.split(".", 1)[0] not in skip
    }
    lines = []
    for path in list(old_flat) + [p for p in new_flat if p not in old_flat]:
        before = old_flat.get(path, _MISSING)
        after = new_flat.get(path, _MISSING)
        if (
            before is _MISSING
            or after is _MISSING
            or before != after
            or type(before) is not type(after)
        ):
            lines.append(f"{path}: {_show(before)} -> {_show(after)}")
    return lines
