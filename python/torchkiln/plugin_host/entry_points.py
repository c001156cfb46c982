"""Hook plugins from installed distributions: the ``torchkiln.plugins`` entry-point group.

A distribution declares, in its ``pyproject.toml``::

    [project.entry-points."torchkiln.plugins"]
    my_plugin = "my_pkg.hooks"              # a module: its mount-point functions are hooks
    my_hook = "my_pkg.hooks:MyHook"         # a Hook class (built with no arguments) or instance

They are registered at run start, and each run controls them (as pytest does):

- ``plugins: {disable: [name, ...]}`` in the config, or ``TORCHKILN_DISABLE_PLUGINS=a,b`` in
  the environment, skips plugins by entry-point or distribution name;
- ``TORCHKILN_DISABLE_PLUGIN_AUTOLOAD=1`` skips them all;
- ``plugins: {options: {name: {arg: value}}}`` builds a plugin that is a Hook class with these
  arguments (an unknown name is a config error);
- a Hook class that the config already lists (``custom_hooks`` or ``default_hooks``) is not
  registered a second time: the config's hook, with its arguments and priority, is the one.
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

__all__ = [
    "AUTOLOAD_ENV",
    "DISABLE_ENV",
    "GROUP",
    "autoload_disabled",
    "check_option_names",
    "load_entry_point_plugins",
]

GROUP = "torchkiln.plugins"
AUTOLOAD_ENV = "TORCHKILN_DISABLE_PLUGIN_AUTOLOAD"
DISABLE_ENV = "TORCHKILN_DISABLE_PLUGINS"

_TRUE = {"1", "true", "yes", "on"}


def autoload_disabled(env: Mapping[str, str] = os.environ) -> bool:
    """Whether ``TORCHKILN_DISABLE_PLUGIN_AUTOLOAD`` turns entry-point plugins off."""
    return env.get(AUTOLOAD_ENV, "").strip().lower() in _TRUE


def _instantiate(
    obj: Any, name: str, dist: str, value: str, options: Mapping[str, Any] | None
) -> Any:
    if isinstance(obj, type):
        try:
            return obj(**dict(options or {}))
        except Exception as exc:
            built = f"with {dict(options)}" if options else "with no arguments"
            raise PluginError(
                f"plugin {name!r} from {dist}: {value} could not be built {built}: "
                f"{type(exc).__name__}: {exc}",
                where=f"entry point {name} = {value!r} (group {GROUP}, distribution {dist})",
                hint=f"give its arguments with `plugins: {{options: {{{name}: {{...}}}}}}`, or disable it",
            ) from exc
    if options:
        raise PluginError(
            f"plugin {name!r} from {dist} is not a class, so plugins.options.{name} cannot configure it",
            where=f"plugins.options.{name}",
            hint="remove the options, or configure the plugin the way its documentation says",
        )
    if isinstance(obj, (types.FunctionType, types.BuiltinFunctionType, types.MethodType)):
        raise PluginError(
            f"plugin {name!r} from {dist}: {value} is a function, not a module, class or hook instance",
            where=f"entry point {name} = {value!r} (group {GROUP}, distribution {dist})",
            hint="point the entry point at the module that defines the hook functions",
        )
    return obj


def load_entry_point_plugins(
    host: HookHost,
    disabled: Collection[str] = frozenset(),
    env: Mapping[str, str] = os.environ,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[tuple[str, str]]:
    """Import and register every enabled ``torchkiln.plugins`` entry point.

    :param host: the host to register them with (the config's hooks already on it).
    :param disabled: entry-point or distribution names to skip (``plugins.disable``).
    :param env: environment to read ``TORCHKILN_DISABLE_PLUGIN_AUTOLOAD`` and
        ``TORCHKILN_DISABLE_PLUGINS`` from.
    :param options: arguments per plugin name for plugins that are Hook classes
        (``plugins.options``).
    :returns: ``(name, distribution)`` of each plugin registered, in load order.
    :raises PluginError: an entry point that fails to import or to build, or one whose name
        another plugin already uses.
    :raises ConfigError: ``options`` for a plugin that is not installed.
    """
    options = dict(options or {})
    available = _index.entry_points_by_group().get(GROUP, [])
    check_option_names(options, available)
    if autoload_disabled(env):
        return []
    from_env = [name.strip() for name in env.get(DISABLE_ENV, "").split(",") if name.strip()]
    skip = {_index.normalise_dist(name) for name in [*disabled, *from_env]}
    configured = {type(plugin) for plugin in host.get_plugins()}
    loaded: list[tuple[str, str]] = []
    for ep in available:
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
        if isinstance(obj, type) and obj in configured:
            continue  # the config lists this hook itself: that one, with its arguments, runs
        plugin = _instantiate(obj, ep.name, dist, ep.value, _options_for(ep.name, options))
        host.register(plugin, name=ep.name, dist=dist)
        loaded.append((ep.name, dist))
    return loaded


def _options_for(name: str, options: Mapping[str, Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The ``plugins.options`` entry of plugin ``name``, its key written in any spelling
    packaging treats as the same (``acme-plugin``, ``Acme_Plugin``)."""
    wanted = _index.normalise_dist(name)
    for key, value in options.items():
        if _index.normalise_dist(str(key)) == wanted:
            return value
    return None


def check_option_names(options: Mapping[str, Any], available: Any) -> None:
    """Every name in ``plugins.options`` is an installed hook plugin's entry-point name.

    :raises ConfigError: naming the unknown one, with a suggestion.
    """
    from torchkiln.errors import ConfigError, did_you_mean

    names = [ep.name for ep in available]
    known = {_index.normalise_dist(n) for n in names}
    for name in options:
        if _index.normalise_dist(str(name)) not in known:
            raise ConfigError(
                f"plugins.options names {name!r}, which is not an installed hook plugin",
                where=f"plugins.options.{name}",
                hint=did_you_mean(str(name), names)
                or f"installed: {', '.join(names) or 'none'} (see `torchkiln plugins`)",
            )
