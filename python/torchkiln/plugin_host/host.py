"""The hook host: registers plugins with pluggy and owns the order they are called in.

pluggy validates every implementation against its hookspec and keeps the registry of
plugins (``host.pm``), but it calls last-registered-first with only ``tryfirst``/``trylast``
to steer. torchkiln orders by priority (0 first ... 100 last), then by registration, so the
host keeps, per mount point, an ordered tuple of *call entries* ``(record, function)``.
Which of the mount point's arguments an implementation takes is decided once, at
registration: ``function`` is the implementation itself when it takes all of them in order
(the common case), else a wrapper passing just what it takes. From the entries the host
builds the mount point's dispatch function (see :mod:`torchkiln.plugin_host.dispatch`) and
installs it on the facade.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import itertools
import sys
import sysconfig
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import pluggy

from torchkiln import hookspecs
from torchkiln.errors import PluginError, UsageError, did_you_mean
from torchkiln.hookspecs import MOUNT_POINTS, PROJECT_NAME
from torchkiln.plugin_host.discovery import (
    SPEC_ARGS,
    find_misspellings,
    impl_function,
    implemented_mount_points,
    unknown_mount_point,
)
from torchkiln.plugin_host.dispatch import build_dispatcher, select_arguments
from torchkiln.plugin_host.facade import HookFacade
from torchkiln.plugin_host.priority import get_priority

__all__ = ["CallEntry", "HookHost", "PluginRecord"]

_MOUNT_POINT_SET = frozenset(MOUNT_POINTS)

# (record, function): ``function(*args)`` runs the implementation with the mount point's
# full argument tuple (see dispatch.select_arguments).
CallEntry = tuple["PluginRecord", Callable[..., Any]]


@dataclass(frozen=True, eq=False)
class PluginRecord:
    """One registered plugin: what it is, where it comes from, and when it runs.

    :param name: the unique registration name (class name, module name or entry-point name).
    :param plugin: the plugin object (a hook instance or a module).
    :param priority: numeric priority, 0 (first) to 100 (last).
    :param seq: registration sequence number, the tie-breaker.
    :param dist: the distribution that provided it, when known at registration
        (entry-point plugins); otherwise derived from the plugin's module, see :attr:`source`.
    :param mount_points: the mount points it implements, in lifecycle order.
    """

    name: str
    plugin: Any
    priority: int
    seq: int
    dist: str | None = None
    mount_points: tuple[str, ...] = field(default=())

    @property
    def type_name(self) -> str:
        """The plugin's class name, or its module name for a module plugin."""
        if isinstance(self.plugin, types.ModuleType):
            return self.plugin.__name__
        return type(self.plugin).__name__

    @property
    def label(self) -> str:
        """How messages name the plugin: its name, and its class when that differs."""
        return self.name if self.name == self.type_name else f"{self.name} ({self.type_name})"

    @property
    def module(self) -> str:
        """The module that defines the plugin (or the module plugin itself)."""
        if isinstance(self.plugin, types.ModuleType):
            return self.plugin.__name__
        return type(self.plugin).__module__

    @property
    def source(self) -> str:
        """The distribution it comes from, ``'built-in'`` or ``'user code'``."""
        return self.dist or _source_of_module(self.module)


@cache
def _source_of_module(module_name: str) -> str:
    """Attribute a module: torchkiln itself, an installed distribution, or user code.

    Only modules that live under site-packages are looked up in the installed
    distributions (a top-level name like ``tests`` is shipped by careless wheels too).
    Called only when a message needs it: ``packages_distributions()`` scans every install.
    """
    top = module_name.partition(".")[0]
    if top == PROJECT_NAME:
        return "built-in"
    module = sys.modules.get(module_name)
    path = getattr(module, "__file__", None) or ""
    site_dirs = {sysconfig.get_paths()[key] for key in ("purelib", "platlib")}
    if path and any(path.startswith(d) for d in site_dirs):
        dists = importlib.metadata.packages_distributions().get(top)
        if dists:
            return ", ".join(sorted(set(dists)))
    return "user code"


def _impl_opts() -> dict[str, Any]:
    # A new dict per implementation: pluggy normalises it in place.
    return {
        "wrapper": False,
        "hookwrapper": False,
        "optionalhook": False,
        "tryfirst": False,
        "trylast": False,
        "specname": None,
    }


class _PluginManager(pluggy.PluginManager):
    """pluggy's manager, told that every function named after a mount point is a hook."""

    def parse_hookimpl_opts(self, plugin: Any, name: str) -> Any:
        if name not in _MOUNT_POINT_SET or impl_function(plugin, name) is None:
            return None
        return _impl_opts()


def _call_plan(
    function: Callable[..., Any], mount_point: str, where: str
) -> tuple[tuple[int, ...] | None, tuple[tuple[str, int], ...]]:
    """Which mount-point arguments ``function`` takes, and how to pass them.

    Arguments are matched by name, as pluggy does; any subset in any order works. A
    ``*args`` takes the remaining arguments in order, a ``**kwargs`` the remaining ones by
    name. Raises :class:`PluginError` for a required parameter the mount point never passes.
    """
    spec = SPEC_ARGS[mount_point]
    index = {name: i for i, name in enumerate(spec)}
    try:
        params = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):  # no signature: assume the full argument list
        return None, ()
    positional: list[int] = []
    keywords: list[tuple[str, int]] = []
    positional_open = True
    unknown = []
    for param in params:
        kind = param.kind
        if kind is param.VAR_POSITIONAL:
            if positional_open and positional == list(range(len(positional))):
                positional.extend(range(len(positional), len(spec)))
            positional_open = False
        elif kind is param.VAR_KEYWORD:
            used = set(positional) | {i for _, i in keywords}
            keywords.extend((name, i) for name, i in index.items() if i not in used)
        elif param.name in index:
            if kind is param.KEYWORD_ONLY or not positional_open:
                keywords.append((param.name, index[param.name]))
            else:
                positional.append(index[param.name])
        elif param.default is param.empty:
            unknown.append(param.name)
        else:
            positional_open = False  # a parameter of its own with a default: leave it alone
    if unknown:
        raise PluginError(
            f"{where}.{mount_point}() has parameter(s) {', '.join(map(repr, unknown))} that the "
            f"mount point does not pass",
            where=where,
            hint=f"arguments are matched by name: write {mount_point}({', '.join(spec)}) (after self in a "
            "class), or any subset of these names",
        )
    # None for every argument in order (called as is).
    if positional == list(range(len(spec))) and not keywords:
        return None, ()
    return tuple(positional), tuple(keywords)


class HookHost:
    """Registers hook plugins and keeps, per mount point, the ordered call list.

    Use :attr:`facade` (a :class:`~torchkiln.plugin_host.facade.HookFacade`) to call mount
    points; ``host.pm.hook.<name>(...)`` would call them in pluggy's order, not torchkiln's.
    """

    def __init__(self) -> None:
        self.pm = _PluginManager(PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self._records: dict[str, PluginRecord] = {}
        self._entries: dict[str, dict[str, CallEntry]] = {}  # plugin name -> mount point -> entry
        self._seq = itertools.count()
        self._calls: dict[str, tuple[CallEntry, ...]] = {name: () for name in MOUNT_POINTS}
        #: The facade the runner calls mount points through.
        self.facade = HookFacade()

    # ------------------------------------------------------------------ registration
    def register(
        self,
        plugin: Any,
        priority: int | str | None = None,
        name: str | None = None,
        dist: str | None = None,
    ) -> str:
        """Register a hook instance, an object with mount-point methods, or a module.

        :param plugin: the plugin; its functions named after mount points are its hooks.
        :param priority: overrides the plugin's own ``priority`` attribute (default NORMAL).
        :param name: registration name; default the class name (``Name-2``, ``Name-3`` for
            further instances) or the module name.
        :param dist: the distribution that provides it (set by the entry-point loader).
        :returns: the registration name.
        :raises PluginError: a misspelled mount point, parameters the mount point does not
            pass, or the same object or name registered twice.
        :raises ConfigError: an invalid priority.
        """
        if plugin is None or isinstance(plugin, type):
            what = f"the class {plugin.__name__}" if isinstance(plugin, type) else "None"
            raise PluginError(
                f"cannot register {what} as a hook plugin",
                hint="register an instance, e.g. register_hook(MyHook()), or a module",
            )
        name = self._name_for(plugin, name)
        where = f"plugin {name!r}"
        if any(record.plugin is plugin for record in self._records.values()):
            raise PluginError(
                f"{where}: this object is already registered",
                hint="register each hook instance once",
            )
        if priority is None:
            priority = getattr(plugin, "priority", None)
            if priority is None:
                priority = "NORMAL"
        numeric = get_priority(priority, where=where)
        typos = find_misspellings(plugin)
        if typos:
            raise PluginError(
                f"{where} defines {', '.join(repr(bad) for bad, _ in typos)}, which is not a mount point",
                where=where,
                hint=" ".join(f"did you mean {good!r}?" for _, good in typos)
                + " (helpers that are not hooks should start with '_')",
            )
        mount_points = tuple(implemented_mount_points(plugin))
        record = PluginRecord(
            name=name,
            plugin=plugin,
            priority=numeric,
            seq=next(self._seq),
            dist=dist,
            mount_points=mount_points,
        )
        plans = {mp: _call_plan(getattr(plugin, mp), mp, record.label) for mp in mount_points}
        try:
            self.pm.register(plugin, name=name)  # validation against the hookspecs
        except pluggy.PluginValidationError as exc:
            raise PluginError(
                f"{where} does not match the hook specification: {exc}", where=where
            ) from exc
        except ValueError as exc:
            raise PluginError(f"{where} cannot be registered: {exc}", where=where) from exc
        # Call exactly what pluggy bound, with the argument selection decided above.
        entries: dict[str, CallEntry] = {}
        for caller in self.pm.get_hookcallers(plugin) or ():
            for impl in caller.get_hookimpls():
                if impl.plugin is plugin:
                    entries[caller.name] = (
                        record,
                        select_arguments(impl.function, *plans[caller.name]),
                    )
        self._records[name] = record
        self._entries[name] = entries
        self._rebuild(mount_points)
        return name

    def unregister(self, name: str) -> Any:
        """Remove a plugin by registration name and return it.

        :raises UsageError: when no plugin has that name.
        """
        record = self._records.get(name)
        if record is None:
            raise UsageError(
                f"no plugin named {name!r} is registered",
                hint=did_you_mean(name, self._records) or "registered: " + ", ".join(self._records),
            )
        self.pm.unregister(plugin=record.plugin, name=name)
        del self._records[name]
        del self._entries[name]
        self._rebuild(record.mount_points)
        return record.plugin

    def _name_for(self, plugin: Any, name: str | None) -> str:
        if name is not None:
            if name in self._records:
                other = self._records[name]
                raise PluginError(
                    f"a plugin named {name!r} is already registered ({other.type_name} from "
                    f"{other.source})",
                    where=f"plugin {name!r}",
                    hint="give the new plugin another name, or disable one of the two",
                )
            return name
        base = plugin.__name__ if isinstance(plugin, types.ModuleType) else type(plugin).__name__
        candidate = base
        for k in itertools.count(2):
            if candidate not in self._records:
                return candidate
            candidate = f"{base}-{k}"
        raise AssertionError("unreachable")  # pragma: no cover

    def _rebuild(self, mount_points: tuple[str, ...]) -> None:
        ordered = sorted(self._records.values(), key=lambda r: (r.priority, r.seq))
        for mount_point in mount_points:
            calls = tuple(
                self._entries[r.name][mount_point]
                for r in ordered
                if mount_point in self._entries[r.name]
            )
            self._calls[mount_point] = calls
            self.facade.install(mount_point, build_dispatcher(mount_point, calls))

    # ------------------------------------------------------------------ introspection
    @property
    def call_table(self) -> dict[str, tuple[CallEntry, ...]]:
        """Mount point -> ordered call entries (do not modify)."""
        return self._calls

    def has_impls(self, mount_point: str) -> bool:
        """Whether any plugin implements ``mount_point`` (a dict lookup)."""
        calls = self._calls.get(mount_point)
        if calls is None:
            raise unknown_mount_point(mount_point)
        return bool(calls)

    def get_plugins(self) -> list[Any]:
        """The plugin objects, in priority order (ties: registration order)."""
        return [record.plugin for record in self.records()]

    def get_plugin(self, name: str) -> Any | None:
        """The plugin registered as ``name``, or ``None``."""
        record = self._records.get(name)
        return None if record is None else record.plugin

    def get_record(self, name: str) -> PluginRecord | None:
        """The registration called ``name`` (plugin, priority, distribution), or ``None``."""
        return self._records.get(name)

    def records(self) -> list[PluginRecord]:
        """Every registration, in priority order (ties: registration order)."""
        return sorted(self._records.values(), key=lambda r: (r.priority, r.seq))

    def call_order(self, mount_point: str) -> list[PluginRecord]:
        """The plugins called at ``mount_point``, in call order."""
        if mount_point not in self._calls:
            raise unknown_mount_point(mount_point)
        return [record for record, _ in self._calls[mount_point]]

    def __contains__(self, name: object) -> bool:
        return name in self._records

    def __len__(self) -> int:
        return len(self._records)

    def __repr__(self) -> str:
        return f"HookHost({', '.join(self._records)})"
