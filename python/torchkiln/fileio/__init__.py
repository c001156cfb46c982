"""File access through storage backends: local files and Petrel (``s3://``) built in, others by
registration.

``get_file_backend(path)`` returns the backend for a path or URI; the module-level helpers
(``get``, ``put``, ``exists``, ``load``, ``dump``, ...) use it. ``FileClient`` is MMEngine's
older front. Everything here is standard-library Python (Petrel's SDK is imported only when a
PetrelBackend is built), so it is imported directly.
"""

from __future__ import annotations

from torchkiln.fileio import io as _io
from torchkiln.fileio.backends import BaseStorageBackend, HardDiskBackend, LocalBackend
from torchkiln.fileio.file_client import FileClient
from torchkiln.fileio.io import *  # noqa: F403  (the helpers: exactly io.__all__)
from torchkiln.fileio.petrel_backend import PetrelBackend
from torchkiln.fileio.registry import get_file_backend, register_backend

__all__ = [
    "BaseStorageBackend",
    "FileClient",
    "HardDiskBackend",
    "LocalBackend",
    "PetrelBackend",
    "get_file_backend",
    "register_backend",
    *_io.__all__,
]
