"""What each registry can offer, known without importing any component module.

Two sources, the same shape: the built-in table (modules named in ``BUILTIN_TABLES``, each a
torch-free ``COMPONENTS = {REGISTRY: {Name: "module:attr"}}``) under scope ``torchkiln``, and
the installed distributions' entry points (group ``torchkiln.<registry>``) under the
distribution's normalised name. Both are read once per process and cached.
"""

from __future__ import annotations

import importlib.metadata as md
import os
from contextvars import ContextVar
from functools import lru_cache

__all__ = [
    "BUILTIN_SCOPE",
    "BUILTIN_TABLES",
    "clear_cache",
    "default_scope",
    "distributions",
    "entry_points_by_group",
    "normalise_dist",
    "providers",
    "set_default_scope",
]

BUILTIN_SCOPE = "torchkiln"

# One small torch-free table per subpackage, so each subpackage lists its own components.
BUILTIN_TABLES: tuple[str, ...] = (
    "torchkiln.runner._components",
    "torchkiln.hooks._components",
    "torchkiln.model._components",
    "torchkiln.optim._components",
    "torchkiln.evaluation._components",
    "torchkiln.data._components",
    "torchkiln.logging._components",
    "torchkiln.visualization._components",
)

_default_scope: ContextVar[str | None] = ContextVar("torchkiln_default_scope", default=None)


def default_scope() -> str | None:
    """The scope preferred when a name is offered by several providers (``default_scope``)."""
    return _default_scope.get()


def set_default_scope(scope: str | None) -> None:
    """Set the preferred scope (MMEngine's ``default_scope``); ``None`` clears it."""
    _default_scope.set(scope)


def normalise_dist(name: str) -> str:
    """Distribution name as a scope: lower case, ``-`` and ``.`` become ``_``."""
    return name.lower().replace("-", "_").replace(".", "_")


def _read_table(module_name: str) -> dict[str, dict[str, str]] | None:
    """Execute one ``_components.py`` file on its own.

    The file is read without importing its package, so looking up a name never runs a
    subpackage's ``__init__`` (which may import torch, or be half-imported right now).
    """
    package_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    relative = module_name.split(".")[1:]
    path = os.path.join(package_dir, *relative) + ".py"
    if not os.path.isfile(path):
        return None
    namespace: dict[str, object] = {"__name__": module_name, "__file__": path}
    with open(path, encoding="utf-8") as fh:
        exec(compile(fh.read(), path, "exec"), namespace)
    return namespace["COMPONENTS"]  # type: ignore[return-value]


@lru_cache(maxsize=1)
def _builtin_components() -> dict[str, dict[str, str]]:
    merged: dict[str, dict[str, str]] = {}
    for module_name in BUILTIN_TABLES:
        table = _read_table(module_name)
        for registry_name, entries in (table or {}).items():
            merged.setdefault(registry_name, {}).update(entries)
    return merged


@lru_cache(maxsize=1)
def entry_points_by_group() -> dict[str, list[md.EntryPoint]]:
    """Every ``torchkiln.*`` entry point of the installed distributions, by group."""
    groups: dict[str, list[md.EntryPoint]] = {}
    seen: set[tuple[str, str, str]] = set()
    for dist in md.distributions():
        for ep in dist.entry_points:
            key = (ep.group, ep.name, ep.value)
            if ep.group.startswith("torchkiln.") and key not in seen:
                seen.add(key)  # the same dist can appear twice on sys.path
                groups.setdefault(ep.group, []).append(ep)
    return groups


def _dist_of(ep: md.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return normalise_dist(dist.name) if dist is not None else "unknown"


@lru_cache(maxsize=None)
def providers(registry_name: str, group: str) -> dict[str, dict[str, str]]:
    """``{Name: {scope: "module:attr"}}`` for one registry, built-ins and entry points."""
    out: dict[str, dict[str, str]] = {}
    for name, target in _builtin_components().get(registry_name.upper(), {}).items():
        out.setdefault(name, {})[BUILTIN_SCOPE] = target
    for ep in entry_points_by_group().get(group, []):
        out.setdefault(ep.name, {})[_dist_of(ep)] = ep.value
    return out


def distributions() -> list[str]:
    """Installed distributions that declare any ``torchkiln.*`` entry point."""
    names = {_dist_of(ep) for eps in entry_points_by_group().values() for ep in eps}
    names.discard(BUILTIN_SCOPE)
    return sorted(names)


def clear_cache() -> None:
    """Forget cached entry points (after installing a plugin in the same process)."""
    _builtin_components.cache_clear()
    entry_points_by_group.cache_clear()
    providers.cache_clear()
