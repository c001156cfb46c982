"""Storage backends by name and URI prefix: :func:`register_backend`, :func:`get_file_backend`.

A path without a ``scheme://`` prefix is a local file (:class:`LocalBackend`). A URI with a
prefix uses the backend registered for that prefix: ``s3://`` and ``petrel://`` go to
:class:`~torchkiln.fileio.PetrelBackend` (registered when :mod:`torchkiln.fileio` is imported);
another prefix is an error that says how to register a backend for it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from torchkiln.fileio.backends import BaseStorageBackend, LocalBackend

__all__ = ["get_file_backend", "parse_uri_prefix", "register_backend"]

# name -> backend class; prefix ('s3', 'http', ...) -> backend class
BACKENDS: dict[str, type[BaseStorageBackend]] = {"local": LocalBackend, "disk": LocalBackend}
PREFIX_TO_BACKEND: dict[str, type[BaseStorageBackend]] = {}
# one instance per (backend, arguments), as MMEngine shares clients
_INSTANCES: dict[str, BaseStorageBackend] = {}

# an optional 'cluster-name:' before the scheme (Petrel's way to name a cluster)
_PREFIX = re.compile(r"^(?:[^:/\s]+:)?([A-Za-z][A-Za-z0-9+.-]*)://")


def parse_uri_prefix(uri: str | Path) -> str:
    """The scheme of ``uri`` (``'s3'`` for ``'s3://bucket/x'`` and for
    ``'cluster-name:s3://bucket/x'``), or ``''`` for a local path."""
    match = _PREFIX.match(str(uri))
    return match.group(1) if match else ""


def register_backend(
    name: str,
    backend: type[BaseStorageBackend] | None = None,
    force: bool = False,
    prefixes: str | list[str] | tuple[str, ...] | None = None,
) -> Any:
    """Register a backend class under ``name`` (and URI ``prefixes``); a decorator without
    ``backend``.

    :raises TypeError: ``backend`` is not a :class:`BaseStorageBackend` subclass.
    :raises ValueError: the name or a prefix is taken and ``force`` is false.
    """

    def add(cls: type[BaseStorageBackend]) -> type[BaseStorageBackend]:
        if not (isinstance(cls, type) and issubclass(cls, BaseStorageBackend)):
            raise TypeError(f"backend must be a BaseStorageBackend subclass, got {cls!r}")
        if name in BACKENDS and not force:
            raise ValueError(f"{name} is already registered as a storage backend; pass force=True")
        wanted = [prefixes] if isinstance(prefixes, str) else list(prefixes or ())
        for prefix in wanted:
            if prefix in PREFIX_TO_BACKEND and not force:
                raise ValueError(
                    f"the prefix {prefix} is already registered to a storage backend; "
                    "pass force=True"
                )
        BACKENDS[name] = cls
        for prefix in wanted:
            PREFIX_TO_BACKEND[prefix] = cls
        _INSTANCES.clear()
        return cls

    if backend is not None:
        add(backend)
        return None
    return add


def get_file_backend(
    uri: str | Path | None = None, *, backend_args: dict[str, Any] | None = None
) -> BaseStorageBackend:
    """The backend for ``uri`` (by its prefix) or for ``backend_args['backend']`` (a name).

    :raises ValueError: the prefix or the name has no registered backend.
    """
    args = dict(backend_args or {})
    name = args.pop("backend", None)
    if name is not None:
        if name not in BACKENDS:
            raise ValueError(f"no storage backend named {name!r}; registered: {sorted(BACKENDS)}")
        cls = BACKENDS[name]
    else:
        prefix = parse_uri_prefix(uri) if uri is not None else ""
        if not prefix:
            cls = LocalBackend
        elif prefix in PREFIX_TO_BACKEND:
            cls = PREFIX_TO_BACKEND[prefix]
        else:
            raise ValueError(
                f"no storage backend for {uri}: local files, s3:// and petrel:// are built in; "
                f"register one with torchkiln.fileio.register_backend(name, backend, prefixes={prefix!r})"
            )
    key = f"{cls.__module__}.{cls.__qualname__}:{sorted(args.items())!r}"
    if key not in _INSTANCES:
        _INSTANCES[key] = cls(**args)
    return _INSTANCES[key]
