"""Storage backends: the interface (:class:`BaseStorageBackend`) and local files (:class:`LocalBackend`).

Local storage is built here; Petrel (``s3://``) is in :mod:`torchkiln.fileio.petrel_backend`,
and a backend for another store registers with
:func:`torchkiln.fileio.register_backend` and is picked by its URI prefix.
"""

from __future__ import annotations

import os
import shutil
from abc import ABC, abstractmethod
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["BaseStorageBackend", "HardDiskBackend", "LocalBackend"]


def check_listing_arguments(list_dir: bool, suffix: Any) -> None:
    """Refuse ``list_dir_or_file`` arguments no backend can honour.

    :raises TypeError: ``suffix`` with ``list_dir`` (a suffix selects files), or a
        ``suffix`` that is neither a string nor a tuple of strings.
    """
    if list_dir and suffix is not None:
        raise TypeError(
            "`list_dir` should be False when `suffix` is not None: a suffix selects files; "
            "pass list_dir=False with it"
        )
    if suffix is not None and not isinstance(suffix, (str, tuple)):
        raise TypeError(f"`suffix` must be a string or tuple of strings, got {suffix!r}")


class BaseStorageBackend(ABC):
    """A store of files addressed by path or URI: subclasses implement at least ``get`` and
    ``get_text``."""

    # MMEngine's flag: whether get_local_path may hand out a path that is only a symlink
    _allow_symlink = False

    @property
    def name(self) -> str:
        """The backend's class name."""
        return type(self).__name__

    @property
    def allow_symlink(self) -> bool:
        """Whether the backend's ``copyfile`` may create symlinks."""
        return self._allow_symlink

    @abstractmethod
    def get(self, filepath: str | Path) -> bytes:
        """The bytes of ``filepath``."""

    @abstractmethod
    def get_text(self, filepath: str | Path, encoding: str = "utf-8") -> str:
        """The text of ``filepath``."""


class LocalBackend(BaseStorageBackend):
    """Files on the local file system (paths, ``~`` expanded)."""

    _allow_symlink = True

    def get(self, filepath: str | Path) -> bytes:
        """The bytes of ``filepath``."""
        with open(os.path.expanduser(filepath), "rb") as fh:
            return fh.read()

    def get_text(self, filepath: str | Path, encoding: str = "utf-8") -> str:
        """The text of ``filepath``."""
        with open(os.path.expanduser(filepath), encoding=encoding) as fh:
            return fh.read()

    def put(self, obj: bytes, filepath: str | Path) -> None:
        """Write ``obj`` to ``filepath``, creating missing parent folders."""
        path = os.path.expanduser(filepath)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "wb") as fh:
            fh.write(obj)

    def put_text(self, obj: str, filepath: str | Path, encoding: str = "utf-8") -> None:
        """Write the text ``obj`` to ``filepath``, creating missing parent folders."""
        self.put(obj.encode(encoding), filepath)

    def exists(self, filepath: str | Path) -> bool:
        """Whether ``filepath`` exists (file or folder)."""
        return os.path.exists(os.path.expanduser(filepath))

    def isdir(self, filepath: str | Path) -> bool:
        """Whether ``filepath`` is a folder."""
        return os.path.isdir(os.path.expanduser(filepath))

    def isfile(self, filepath: str | Path) -> bool:
        """Whether ``filepath`` is a file."""
        return os.path.isfile(os.path.expanduser(filepath))

    def join_path(self, filepath: str | Path, *filepaths: str | Path) -> str:
        """``os.path.join`` of the parts."""
        return os.path.join(filepath, *filepaths)

    @contextmanager
    def get_local_path(self, filepath: str | Path) -> Generator[str | Path, None, None]:
        """The path itself (it is already local)."""
        yield filepath

    def remove(self, filepath: str | Path) -> None:
        """Delete the file ``filepath``.

        :raises FileNotFoundError: no such file. :raises IsADirectoryError: a folder.
        """
        path = os.path.expanduser(filepath)
        if not os.path.exists(path):
            raise FileNotFoundError(f"{filepath} does not exist")
        if os.path.isdir(path):
            raise IsADirectoryError(f"{filepath} is a folder, remove it with rmtree")
        os.remove(path)

    def rmtree(self, dir_path: str | Path) -> None:
        """Delete the folder ``dir_path`` and everything in it."""
        shutil.rmtree(os.path.expanduser(dir_path))

    def copyfile(self, src: str | Path, dst: str | Path) -> str | Path:
        """Copy the file ``src`` to ``dst`` (a file or a folder); return the destination path.

        :raises shutil.SameFileError: ``src`` and ``dst`` are the same file.
        """
        return shutil.copy(src, dst)

    def copytree(self, src: str | Path, dst: str | Path) -> str | Path:
        """Copy the folder ``src`` to ``dst`` (which must not exist); return ``dst``.

        :raises FileExistsError: ``dst`` exists.
        """
        return shutil.copytree(src, dst)

    def copyfile_from_local(self, src: str | Path, dst: str | Path) -> str | Path:
        """Same as :meth:`copyfile` (both sides are local)."""
        return self.copyfile(src, dst)

    def copytree_from_local(self, src: str | Path, dst: str | Path) -> str | Path:
        """Same as :meth:`copytree` (both sides are local)."""
        return self.copytree(src, dst)

    def copyfile_to_local(self, src: str | Path, dst: str | Path) -> str | Path:
        """Same as :meth:`copyfile` (both sides are local)."""
        return self.copyfile(src, dst)

    def copytree_to_local(self, src: str | Path, dst: str | Path) -> str | Path:
        """Same as :meth:`copytree` (both sides are local)."""
        return self.copytree(src, dst)

    def copy_if_symlink_fails(self, src: str | Path, dst: str | Path) -> bool:
        """Symlink ``dst`` to ``src``; copy instead where links fail. True when linked."""
        try:
            os.symlink(src, dst)
            return True
        except Exception:  # any failure (no permission, no support) falls back to a copy
            if self.isfile(src):
                self.copyfile(src, dst)
            else:
                self.copytree(src, dst)
            return False

    def list_dir_or_file(
        self,
        dir_path: str | Path,
        list_dir: bool = True,
        list_file: bool = True,
        suffix: str | tuple[str, ...] | None = None,
        recursive: bool = False,
    ) -> Iterator[str]:
        """Paths (relative to ``dir_path``) of the folders and/or files in it.

        :param suffix: keep only files ending in it (then ``list_dir`` must be False).
        :param recursive: descend into sub-folders.
        """
        check_listing_arguments(list_dir, suffix)
        root = os.path.expanduser(dir_path)

        def scan(folder: str) -> Iterator[str]:
            for entry in os.scandir(folder):
                relative = os.path.relpath(entry.path, root)
                if entry.is_dir():
                    if list_dir:
                        yield relative
                    if recursive:
                        yield from scan(entry.path)
                elif list_file and (suffix is None or relative.endswith(suffix)):
                    yield relative

        return scan(root)


# MMEngine's older name for the local backend.
HardDiskBackend = LocalBackend


def __getattr__(name: str) -> Any:
    # PetrelBackend is defined on top of this module; offered here too, as MMEngine's
    # ``fileio.backends`` package does, without an import cycle
    if name == "PetrelBackend":
        from torchkiln.fileio.petrel_backend import PetrelBackend

        return PetrelBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
