"""The Registry: names to components, filled by decorators, built-ins and entry points.

Lookup is lazy. A registry knows, without importing anything, which names the built-in
modules and the installed plugin distributions offer (``_index``); a component's module is
imported only when that name is first asked for. ``scope::Name`` picks one provider when two
offer the same name; ``type`` may also be a dotted import path (``pkg.mod.Class`` or
``pkg.mod:Class``).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from torchkiln.errors import (
    BuildKeyError,
    BuildTypeError,
    PluginError,
    add_note,
    did_you_mean,
)
from torchkiln.registry import _index

__all__ = ["Registry", "build_from_cfg", "check_kwargs", "signature_params"]

SCOPE_SEP = "::"


def _scope_of(obj: Any) -> str:
    """The scope of an object registered by decorator: its top-level package name."""
    module = getattr(obj, "__module__", None) or "__main__"
    return module.split(".", 1)[0]


def _import_target(target: str) -> Any:
    """Import ``pkg.mod:attr`` or ``pkg.mod.attr`` and return the attribute."""
    if ":" in target:
        module_name, _, attr = target.partition(":")
    else:
        module_name, _, attr = target.rpartition(".")
    module = importlib.import_module(module_name)
    obj: Any = module
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


class Registry:
    """A named mapping from component names to classes or functions.

    :param name: registry name, e.g. ``"models"``.
    :param entry_point_group: the entry-point group plugins fill, e.g. ``torchkiln.models``.
    :param build_func: replaces :func:`build_from_cfg` for this registry.
    :param fallback: called once on the first miss; may register more components (used by
        OPTIMIZERS to register every ``torch.optim`` optimizer without importing torch early).
    """

    def __init__(
        self,
        name: str,
        entry_point_group: str | None = None,
        build_func: Callable[..., Any] | None = None,
        fallback: Callable[[Registry], None] | None = None,
    ) -> None:
        self.name = name
        self.entry_point_group = entry_point_group or f"torchkiln.{name}"
        self.build_func = build_func or build_from_cfg
        self._fallback = fallback
        self._fallback_done = False
        # name -> scope -> object, for components already imported.
        self._entries: dict[str, dict[str, Any]] = {}
        # names registered with force=True shadow every other scope.
        self._forced: dict[str, Any] = {}

    # ------------------------------------------------------------------ registration
    def register_module(
        self,
        name: str | list[str] | None = None,
        force: bool = False,
        module: Any = None,
    ) -> Any:
        """Register a class or function, as a decorator or a direct call.

        ``force=True`` replaces an existing registration (and shadows the same name from
        other scopes); otherwise registering a name another provider already offers is a
        ``KeyError``.
        """
        if name is not None and not isinstance(name, (str, list, tuple)):
            raise TypeError(f"name must be None, a str or a list of str, got {type(name).__name__}")
        if module is not None:
            self._register(module, name, force)
            return module

        def decorator(obj: Any) -> Any:
            self._register(obj, name, force)
            return obj

        return decorator

    def _register(
        self, obj: Any, name: str | list[str] | tuple[str, ...] | None, force: bool
    ) -> None:
        if not callable(obj):
            raise TypeError(f"only classes and functions can be registered, got {obj!r}")
        names = [obj.__name__] if name is None else [name] if isinstance(name, str) else list(name)
        for key in names:
            scope = self._registration_scope(obj, key)
            scopes = self._entries.setdefault(key, {})
            if force:
                self._forced[key] = obj
                scopes[scope] = obj
                continue
            existing = scopes.get(scope)
            if existing is not None and existing is not obj and not _same_definition(existing, obj):
                raise KeyError(
                    f"{key!r} is already registered in {self.name} by {scope!r}; pass force=True to replace it"
                )
            if existing is None and scope not in self._indexed_scopes(key):
                others = (set(scopes) | self._indexed_scopes(key)) - {scope}
                if others:
                    raise KeyError(
                        f"{key!r} is already registered in {self.name} by {sorted(others)}; "
                        "pass force=True to replace it or choose another name"
                    )
            scopes[scope] = obj

    def _registration_scope(self, obj: Any, key: str) -> str:
        """The scope a decorator registration of ``obj`` as ``key`` belongs to.

        A plugin distribution's entry points are scoped by the distribution name, which may
        differ from the package name (``my-plugin-dist`` shipping ``mypkg``). When an entry
        point for ``key`` targets this very object, or, failing that, exactly one targets the
        object's top-level package (a re-export), its scope is used; otherwise the object's
        top-level package is the scope.
        """
        indexed = _index.providers(self.name, self.entry_point_group).get(key)
        if not indexed:
            return _scope_of(obj)
        module = getattr(obj, "__module__", None) or "__main__"
        own = f"{module}.{getattr(obj, '__qualname__', getattr(obj, '__name__', ''))}"
        package = module.split(".", 1)[0]
        same_package = []
        for scope, target in indexed.items():
            dotted = target.replace(":", ".")
            if dotted == own:
                return scope
            if dotted.split(".", 1)[0] == package:
                same_package.append(scope)
        if len(same_package) == 1:
            return same_package[0]
        return package

    # ------------------------------------------------------------------ lookup
    def _indexed_scopes(self, name: str) -> set[str]:
        return set(_index.providers(self.name, self.entry_point_group).get(name, {}))

    def _all_names(self) -> set[str]:
        names = set(self._entries) | set(_index.providers(self.name, self.entry_point_group))
        return names

    def get(self, key: str | Any, default_scope: str | None = None) -> Any:
        """Return the component registered as ``key`` (``Name``, ``scope::Name`` or a dotted path).

        Raises :class:`BuildError` (unknown or ambiguous name) or :class:`PluginError` (the
        providing plugin failed to import).
        """
        if not isinstance(key, str):
            return key
        scope, _, short = key.rpartition(SCOPE_SEP)
        if scope:
            return self._get_scoped(short, scope, key)
        if short in self._forced:
            return self._forced[short]
        candidates = self._candidates(short)
        if not candidates and ("." in short or ":" in short):
            try:
                return _import_target(short)
            except (ImportError, AttributeError) as exc:
                raise BuildKeyError(
                    f"cannot import {short!r} for registry {self.name}: {exc}",
                    hint="a dotted type must name an importable object, e.g. 'torch.nn.Linear'",
                ) from None
        if not candidates and self._run_fallback():
            candidates = self._candidates(short)
        if not candidates:
            raise self._unknown(short)
        if len(candidates) == 1:
            return self._get_scoped(short, candidates[0], key)
        scope_pref = default_scope or _index.default_scope()
        if scope_pref in candidates:
            return self._get_scoped(short, scope_pref, key)
        raise BuildKeyError(
            f"{short!r} in {self.name} is offered by more than one distribution: {', '.join(candidates)}",
            hint="pick one with 'scope::Name', e.g. "
            + ", ".join(f"'{c}::{short}'" for c in candidates),
        )

    def _candidates(self, name: str) -> list[str]:
        scopes = set(self._entries.get(name, {})) | self._indexed_scopes(name)
        return sorted(scopes)

    def _get_scoped(self, name: str, scope: str, key: str) -> Any:
        realized = self._entries.get(name, {}).get(scope)
        if realized is not None:
            return realized
        target = _index.providers(self.name, self.entry_point_group).get(name, {}).get(scope)
        if target is None:
            if scope and name in self._all_names():
                raise BuildKeyError(
                    f"{name!r} in {self.name} is not offered by {scope!r}",
                    hint="offered by: " + ", ".join(self._candidates(name)),
                )
            raise self._unknown(key)
        try:
            obj = _import_target(target)
        except Exception as exc:  # a broken plugin must name itself
            raise PluginError(
                f"plugin {scope!r} failed to load {name!r} for {self.name} from {target!r}: "
                f"{type(exc).__name__}: {exc}",
                hint=f"reinstall or fix the distribution {scope!r}, or pick another provider",
            ) from exc
        # The import may have registered it by decorator; keep what it registered.
        realized = self._entries.get(name, {}).get(scope)
        if realized is None:
            self._entries.setdefault(name, {})[scope] = obj
            realized = obj
        return realized

    def _run_fallback(self) -> bool:
        if self._fallback is None or self._fallback_done:
            return False
        self._fallback_done = True
        self._fallback(self)
        return True

    def _unknown(self, key: str) -> BuildKeyError:
        if self._fallback is not None:
            self._run_fallback()
        names = sorted(self._all_names())
        suggestion = did_you_mean(key.rpartition(SCOPE_SEP)[2], names)
        dists = _index.distributions()
        hint_parts = []
        if suggestion:
            hint_parts.append(suggestion)
        hint_parts.append(
            f"known {self.name}: "
            + (", ".join(names[:30]) + (" ..." if len(names) > 30 else "") or "none")
        )
        hint_parts.append("installed plugin distributions: " + (", ".join(dists) or "none"))
        if not _index.builtins_installed():
            hint_parts.append(
                "torchkiln's own components are declared as entry points of its installed "
                "distribution, and none are installed: reinstall torchkiln (`make setup`, or "
                "`pip install -e .` in its source tree)"
            )
        return BuildKeyError(
            f"unknown type {key!r} in registry {self.name}", hint="; ".join(hint_parts)
        )

    # ------------------------------------------------------------------ building
    def build(
        self,
        cfg: Mapping[str, Any] | Any,
        default_args: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Build a component from ``{type: Name, **kwargs}``; ``default_args`` fill missing keys."""
        return self.build_func(cfg, self, default_args=default_args, **kwargs)

    # ------------------------------------------------------------------ introspection
    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        scope, _, short = key.rpartition(SCOPE_SEP)
        if scope:
            return scope in self._candidates(short)
        return short in self._forced or bool(self._candidates(short))

    def __len__(self) -> int:
        return len(self._all_names())

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._all_names()))

    def names(self) -> list[str]:
        """Every known name, imported or not, sorted."""
        return sorted(self._all_names())

    @property
    def module_dict(self) -> dict[str, Any]:
        """Names already imported, to their component (MMEngine compatibility)."""
        out = {
            name: next(iter(scopes.values())) for name, scopes in self._entries.items() if scopes
        }
        out.update(self._forced)
        return out

    def __repr__(self) -> str:
        return f"Registry(name={self.name!r}, items={len(self)})"


def _same_definition(a: Any, b: Any) -> bool:
    """True when a module re-executes (e.g. reloaded) and registers an equal definition."""
    return getattr(a, "__qualname__", None) == getattr(b, "__qualname__", None) and getattr(
        a, "__module__", None
    ) == getattr(b, "__module__", None)


def build_from_cfg(
    cfg: Mapping[str, Any] | Any,
    registry: Registry,
    default_args: Mapping[str, Any] | None = None,
) -> Any:
    """Build ``cfg['type']`` from ``registry`` with the remaining keys as keyword arguments.

    ``_scope_`` (MMEngine's per-component scope) picks the provider when several offer the
    type, and is the default scope while the constructor runs.

    Unknown keyword arguments are reported before the constructor runs, with a suggestion;
    an exception inside the constructor keeps its traceback and gains a note naming the
    component.
    """
    if not isinstance(cfg, Mapping):
        raise BuildTypeError(
            f"cannot build a {registry.name} component from {type(cfg).__name__} {cfg!r}",
            hint="give a dict with a 'type' key",
        )
    args = dict(cfg)
    if default_args:
        for key, value in default_args.items():
            args.setdefault(key, value)
    if "type" not in args:
        raise BuildKeyError(
            f"a {registry.name} config needs a 'type' key, got keys {sorted(args)}",
            hint=f"add type: <Name> (see `torchkiln plugins` for the names in {registry.name})",
        )
    obj_type = args.pop("type")
    scope = args.pop("_scope_", None)
    if scope is not None and not isinstance(scope, str):
        raise BuildTypeError(
            f"'_scope_' must be a scope name, got {type(scope).__name__} {scope!r}",
            hint="e.g. _scope_: mmdet",
        )
    obj_cls = registry.get(obj_type, default_scope=scope)
    type_name = getattr(obj_cls, "__name__", repr(obj_cls))
    check_kwargs(obj_cls, args, f"{registry.name}.{type_name}")
    # the component's own scope is preferred for what its constructor builds, too
    previous = _index.default_scope()
    if scope is not None:
        _index.set_default_scope(scope)
    try:
        return obj_cls(**args)
    except Exception as exc:
        add_note(exc, f"while building {type_name} from registry {registry.name}")
        raise
    finally:
        if scope is not None:
            _index.set_default_scope(previous)


def signature_params(obj: Any) -> tuple[list[str], bool, dict[str, Any]] | None:
    """What ``obj`` (a class or function) accepts by keyword, or None if it has no signature.

    :returns: ``(names, has_var_kw, defaults)``: the parameters that can be passed by
        keyword in order, whether ``**kwargs`` is accepted, and the defaults of those that
        have one.
    """
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    names: list[str] = []
    defaults: dict[str, Any] = {}
    var_kw = False
    for name, p in sig.parameters.items():
        if p.kind is p.VAR_KEYWORD:
            var_kw = True
        elif p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            names.append(name)
            if p.default is not p.empty:
                defaults[name] = p.default
    return names, var_kw, defaults


def check_kwargs(obj_cls: Any, kwargs: Mapping[str, Any], what: str) -> None:
    """Raise :class:`BuildError` if ``kwargs`` cannot bind to ``obj_cls``'s signature."""
    found = signature_params(obj_cls)
    if found is None:
        return
    accepted, var_kw, defaults = found
    if var_kw:
        return
    for key in kwargs:
        if key not in accepted:
            raise BuildTypeError(
                f"{what} got an unexpected argument {key!r}",
                hint=(did_you_mean(key, accepted) or "")
                + f" accepted: {', '.join(accepted) or 'none'}",
            )
    missing = [n for n in accepted if n not in defaults and n not in kwargs]
    if missing:
        raise BuildTypeError(f"{what} is missing required argument(s): {', '.join(missing)}")
