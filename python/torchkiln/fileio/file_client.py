"""``FileClient``: MMEngine's older front to a storage backend, kept for code that uses it.

``FileClient('disk')`` (or ``FileClient(prefix=...)``, or :meth:`FileClient.infer_client`)
wraps a backend and forwards ``get``, ``get_text``, ``put``, ``exists``, ... to it. New code
can call :func:`torchkiln.fileio.get_file_backend` directly.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from torchkiln.fileio.backends import BaseStorageBackend
from torchkiln.fileio.petrel_backend import PetrelBackend
from torchkiln.fileio.registry import (
    BACKENDS,
    PREFIX_TO_BACKEND,
    get_file_backend,
    parse_uri_prefix,
    register_backend,
)

__all__ = ["FileClient", "PetrelBackend"]


class FileClient:
    """A storage client: the backend named ``backend`` or the one for URI ``prefix``.

    :param backend: a registered backend name (``'disk'``/``'local'`` and ``'petrel'`` built in).
    :param prefix: a URI prefix whose backend to use (``''`` or None: local files).
    :param kwargs: passed to the backend's constructor.
    :raises ValueError: an unknown backend name or prefix.
    """

    _backends = BACKENDS
    _prefix_to_backends = PREFIX_TO_BACKEND

    def __init__(
        self, backend: str | None = None, prefix: str | None = None, **kwargs: Any
    ) -> None:
        if backend is None and prefix:
            if prefix not in PREFIX_TO_BACKEND:
                raise ValueError(
                    f"no storage backend for the prefix {prefix!r}: local files, s3:// and "
                    "petrel:// are built in; register one with register_backend(..., prefixes=...)"
                )
            backend_args: dict[str, Any] = {"backend": _name_of(PREFIX_TO_BACKEND[prefix])}
        else:
            backend_args = {"backend": backend or "disk"}
        backend_args.update(kwargs)
        self.client: BaseStorageBackend = get_file_backend(backend_args=backend_args)

    @property
    def name(self) -> str:
        """The backend's class name."""
        return self.client.name

    @property
    def allow_symlink(self) -> bool:
        """Whether the backend may create symlinks."""
        return self.client.allow_symlink

    @staticmethod
    def parse_uri_prefix(uri: str | Path) -> str | None:
        """The scheme of ``uri``, or None for a local path."""
        return parse_uri_prefix(uri) or None

    @classmethod
    def infer_client(
        cls, file_client_args: dict[str, Any] | None = None, uri: str | Path | None = None
    ) -> FileClient:
        """A client from ``file_client_args`` when given, else from ``uri``'s prefix."""
        assert file_client_args is not None or uri is not None, (
            "infer_client needs file_client_args or uri"
        )
        if file_client_args is not None:
            return cls(**file_client_args)
        return cls(prefix=cls.parse_uri_prefix(uri))  # type: ignore[arg-type]

    @classmethod
    def register_backend(
        cls,
        name: str,
        backend: type[BaseStorageBackend] | None = None,
        force: bool = False,
        prefixes: str | list[str] | tuple[str, ...] | None = None,
    ) -> Any:
        """Register a backend class (see :func:`torchkiln.fileio.register_backend`)."""
        return register_backend(name, backend, force=force, prefixes=prefixes)

    def get(self, filepath: str | Path) -> bytes:
        """The bytes of ``filepath``."""
        return self.client.get(filepath)

    def get_text(self, filepath: str | Path, encoding: str = "utf-8") -> str:
        """The text of ``filepath``."""
        return self.client.get_text(filepath, encoding)

    def put(self, obj: bytes, filepath: str | Path) -> None:
        """Write bytes to ``filepath``."""
        self._backend_call("put", obj, filepath)

    def put_text(self, obj: str, filepath: str | Path) -> None:
        """Write text to ``filepath``."""
        self._backend_call("put_text", obj, filepath)

    def remove(self, filepath: str | Path) -> None:
        """Delete ``filepath``."""
        self._backend_call("remove", filepath)

    def exists(self, filepath: str | Path) -> bool:
        """Whether ``filepath`` exists."""
        return bool(self._backend_call("exists", filepath))

    def isdir(self, filepath: str | Path) -> bool:
        """Whether ``filepath`` is a folder."""
        return bool(self._backend_call("isdir", filepath))

    def isfile(self, filepath: str | Path) -> bool:
        """Whether ``filepath`` is a file."""
        return bool(self._backend_call("isfile", filepath))

    def join_path(self, filepath: str | Path, *filepaths: str | Path) -> str:
        """The parts joined the backend's way."""
        return str(self._backend_call("join_path", filepath, *filepaths))

    @contextmanager
    def get_local_path(self, filepath: str | Path) -> Generator[str | Path, None, None]:
        """A local path holding ``filepath``'s content, for the ``with`` block."""
        with self._backend_call("get_local_path", filepath) as path:
            yield path

    def list_dir_or_file(
        self,
        dir_path: str | Path,
        list_dir: bool = True,
        list_file: bool = True,
        suffix: str | tuple[str, ...] | None = None,
        recursive: bool = False,
    ) -> Iterator[str]:
        """Relative paths of the folders and/or files under ``dir_path``."""
        return self._backend_call(
            "list_dir_or_file", dir_path, list_dir, list_file, suffix, recursive
        )

    def _backend_call(self, method: str, *args: Any) -> Any:
        function = getattr(self.client, method, None)
        if function is None:
            raise NotImplementedError(f"the {self.name} storage backend has no {method}")
        return function(*args)


def _name_of(cls: type[BaseStorageBackend]) -> str:
    return next(name for name, registered in BACKENDS.items() if registered is cls)
