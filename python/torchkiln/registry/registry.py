"""The Registry: names to components, filled by decorators, built-ins and entry points.

Lookup is lazy. A registry knows, without importing anything, which names the built-in
modules and the installed plugin distributions offer (``_index``); a component's module is
imported only when that name is first asked for. ``scope::Name`` picks one provider when two
offer the same name; ``type`` may also be a dotted import path (``pkg.mod.Class`` or
``pkg.mod:Class``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, MutableMapping, Sequence
from contextlib import contextmanager
from typing import Any

from torchkiln.errors import BuildError, BuildKeyError, PluginError, did_you_mean
from torchkiln.registry import _index
from torchkiln.registry._keys import (
    SCOPE_SEP,
    import_dotted,
    import_scope_registry,
    import_target,
    infer_scope,
    scope_key,
    scope_of,
)
from torchkiln.registry.default_scope import DefaultScope, current_scope_name

_import_target = import_target  # the name tests and older callers import from here

__all__ = ["SCOPE_SEP", "Registry", "scope_key"]


class Registry:
    """A named mapping from component names to classes or functions, possibly in a tree.

    A registry without ``parent`` is a root: it also offers what installed distributions
    declare as entry points in ``entry_point_group`` (lazily), each under its distribution's
    scope. A registry with ``parent`` is a child with its own ``scope`` (a package such as
    ``mmdet``): a name it lacks is looked up in its parent, and its own names are visible from
    the root under its scope, like a distribution's. ``scope::Name`` (or MMEngine's
    ``scope.Name``) reaches any scope of the tree, siblings included.

    :param name: registry name, e.g. ``"models"``.
    :param build_func: replaces :func:`build_from_cfg` for this registry (a child inherits its
        parent's).
    :param parent: the registry this one falls back to, e.g. :data:`torchkiln.registry.MODELS`.
    :param scope: the scope of this registry; by default the top-level package of the module
        that creates it.
    :param locations: modules imported on the first lookup, so that their decorators fill
        this registry (``['mypkg.models']``).
    :param entry_point_group: the entry-point group a root registry reads, by default
        ``torchkiln.<name>``.
    :param fallback: called once on a root's first miss; may register more components (used
        by OPTIMIZERS to register every ``torch.optim`` optimizer without importing torch early).
    """

    def __init__(
        self,
        name: str,
        build_func: Callable[..., Any] | None = None,
        parent: Registry | None = None,
        scope: str | None = None,
        locations: Sequence[str] | None = None,
        *,
        entry_point_group: str | None = None,
        fallback: Callable[[Registry], None] | None = None,
    ) -> None:
        if parent is not None and not isinstance(parent, Registry):
            raise TypeError(f"parent must be a Registry or None, got {type(parent).__name__}")
        if scope is not None and (not isinstance(scope, str) or not scope):
            raise TypeError(f"scope must be a non-empty str or None, got {scope!r}")
        if isinstance(locations, str):
            locations = [locations]
        self.name = name
        self._scope = scope if scope is not None else infer_scope(1)
        self._scope_key = scope_key(self._scope)
        self.parent = parent
        self._children: dict[str, Registry] = {}
        self._locations = list(locations or [])
        self._imported = False
        self.entry_point_group: str = entry_point_group or (
            parent.entry_point_group if parent is not None else f"torchkiln.{name}"
        )
        self.build_func: Callable[..., Any]
        if build_func is not None:
            self.build_func = build_func
        elif parent is not None:
            self.build_func = parent.build_func
        else:
            from torchkiln.registry.build_functions import build_from_cfg

            self.build_func = build_from_cfg
        self._fallback = fallback
        self._fallback_done = False
        # name -> scope -> object, for components already imported (a child: its scope only).
        self._entries: dict[str, dict[str, Any]] = {}
        # names registered with force=True shadow every other scope.
        self._forced: dict[str, Any] = {}
        if parent is not None:
            parent._add_child(self)

    # ------------------------------------------------------------------ the tree
    @property
    def scope(self) -> str:
        """This registry's scope, as it was given or inferred."""
        return self._scope

    @property
    def children(self) -> dict[str, Registry]:
        """The direct children, by scope."""
        return self._children

    @property
    def root(self) -> Registry:
        """The registry at the top of this one's tree."""
        return self._get_root_registry()

    def _get_root_registry(self) -> Registry:
        node = self
        while node.parent is not None:
            node = node.parent
        return node

    def _add_child(self, registry: Registry) -> None:
        """Attach ``registry`` as a child, under its scope (one child per scope)."""
        if not isinstance(registry, Registry):
            raise TypeError(f"a child must be a Registry, got {type(registry).__name__}")
        for existing in self._children.values():
            if existing._scope_key == registry._scope_key:
                raise ValueError(
                    f"registry {self.name!r} already has a child with scope {existing.scope!r}; "
                    f"give {registry.name!r} another scope"
                )
        self._children[registry.scope] = registry

    def _search_child(self, scope: str) -> Registry | None:
        """This registry or a descendant whose scope is ``scope`` (depth first), or None."""
        key = scope_key(scope)
        if self._scope_key == key:
            return self
        for child in self._children.values():
            found = child._search_child(key)
            if found is not None:
                return found
        return None

    def _descendants(self) -> Iterator[Registry]:
        for child in self._children.values():
            yield child
            yield from child._descendants()

    def import_from_location(self) -> None:
        """Import this registry's ``locations`` once (their decorators register components)."""
        if self._imported or not self._locations:
            return
        self._imported = True  # set first: a location may look names up while it imports
        for location in self._locations:
            try:
                importlib.import_module(location)
            except Exception as exc:
                self._imported = False
                raise PluginError(
                    f"registry {self.name!r} (scope {self.scope!r}) could not import its "
                    f"location {location!r}: {type(exc).__name__}: {exc}",
                    hint=f"fix or reinstall the package providing {location!r}, or correct "
                    "the registry's locations",
                ) from exc

    @contextmanager
    def switch_scope_and_registry(self, scope: str | None) -> Iterator[Registry]:
        """Make ``scope`` the default scope inside the block and yield the registry to build
        from: the one of this tree whose scope is the default scope, or this registry.

        ``None`` keeps the current default scope (MMEngine's ``_scope_`` handling).
        """
        with DefaultScope.overwrite_default_scope(scope):
            current = current_scope_name()
            registry = self
            if current is not None:
                root = self._get_root_registry()
                found = root._search_child(current)
                if found is None and import_scope_registry(current):
                    found = root._search_child(current)
                registry = found if found is not None else self
            yield registry

    @staticmethod
    def split_scope_key(key: str) -> tuple[str | None, str]:
        """``('scope', 'rest')`` of ``scope::rest`` or ``scope.rest``; ``(None, key)`` without one."""
        if SCOPE_SEP in key:
            scope, _, rest = key.partition(SCOPE_SEP)
            return scope, rest
        scope, dot, rest = key.partition(".")
        return (scope, rest) if dot else (None, key)

    # ------------------------------------------------------------------ registration
    def register_module(
        self,
        name: str | Sequence[str] | None = None,
        force: bool = False,
        module: Any = None,
    ) -> Any:
        """Register a class or function, as a decorator or a direct call.

        ``force=True`` replaces an existing registration (and, in a root, shadows the same
        name from other scopes); otherwise registering a name another provider already
        offers is a ``KeyError``.
        """
        if not isinstance(force, bool):
            raise TypeError(f"force must be True or False, got {type(force).__name__} {force!r}")
        valid_list = isinstance(name, (list, tuple)) and all(isinstance(n, str) for n in name)
        if name is not None and not isinstance(name, str) and not valid_list:
            raise TypeError(
                f"name must be None, a str or a list of str, got {type(name).__name__} {name!r}"
            )
        if module is not None:
            self._register(module, name, force)
            return module

        def decorator(obj: Any) -> Any:
            self._register(obj, name, force)
            return obj

        return decorator

    def _register(self, obj: Any, name: str | Sequence[str] | None, force: bool) -> None:
        if not callable(obj):
            raise TypeError(f"only classes and functions can be registered, got {obj!r}")
        if name is None:
            if not hasattr(obj, "__name__"):
                raise TypeError(f"{obj!r} has no __name__: register it with name=...")
            names = [obj.__name__]
        else:
            names = [name] if isinstance(name, str) else list(name)
        for key in names:
            scope = self._registration_scope(obj, key)
            scopes = self._entries.setdefault(key, {})
            if force:
                if self.parent is None:
                    self._forced[key] = obj
                scopes[scope] = obj
                continue
            existing = scopes.get(scope)
            if existing is not None and existing is not obj and not _same_definition(existing, obj):
                where = getattr(existing, "__module__", None) or scope
                raise KeyError(
                    f"{key} is already registered in {self.name} at {where} (scope {scope!r}); "
                    "pass force=True to replace it"
                )
            if self.parent is None and existing is None and scope not in self._indexed_scopes(key):
                others = (set(scopes) | self._indexed_scopes(key)) - {scope}
                if others:
                    raise KeyError(
                        f"{key!r} is already registered in {self.name} by {sorted(others)}; "
                        "pass force=True to replace it or choose another name"
                    )
            scopes[scope] = obj

    def _registration_scope(self, obj: Any, key: str) -> str:
        """The scope a decorator registration of ``obj`` as ``key`` belongs to.

        In a child registry, the child's scope. In a root, a plugin distribution's entry points
        are scoped by the distribution name, which may differ from the package name
        (``my-plugin-dist`` shipping ``mypkg``). When an entry point for ``key`` targets this
        very object, or, failing that, exactly one targets the object's top-level package (a
        re-export), its scope is used; otherwise the object's top-level package is the scope.
        """
        if self.parent is not None:
            return self._scope_key
        indexed = self._providers().get(key)
        if not indexed:
            return scope_key(scope_of(obj))
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
        return scope_key(package)

    # ------------------------------------------------------------------ what is known
    def _providers(self) -> dict[str, dict[str, str]]:
        """The entry-point index of a root (``{Name: {scope: target}}``); empty for a child."""
        if self.parent is not None:
            return {}
        return _index.providers(self.name, self.entry_point_group)

    def _indexed_scopes(self, name: str) -> set[str]:
        return set(self._providers().get(name, {}))

    def _own(self, name: str) -> Any:
        """What this child registry itself holds as ``name`` (locations imported), or None."""
        return self._entries.get(name, {}).get(self._scope_key)

    def _all_names(self) -> set[str]:
        return set(self._entries) | set(self._providers())

    def _scope_sources(
        self, name: str, descendants: bool = True
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Every scope offering ``name`` in a root, as ``(own, from_children)``: imported
        entries and entry points (their target string), and, with ``descendants``, the
        descendants' own registrations by their scope."""
        own: dict[str, Any] = dict(self._providers().get(name, {}))
        own.update(self._entries.get(name, {}))
        from_children: dict[str, Any] = {}
        for child in self._descendants() if descendants else ():
            obj = child._own(name)
            if obj is not None and child._scope_key not in own:
                from_children.setdefault(child._scope_key, obj)
        return own, from_children

    def _candidates(self, name: str, descendants: bool = True) -> list[str]:
        """The scopes offering ``name``, one per provider (sorted).

        A package that declares a child registry and also names its classes as entry points
        of its distribution offers them twice (the child's scope and the distribution's); the
        entry point whose target lies in the child's package is the same provider.
        """
        own, from_children = self._scope_sources(name, descendants)
        child_packages = {scope_of(obj) for obj in from_children.values()}
        kept = [
            scope
            for scope, source in own.items()
            if not (
                isinstance(source, str)
                and source.replace(":", ".").split(".", 1)[0] in child_packages
            )
        ]
        return sorted({*kept, *from_children})

    def _is_scope(self, scope: str) -> bool:
        """Whether ``scope`` names a scope of this registry's tree or one of its root's providers."""
        key = scope_key(scope)
        root = self._get_root_registry()
        if root._search_child(key) is not None:
            return True
        if any(key in scopes for scopes in root._entries.values()):
            return True
        if any(key in scopes for scopes in root._providers().values()):
            return True
        return import_scope_registry(scope) and root._search_child(key) is not None

    # ------------------------------------------------------------------ lookup
    def get(self, key: str | Any, default_scope: str | None = None) -> Any:
        """Return the component registered as ``key``.

        ``key`` is ``Name`` (looked up here, then in the parents; in a root, among every
        provider, the default scope deciding between several), ``scope::Name`` or
        ``scope.Name`` (any scope of the tree, or a distribution), or a dotted import path. A
        class or function is returned as it is.

        Raises :class:`BuildError` (unknown or ambiguous name) or :class:`PluginError` (the
        providing plugin failed to import).
        """
        if not isinstance(key, str):
            if callable(key):
                return key
            raise TypeError(f"a registry key must be a str, got {type(key).__name__} {key!r}")
        found = self._find(key, default_scope)
        if found is not None:
            return found
        raise self._not_found(key)

    def _find(self, key: str, prefer: str | None) -> Any:
        """The component ``key`` names, or None; raises only for ambiguity or a broken plugin."""
        self.import_from_location()
        scope, rest = self._split(key)
        found = self._find_name(key, prefer) if scope is None else self._find_in_scope(scope, rest)
        if found is None and SCOPE_SEP not in key and ("." in key or ":" in key):
            found = import_dotted(key)
        return found

    def _split(self, key: str) -> tuple[str | None, str]:
        """Like :meth:`split_scope_key`, but ``a.b`` is scoped only when ``a`` is a known scope
        (otherwise it is an import path)."""
        scope, rest = self.split_scope_key(key)
        if scope is None or SCOPE_SEP in key:
            return scope, rest
        return (scope, rest) if scope and self._is_scope(scope) else (None, key)

    def _find_name(self, name: str, prefer: str | None, descendants: bool = True) -> Any:
        """``name`` here, then up the parents; a root asked directly also sees its
        descendants' names (a child's miss does not wander into its siblings)."""
        if self.parent is not None:
            own = self._own(name)
            if own is not None:
                return own
            return self.parent._find_name(name, prefer, descendants=False)
        if name in self._forced:
            return self._forced[name]
        candidates = self._candidates(name, descendants)
        if not candidates and self._run_fallback():
            candidates = self._candidates(name, descendants)
        if not candidates and descendants:
            # the default scope's package may declare its registries in a module nothing
            # has imported yet (``default_scope: mmdet`` and ``mmdet.registry``)
            scope = prefer or _index.default_scope()
            if scope is not None:
                import_scope_registry(scope)
            for child in list(self._descendants()):
                child.import_from_location()
            candidates = self._candidates(name, descendants)
        if not candidates:
            return None
        if len(candidates) == 1:
            return self._realize(name, candidates[0])
        preferred = prefer or _index.default_scope()
        if preferred is not None and scope_key(preferred) in candidates:
            return self._realize(name, scope_key(preferred))
        raise BuildKeyError(
            f"{name!r} in {self.name} is offered by more than one distribution: {', '.join(candidates)}",
            hint="pick one with 'scope::Name', e.g. "
            + ", ".join(f"'{c}::{name}'" for c in candidates),
        )

    def _find_in_scope(self, scope: str, rest: str) -> Any:
        key = scope_key(scope)
        if key == self._scope_key:
            return self._own(rest) if self.parent is not None else self._realize(rest, key)
        for child in self._children.values():
            if child._scope_key == key:
                return child._find(rest, None)
        root = self._get_root_registry()
        if root is not self:
            return root._find_in_scope(scope, rest)
        holder = self._search_child(key)
        if holder is None and import_scope_registry(scope):
            holder = self._search_child(key)
        if holder is not None:
            return holder._find(rest, None)
        return self._realize(rest, key)

    def _realize(self, name: str, scope: str) -> Any:
        """Root only: the object ``scope`` offers as ``name``, importing its entry point if
        needed; None when that scope does not offer it."""
        realized = self._entries.get(name, {}).get(scope)
        if realized is not None:
            return realized
        holder = self._search_child(scope)
        if holder is not None and holder is not self:
            holder.import_from_location()
            found = holder._own(name)
            if found is not None:
                return found
        target = self._providers().get(name, {}).get(scope)
        if target is None:
            return None
        try:
            obj = import_target(target)
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

    def _not_found(self, key: str) -> BuildKeyError:
        """The error for a key nothing offers, as the user wrote it."""
        scope, rest = self._split(key)
        if scope is None and SCOPE_SEP not in key and ("." in key or ":" in key):
            return BuildKeyError(
                f"cannot import {key!r} for registry {self.name}",
                hint="a dotted type must name an importable object, e.g. 'torch.nn.Linear', "
                "or start with a known scope, e.g. 'torchkiln::Name'",
            )
        if scope is not None:
            root = self._get_root_registry()
            offered_by = root._candidates(rest) if SCOPE_SEP not in rest else []
            if offered_by:
                return BuildKeyError(
                    f"{rest!r} in {self.name} is not offered by {scope!r}",
                    hint="offered by: " + ", ".join(offered_by),
                )
        return self._unknown(key)

    def _unknown(self, key: str) -> BuildKeyError:
        root = self._get_root_registry()
        if root._fallback is not None:
            root._run_fallback()
        names = sorted(self._visible_names())
        suggestion = did_you_mean(key.rpartition(SCOPE_SEP)[2].rpartition(".")[2], names)
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

    def _visible_names(self) -> set[str]:
        """Names a bare lookup here can find: this registry's, its parents' and, from a root,
        its descendants'."""
        names: set[str] = set()
        node: Registry | None = self
        while node is not None:
            names |= set(node._entries) if node.parent is not None else node._all_names()
            node = node.parent
        if self.parent is None:
            for child in self._descendants():
                names |= set(child._entries)
        return names

    # ------------------------------------------------------------------ building
    def build(self, cfg: Any, *args: Any, **kwargs: Any) -> Any:
        """Build a component from ``{type: Name, **kwargs}`` with this registry's build function
        (``default_args`` fill missing keys)."""
        return self.build_func(cfg, *args, **kwargs, registry=self)

    # ------------------------------------------------------------------ introspection
    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        if SCOPE_SEP in key or "." in key:
            try:
                return self._find(key, None) is not None
            except (BuildError, PluginError):
                return True  # ambiguous or broken: offered, all the same
        node = self
        while node.parent is not None:
            if node._own(key) is not None:
                return True
            node = node.parent
        return key in node._forced or bool(node._candidates(key, descendants=node is self))

    def __len__(self) -> int:
        return len(self._all_names())

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._all_names()))

    def names(self) -> list[str]:
        """Every name this registry itself offers, imported or not, sorted."""
        return sorted(self._all_names())

    @property
    def module_dict(self) -> MutableMapping[str, Any]:
        """Names already imported, to their component (MMEngine compatibility).

        A live view: ``module_dict.pop(name)`` (or ``del``) forgets the registration, as
        tests written for MMEngine do in their ``tearDown``; ``module_dict[name] = cls``
        registers ``cls`` with ``force=True``.
        """
        if self.parent is not None:
            self.import_from_location()
        return _ModuleDict(self)

    def _imported_components(self) -> dict[str, Any]:
        """Snapshot of the names already imported, to their component."""
        out = {
            name: scopes.get(self._scope_key, next(iter(scopes.values())))
            for name, scopes in self._entries.items()
            if scopes
        }
        out.update(self._forced)
        return out

    def _forget(self, name: str) -> None:
        """Drop every registration of ``name`` made in this process (entry points stay)."""
        if name not in self._entries and name not in self._forced:
            raise KeyError(name)
        self._entries.pop(name, None)
        self._forced.pop(name, None)

    def __repr__(self) -> str:
        parent = f", parent={self.parent.name!r}" if self.parent is not None else ""
        return f"Registry(name={self.name!r}, scope={self.scope!r}{parent}, items={len(self)})"


def _same_definition(a: Any, b: Any) -> bool:
    """True when a module re-executes (e.g. reloaded) and registers an equal definition.

    Definitions local to a function (``<locals>`` in the qualified name) are never the same:
    two of them with one name are two components.
    """
    qualname = getattr(a, "__qualname__", None)
    return (
        qualname is not None
        and "<locals>" not in qualname
        and qualname == getattr(b, "__qualname__", None)
        and getattr(a, "__module__", None) == getattr(b, "__module__", None)
    )


class _ModuleDict(MutableMapping[str, Any]):
    """:attr:`Registry.module_dict`: the imported names, where removing one unregisters it."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    def __getitem__(self, name: str) -> Any:
        return self._registry._imported_components()[name]

    def __setitem__(self, name: str, obj: Any) -> None:
        self._registry.register_module(name=name, force=True, module=obj)

    def __delitem__(self, name: str) -> None:
        self._registry._forget(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._registry._imported_components())

    def __len__(self) -> int:
        return len(self._registry._imported_components())

    def __repr__(self) -> str:
        return repr(self._registry._imported_components())
