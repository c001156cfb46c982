"""A config as plain Python data and as YAML text: the one conversion every part uses."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["config_text", "plain"]

_SCALARS = (str, int, float, bool)


def plain(value: Any) -> Any:
    """A deep plain copy of config values: Config views become dicts, tuples stay tuples.

    Objects that are not config data (a built module, a dataset) are kept as they are, so a
    Runner argument may mix configs and built objects.
    """
    if value is None or isinstance(value, _SCALARS):
        return value
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and all(
        isinstance(v, (Mapping, str, int, float, bool, list, tuple, type(None))) for v in value
    ):
        return type(value)(plain(v) for v in value)
    return value


def config_text(cfg: Any) -> str:
    """``cfg`` as YAML text (its own ``dump()`` when it has one); ``""`` when it holds objects."""
    if cfg is None:
        return ""
    dump = getattr(cfg, "dump", None)
    if callable(dump):
        try:
            text = dump()
        except TypeError:
            text = None
        if isinstance(text, str):
            return text
    from torchkiln._native import dump_yaml

    try:
        return str(dump_yaml(plain(cfg), escape_refs=True))
    except (TypeError, ValueError):  # a config holding objects: no text
        return ""
