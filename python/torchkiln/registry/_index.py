"""What each registry can offer, known without importing any component module.

One source: the installed distributions' entry points, group ``torchkiln.<registry>``, each
under its distribution's normalised name as scope. torchkiln declares its own components
the same way, in its ``pyproject.toml`` (scope ``torchkiln``). Read once per process and
cached.
"""

from __future__ import annotations

import importlib.metadata as md
import re
from functools import cache, lru_cache

from torchkiln.registry.default_scope import (
    current_scope_name,
    set_default_scope as _set_current_scope,
)

__all__ = [
    "BUILTIN_SCOPE",
    "builtin_components",
    "builtins_installed",
    "clear_cache",
    "default_scope",
    "distributions",
    "entry_points_by_group",
    "normalise_dist",
    "providers",
    "set_default_scope",
]

BUILTIN_SCOPE = "torchkiln"
_GROUP_PREFIX = "torchkiln."

_SEPARATOR_RUNS = re.compile(r"[-_.]+")


def default_scope() -> str | None:
    """The scope preferred when a name is offered by several providers (``default_scope``),
    as it was written (compare it through :func:`normalise_dist`)."""
    return current_scope_name()


def set_default_scope(scope: str | None) -> None:
    """Set the preferred scope (MMEngine's ``default_scope``); ``None`` clears it."""
    _set_current_scope(scope)


@lru_cache(maxsize=1024)
def normalise_dist(name: str) -> str:
    """A distribution or scope name in the one form scopes are compared in.

    The rule is packaging's for distribution names (PEP 503): case does not matter and runs
    of ``-``, ``_`` and ``.`` are one separator, written ``_`` here because a scope is also a
    Python package name: ``Acme-Kiln.Zoo``, ``acme_kiln_zoo`` and ``acme--kiln-zoo`` are one.
    """
    return _SEPARATOR_RUNS.sub("_", name).lower()


@lru_cache(maxsize=1)
def entry_points_by_group() -> dict[str, list[md.EntryPoint]]:
    """Every ``torchkiln.*`` entry point of the installed distributions, by group."""
    groups: dict[str, list[md.EntryPoint]] = {}
    seen: set[tuple[str, str, str]] = set()
    for dist in md.distributions():
        for ep in dist.entry_points:
            key = (ep.group, ep.name, ep.value)
            if ep.group.startswith(_GROUP_PREFIX) and key not in seen:
                seen.add(key)  # the same dist can appear twice on sys.path
                groups.setdefault(ep.group, []).append(ep)
    return groups


def _dist_of(ep: md.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return normalise_dist(dist.name) if dist is not None else "unknown"


@cache
def providers(registry_name: str, group: str) -> dict[str, dict[str, str]]:
    """``{Name: {scope: "module:attr"}}`` for one registry (torchkiln's own under ``torchkiln``)."""
    out: dict[str, dict[str, str]] = {}
    for ep in entry_points_by_group().get(group, []):
        out.setdefault(ep.name, {})[_dist_of(ep)] = ep.value
    return out


def builtin_components(group: str) -> dict[str, str]:
    """torchkiln's own entries in one entry-point group (``torchkiln.hooks``): ``{Name: "module:attr"}``."""
    return {
        ep.name: ep.value
        for ep in entry_points_by_group().get(group, [])
        if _dist_of(ep) == BUILTIN_SCOPE
    }


def _builtin_components() -> dict[str, dict[str, str]]:
    """torchkiln's own components: ``{GROUP: {Name: "module:attr"}}``, ``GROUP`` the entry-point
    group without its ``torchkiln.`` prefix, in upper case (``HOOKS``, ``VIS_BACKENDS``)."""
    out: dict[str, dict[str, str]] = {}
    for group, eps in entry_points_by_group().items():
        for ep in eps:
            if _dist_of(ep) == BUILTIN_SCOPE:
                out.setdefault(group.removeprefix(_GROUP_PREFIX).upper(), {})[ep.name] = ep.value
    return out


def builtins_installed() -> bool:
    """Whether torchkiln's own entry points are installed (a source checkout that was never
    installed, or installed before they were declared, has none)."""
    return bool(_builtin_components())


def distributions() -> list[str]:
    """Installed distributions other than torchkiln that declare any ``torchkiln.*`` entry point."""
    names = {_dist_of(ep) for eps in entry_points_by_group().values() for ep in eps}
    names.discard(BUILTIN_SCOPE)
    return sorted(names)


def clear_cache() -> None:
    """Forget cached entry points (after installing a plugin in the same process)."""
    entry_points_by_group.cache_clear()
    providers.cache_clear()
