"""YAML annotated with where each value came from (``torchkiln config show --provenance``).

The text is the plain dump (the same block layout, the same scalar spelling, written by the
Rust core) with a ``# file:line:col`` (or ``# --cfg-options ...``) comment at the end of each
leaf line, aligned in one column. It loads back to the same data.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torchkiln.config.loader import dump_yaml
from torchkiln.config.report import display_location, lookup_provenance

__all__ = ["annotate"]

_MAX_COMMENT_COLUMN = 72


def _inline(value: Any) -> str:
    """How the config dump spells a scalar or an empty collection (``${`` escaped)."""
    text = dump_yaml({"k": value}, escape_refs=True)
    return text[len("k: ") : -1]


def _key(key: str) -> str:
    """How the dump spells a key."""
    return dump_yaml({key: None})[: -len(": null\n")]


class _Writer:
    def __init__(self, provenance: Mapping[str, str]) -> None:
        self.provenance = provenance
        self.lines: list[tuple[str, str | None]] = []
        self.current = ""

    def end_line(self, path: tuple[Any, ...] | None) -> None:
        where = None
        if path is not None:
            found = lookup_provenance(self.provenance, path)
            where = None if found is None else display_location(found)
        self.lines.append((self.current, where))
        self.current = ""

    def mapping(
        self, node: Mapping[str, Any], indent: int, inline_first: bool, path: tuple[Any, ...]
    ) -> None:
        for i, (key, value) in enumerate(node.items()):
            if i > 0 or not inline_first:
                self.current += " " * indent
            self.current += _key(str(key)) + ":"
            self.block_value(value, indent, (*path, key))

    def sequence(
        self, node: list[Any], indent: int, inline_first: bool, path: tuple[Any, ...]
    ) -> None:
        for i, value in enumerate(node):
            if i > 0 or not inline_first:
                self.current += " " * indent
            self.current += "- "
            child = (*path, i)
            if isinstance(value, Mapping) and value:
                self.mapping(value, indent + 2, True, child)
            elif isinstance(value, list) and value:
                self.sequence(value, indent + 2, True, child)
            else:
                self.current += _inline(value)
                self.end_line(child)

    def block_value(self, value: Any, indent: int, path: tuple[Any, ...]) -> None:
        if isinstance(value, Mapping) and value:
            self.end_line(None)
            self.mapping(value, indent + 2, False, path)
        elif isinstance(value, list) and value:
            self.end_line(None)
            self.sequence(value, indent + 2, False, path)
        else:
            self.current += " " + _inline(value)
            self.end_line(path)

    def render(self) -> str:
        width = min(
            max((len(t) for t, c in self.lines if c and "\n" not in t), default=0),
            _MAX_COMMENT_COLUMN,
        )
        out = []
        for text, comment in self.lines:
            if comment and "\n" not in text:
                out.append(f"{text.ljust(width)}  # {comment}")
            else:
                out.append(text)  # a multi-line scalar cannot take a trailing comment
        return "\n".join(out) + "\n"


def annotate(data: Mapping[str, Any], provenance: Mapping[str, str]) -> str:
    """``data`` dumped as YAML with a ``# where-it-came-from`` comment on each leaf line."""
    if not data:
        return dump_yaml(dict(data), escape_refs=True)
    writer = _Writer(provenance)
    writer.mapping(data, 0, False, ())
    return writer.render()
