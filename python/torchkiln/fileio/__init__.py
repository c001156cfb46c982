"""File access through storage backends: local files built in, others by registration.

``get_file_backend(path)`` returns the backend for a path or URI; the module-level helpers
(``get``, ``put``, ``exists``, ``load``, ``dump``, ...) use it. ``FileClient`` is MMEngine's
older front. Names resolve lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torchkiln._lazy import lazy_exports

_IO = "torchkiln.fileio.io"
_BACKENDS = "torchkiln.fileio.backends"
_REGISTRY = "torchkiln.fileio.registry"

_EXPORTS: dict[str, str] = {
    "BaseStorageBackend": _BACKENDS,
    "HardDiskBackend": _BACKENDS,
    "LocalBackend": _BACKENDS,
    "FileClient": "torchkiln.fileio.file_client",
    "get_file_backend": _REGISTRY,
    "register_backend": _REGISTRY,
    **{
        name: _IO
        for name in (
            "copyfile",
            "copytree",
            "dict_from_file",
            "dump",
            "exists",
            "get",
            "get_local_path",
            "get_text",
            "isdir",
            "isfile",
            "join_path",
            "list_dir_or_file",
            "list_from_file",
            "load",
            "put",
            "put_text",
            "remove",
            "rmtree",
        )
    },
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports("torchkiln.fileio", _EXPORTS, globals())


if TYPE_CHECKING:  # pragma: no cover
    from torchkiln.fileio.backends import (
        BaseStorageBackend as BaseStorageBackend,
        HardDiskBackend as HardDiskBackend,
        LocalBackend as LocalBackend,
    )
    from torchkiln.fileio.file_client import FileClient as FileClient
    from torchkiln.fileio.io import (
        copyfile as copyfile,
        copytree as copytree,
        dict_from_file as dict_from_file,
        dump as dump,
        exists as exists,
        get as get,
        get_local_path as get_local_path,
        get_text as get_text,
        isdir as isdir,
        isfile as isfile,
        join_path as join_path,
        list_dir_or_file as list_dir_or_file,
        list_from_file as list_from_file,
        load as load,
        put as put,
        put_text as put_text,
        remove as remove,
        rmtree as rmtree,
    )
    from torchkiln.fileio.registry import (
        get_file_backend as get_file_backend,
        register_backend as register_backend,
    )
