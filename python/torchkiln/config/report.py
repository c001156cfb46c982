"""Collecting validation errors, each placed at its file, line and key path.

Validation never stops at the first problem: every check reports into one :class:`Reporter`,
which looks the key path up in the config's provenance to say where the value came from.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence

from torchkiln.errors import ConfigError, TorchkilnError

__all__ = ["ConfigWarning", "KeyPath", "Reporter", "display_location", "dotted"]

KeyPath = Sequence["str | int"]

_LOCATION = re.compile(r"^(?P<file>.*?)(?P<pos>:\d+(?::\d+)?)?$")


class ConfigWarning(UserWarning):
    """A config problem that does not stop a run (e.g. an unused value in a ``.py`` config)."""


def dotted(path: KeyPath) -> str:
    """``("param_scheduler", 0, "milestones")`` as ``param_scheduler.0.milestones``."""
    return ".".join(str(p) for p in path)


def display_location(location: str) -> str:
    """A provenance entry for people: file paths below the working directory made relative."""
    from torchkiln.config.loader import display_path

    if location.startswith("--") or location == "merge_from_dict":
        return location
    match = _LOCATION.match(location)
    if not match or not match.group("file"):
        return location
    return display_path(match.group("file")) + (match.group("pos") or "")


def lookup_provenance(
    provenance: Mapping[str, str], path: KeyPath, *, exact: list[bool] | None = None
) -> str | None:
    """Where the value at ``path`` was set: the leaf itself, else its first leaf, else a parent.

    :param exact: when given, ``exact[0]`` is set to whether ``path`` itself was found.
    """
    if exact is not None:
        exact[:] = [False]
    if not provenance:
        return None
    parts = [str(p) for p in path]
    first = True
    while parts:
        key = ".".join(parts)
        bracketed = parts[0] + "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in parts[1:])
        for candidate in (key, bracketed):
            if candidate in provenance:
                if exact is not None:
                    exact[:] = [first]
                return provenance[candidate]
        for prefix in (key + ".", key + "[", bracketed + ".", bracketed + "["):
            for name, location in provenance.items():
                if name.startswith(prefix):
                    return location
        parts.pop()
        first = False
    return None


def _line_only(location: str) -> str:
    """``file:12:3`` as ``file:12``: the line is right for a whole section, the column is not."""
    match = _LOCATION.match(location)
    if not match or not match.group("pos"):
        return location
    return match.group("file") + ":" + match.group("pos").split(":")[1]


class Reporter:
    """Collects errors and warnings for one config.

    :param provenance: the config's ``{dotted key: location}`` table.
    """

    def __init__(self, provenance: Mapping[str, str] | None = None) -> None:
        self.provenance = dict(provenance or {})
        self.errors: list[TorchkilnError] = []
        self.warnings: list[str] = []

    def location(self, path: KeyPath) -> str | None:
        """The file:line:col (or override) that set ``path``, for display."""
        exact: list[bool] = []
        found = lookup_provenance(self.provenance, path, exact=exact)
        if found is None:
            return None
        return display_location(found if exact[0] else _line_only(found))

    def where(self, path: KeyPath) -> str | None:
        """``file:line:col, key a.b.c`` for an error at ``path``."""
        parts = []
        location = self.location(path)
        if location:
            parts.append(location)
        if path:
            parts.append(f"key {dotted(path)}")
        return ", ".join(parts) or None

    def error(self, path: KeyPath, message: str, hint: str | None = None) -> None:
        """Record a :class:`ConfigError` at ``path``."""
        self.errors.append(ConfigError(message, where=self.where(path), hint=hint))

    def add(self, exc: TorchkilnError, path: KeyPath) -> None:
        """Record an error raised elsewhere (registry, plugin), placed at ``path``."""
        where = self.where(path)
        if exc.where:
            where = f"{where}; {exc.where}" if where else exc.where
        self.errors.append(type(exc)(exc.message, where=where, hint=exc.hint))

    def warn(self, path: KeyPath, message: str) -> None:
        """Record and emit a :class:`ConfigWarning` at ``path``."""
        where = self.where(path)
        text = message + (f" (at {where})" if where else "")
        self.warnings.append(text)
        warnings.warn(text, ConfigWarning, stacklevel=3)
