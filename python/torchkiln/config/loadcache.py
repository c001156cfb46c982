"""Loaded configs kept in memory, so that loading an unchanged config again is cheap.

The 128 most recently used loads are kept, each under its absolute path and overrides,
with the :mod:`~torchkiln.config.filestamp` stamp of every file it read and the folder of
every config package it named. A load is used again only while all of them are unchanged;
the caller builds a new :class:`~torchkiln.config.config.Config` from it each time, so two
loads never share mutable state.

A load is not kept when its result could change without any file changing: when it reads
the environment (``${env:...}``, ``{{$NAME}}``), when one of its ``.py`` files imports a
module (other than ``copy`` and ``math``) or calls a builtin with effects (``open``,
``print``, ...), or when one of its files was modified less than two seconds before the
load (a later write within the file system's time-stamp granularity could keep the same
stamp). ``TORCHKILN_CONFIG_CACHE=0`` turns the cache off.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from torchkiln.config.filestamp import Stamp, stamp

__all__ = ["clear", "lookup", "store"]

# A kept load of a detection-sized config holds about 80 kB (its tree and provenance).
_MAX_ENTRIES = 128


class _Entry(NamedTuple):
    stamps: tuple[tuple[str, Stamp], ...]
    packages: tuple[tuple[str, str], ...]
    loaded: Any


_ENTRIES: dict[tuple[str, tuple[str, ...]], _Entry] = {}


def lookup(
    path: str, overrides: tuple[str, ...], resolve_package: Callable[[str], Any]
) -> Any | None:
    """The load kept for ``path`` with ``overrides`` when nothing it read has changed."""
    entry = _ENTRIES.get((path, overrides))
    if entry is None:
        return None
    try:
        for name, recorded in entry.stamps:
            if stamp(name) != recorded:
                break
        else:
            if all(str(resolve_package(pkg)) == folder for pkg, folder in entry.packages):
                _ENTRIES[(path, overrides)] = _ENTRIES.pop((path, overrides))  # most recent last
                return entry.loaded
    except Exception:  # a vanished file or package: load again, which reports it
        pass
    del _ENTRIES[(path, overrides)]
    return None


def store(
    path: str,
    overrides: tuple[str, ...],
    loaded: Any,
    packages: dict[str, str],
    racy_after: int,
    known: Mapping[str, Stamp | None],
) -> None:
    """Keep ``loaded`` (the native result, never handed out) when its files have stamps
    older than ``racy_after``; the caller has checked that the load is deterministic.

    :param known: stamps taken before the files were read (``.py`` files), used instead of
        a new ``stat``; ``None`` for a file too fresh to trust.
    """
    stamps = []
    try:
        for name in loaded.files:
            recorded = known[name] if name in known else stamp(name)
            if recorded is None or recorded[0] >= racy_after:
                return
            stamps.append((name, recorded))
    except OSError:
        return
    if len(_ENTRIES) >= _MAX_ENTRIES:
        _ENTRIES.pop(next(iter(_ENTRIES)))
    _ENTRIES[(path, overrides)] = _Entry(tuple(stamps), tuple(packages.items()), loaded)


def clear() -> None:
    """Forget every kept load."""
    _ENTRIES.clear()
