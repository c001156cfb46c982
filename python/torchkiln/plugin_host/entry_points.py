"""Hook plugins from installed distributions: the ``torchkiln.plugins`` entry-point group.

A distribution declares, in its ``pyproject.toml``::

    [project.entry-points."torchkiln.plugins"]
    my_plugin = "my_pkg.hooks"              # a module: its mount-point functions are hooks
    my_hook = "my_pkg.hooks:MyHook"         # a Hook class (built with no arguments) or instance

They are registered at run start unless disabled by name (``plugins: {disable: [name]}`` in
the config, matched against the entry-point name or the distribution name) or all at once
with ``TORCHKILN_DISABLE_PLUGIN_AUTOLOAD=1``.
"""

from __future__ import annotations

import os
import types
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

from torchkiln.errors import PluginError
from torchkiln.registry import _index

if TYPE_CHECKING:  # pragma: no cover
    from torchkiln.plugin_host.host import HookHost

__all__ = ["AUTOLOAD_ENV", "GROUP", "autoload_disabled", "load_entry_point_plugins"]

GROUP = "torchkiln.plugins"
AUTOLOAD_ENV = "TORCHKILN_DISABLE_PLUGIN_AUTOLOAD"

_TRUE = {"1", "true", "yes", "on"}


def autoload_disabled(env: Mapping[str, str] = os.environ) -> bool:
    """Whether ``TORCHKILN_DISABLE_PLUGIN_AUTOLOAD`` turns entry-point plugins off."""
    return env.get(AUTOLOAD_ENV, "").strip().lower() in _TRUE


def _instantiate(obj: Any, name: str, dist: str, value: str) -> Any:
    if isinstance(obj, type):
        try:
            return obj()
        except Exception as exc:
            raise PluginError(
                f"plugin {name!r} from {dist}: {value} could not be built with no arguments: "
                f"{type(exc).__name__}: {exc}",
                where=f"entry point {name} = {value!r} (group {GROUP}, distribution {dist})",
                hint="a plugin class must build without arguments; or expose an instance",
            ) from exc
    if isinstance(obj, (types.FunctionType, types.BuiltinFunctionType, types.MethodType)):
        raise PluginError(
            f"plugin {name!r} from {dist}: {value} is a function, not a module, class or hook instance",
            where=f"entry point {name} = {value!r} (group {GROUP}, distribution {dist})",
            hint="point the entry point at the module that defines the hook functions",
        )
    return obj


def load_entry_point_plugins(
    host: HookHost, disabled: Collection[str] = frozenset(), env: Mapping[str, str] = os.environ
) -> list[tuple[str, str]]:
    """Import and register every enabled ``torchkiln.plugins`` entry point.

    :param host: the host to register them with.
    :param disabled: entry-point or distribution names to skip (``plugins.disable``).
    :param env: environment to read ``TORCHKILN_DISABLE_PLUGIN_AUTOLOAD`` from.
    :returns: ``(name, distribution)`` of each plugin registered, in load order.
    :raises PluginError: an entry point that fails to import or to build, or one whose name
        another plugin already uses.
    """
    if autoload_disabled(env):
        return []
    skip = {_index.normalise_dist(name) for name in disabled}
    loaded: list[tuple[str, str]] = []
    for ep in _index.entry_points_by_group().get(GROUP, []):
        dist_meta = getattr(ep, "dist", None)
        dist = dist_meta.name if dist_meta is not None else "unknown distribution"
        if _index.normalise_dist(ep.name) in skip or _index.normalise_dist(dist) in skip:
            continue
        existing = host.get_record(ep.name)
        if existing is not None and existing.dist == dist:
            continue  # loaded already (the host outlives one call)
        where = f"entry point {ep.name} = {ep.value!r} (group {GROUP}, distribution {dist})"
        try:
            obj = ep.load()
        except Exception as exc:
            raise PluginError(
                f"plugin {ep.name!r} from {dist} failed to import: {type(exc).__name__}: {exc}",
                where=where,
                hint=f"fix or reinstall {dist}, or skip it with `plugins: {{disable: [{ep.name}]}}` "
                f"or {AUTOLOAD_ENV}=1",
            ) from exc
        plugin = _instantiate(obj, ep.name, dist, ep.value)
        host.register(plugin, name=ep.name, dist=dist)
        loaded.append((ep.name, dist))
    return loaded
