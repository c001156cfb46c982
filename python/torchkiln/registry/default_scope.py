"""The default scope: which provider's components a bare ``type: Name`` prefers.

MMEngine keeps it in named ``DefaultScope`` instances, the latest one being current; the
runner makes one from the ``default_scope`` config key and ``_scope_`` in a component dict
overrides it while that component is built. torchkiln keeps the same model, process-wide
(hooks and worker threads see the scope the runner set), guarded by a lock.
"""

from __future__ import annotations

import itertools
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar

__all__ = ["DefaultScope", "current_scope_name", "init_default_scope", "set_default_scope"]

ROOT_SCOPE = "torchkiln"

_lock = threading.RLock()
_serial = itertools.count()


class DefaultScope:
    """A named default scope; the one made or fetched last is current.

    :param name: the instance name (:meth:`get_instance` finds scopes by it).
    :param scope_name: the scope it selects: a distribution (``acme-kiln-zoo``), a package
        that declares child registries (``mmdet``) or ``torchkiln`` itself.
    """

    _instance_dict: ClassVar[dict[str, DefaultScope]] = {}
    _current: ClassVar[DefaultScope | None] = None

    def __init__(self, name: str, scope_name: str = ROOT_SCOPE) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"a DefaultScope needs a non-empty str name, got {name!r}")
        if not isinstance(scope_name, str) or not scope_name:
            raise TypeError(f"scope_name must be a non-empty str, got {scope_name!r}")
        self._instance_name = name
        self._scope_name = scope_name

    @property
    def instance_name(self) -> str:
        """The name this instance was made with."""
        return self._instance_name

    @property
    def scope_name(self) -> str:
        """The scope this instance selects, as it was written."""
        return self._scope_name

    @classmethod
    def get_instance(cls, name: str, **kwargs: str) -> DefaultScope:
        """The instance called ``name``, made with ``kwargs`` if new; it becomes current.

        Asking for an existing name with other arguments warns and returns it unchanged.
        """
        with _lock:
            found = cls._instance_dict.get(name)
            if found is None:
                found = cls._instance_dict[name] = cls(name, **kwargs)
            elif kwargs and kwargs.get("scope_name", found.scope_name) != found.scope_name:
                warnings.warn(
                    f"DefaultScope {name!r} exists with scope {found.scope_name!r}; "
                    f"the arguments {kwargs} are ignored",
                    stacklevel=2,
                )
            DefaultScope._current = found
            return found

    @classmethod
    def get_current_instance(cls) -> DefaultScope | None:
        """The current instance, or None when no default scope was ever set."""
        return DefaultScope._current

    @classmethod
    def check_instance_created(cls, name: str) -> bool:
        """Whether an instance called ``name`` exists."""
        return name in cls._instance_dict

    @classmethod
    @contextmanager
    def overwrite_default_scope(cls, scope_name: str | None) -> Iterator[None]:
        """Make ``scope_name`` current inside the block, then restore the previous one.

        ``None`` changes nothing (a component dict without ``_scope_``).
        """
        if scope_name is None:
            yield
            return
        with _lock:
            previous = DefaultScope._current
            DefaultScope._current = cls(f"overwrite-{next(_serial)}", scope_name=scope_name)
        try:
            yield
        finally:
            with _lock:
                DefaultScope._current = previous

    @classmethod
    def reset_instances(cls) -> None:
        """Forget every instance (between runs in one process, and in tests)."""
        with _lock:
            cls._instance_dict.clear()
            DefaultScope._current = None

    def __repr__(self) -> str:
        return f"DefaultScope(name={self._instance_name!r}, scope_name={self._scope_name!r})"


def current_scope_name() -> str | None:
    """The current default scope's name as written, or None."""
    current = DefaultScope._current
    return current.scope_name if current is not None else None


def set_default_scope(scope: str | None) -> None:
    """Make ``scope`` the default scope (the ``default_scope`` config key); ``None`` clears it."""
    with _lock:
        if scope is None:
            DefaultScope._current = None
        else:
            DefaultScope.get_instance(f"default_scope:{scope}", scope_name=scope)


def init_default_scope(scope: str) -> None:
    """Make ``scope`` the default scope unless it already is; warn when another was current.

    OpenMMLab packages call this from their inference APIs (``init_default_scope('mmdet')``).
    """
    current = current_scope_name()
    if current is not None and current != scope:
        warnings.warn(
            f"the default scope was {current!r} and is now {scope!r}; set default_scope in the "
            "config to choose it yourself",
            stacklevel=2,
        )
    if current != scope:
        set_default_scope(scope)
