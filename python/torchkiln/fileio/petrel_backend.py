"""``PetrelBackend``: files in Petrel, SenseTime's S3-compatible object storage.

Registered as the ``petrel`` backend and for the ``petrel://`` and ``s3://`` prefixes. It
talks to the cluster through SenseTime's ``petrel_client`` SDK, imported when the backend is
built (not when torchkiln is imported); without the SDK, building it raises
:class:`torchkiln.errors.MissingPackageError`. A site with a different S3 client registers
its own backend for the prefix instead (``register_backend('s3', MyBackend, prefixes='s3',
force=True)``).

Paths: ``s3://bucket/key`` and ``petrel://bucket/key`` (the same object) address the default
cluster; ``cluster-name:s3://bucket/key`` addresses the named cluster of the SDK's
configuration. ``path_mapping`` rewrites paths before use, so that a local-looking path can
be served from the store (``{'data/': 's3://bucket/data/'}``).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from torchkiln.errors import MissingPackageError
from torchkiln.fileio.backends import BaseStorageBackend, check_listing_arguments
from torchkiln.fileio.registry import register_backend

__all__ = ["PetrelBackend"]

_BACKSLASHES = re.compile(r"\\+")


def _petrel_client_module() -> Any:
    try:
        from petrel_client import client  # type: ignore[import-not-found]
    except ImportError:
        raise MissingPackageError(
            "PetrelBackend needs the petrel_client package (the SDK of Petrel, SenseTime's "
            "object storage), which is not installed",
            where="torchkiln.fileio.PetrelBackend",
            hint="install petrel_client to read and write s3:// and petrel:// paths on a Petrel "
            "cluster, or register another backend for the prefix, e.g. "
            "register_backend('s3', MyBackend, prefixes='s3', force=True)",
        ) from None
    return client


class PetrelBackend(BaseStorageBackend):
    """Files in a Petrel object store, through the ``petrel_client`` SDK.

    :param path_mapping: ``{old: new}`` replacements applied (first occurrence each) to every
        path before use.
    :param enable_mc: let the SDK cache reads in memcached.
    :param conf_path: the SDK's configuration file (None: the SDK's default).
    :raises MissingPackageError: ``petrel_client`` is not installed (an ``ImportError``).
    :raises TypeError: ``path_mapping`` is neither a dict nor None.
    """

    def __init__(
        self,
        path_mapping: dict[str, str] | None = None,
        enable_mc: bool = True,
        conf_path: str | None = None,
    ) -> None:
        if path_mapping is not None and not isinstance(path_mapping, dict):
            raise TypeError(f"path_mapping must be a dict or None, got {type(path_mapping)}")
        client = _petrel_client_module()
        # conf_path only when given: the SDK then reads its default configuration file
        extra = {} if conf_path is None else {"conf_path": conf_path}
        self._client = client.Client(enable_mc=enable_mc, **extra)
        self.path_mapping = path_mapping

    # paths --------------------------------------------------------------------------------

    def _map_path(self, filepath: str | Path) -> str:
        """``filepath`` as a string with :attr:`path_mapping` applied."""
        path = str(filepath)
        for old, new in (self.path_mapping or {}).items():
            path = path.replace(old, new, 1)
        return path

    @staticmethod
    def _format_path(filepath: str) -> str:
        """``filepath`` with runs of backslashes (``os.path.join`` on Windows) made ``/``."""
        return _BACKSLASHES.sub("/", filepath)

    @staticmethod
    def _replace_prefix(filepath: str | Path) -> str:
        """``filepath`` with ``petrel://`` spelled ``s3://``, as the SDK wants it."""
        return str(filepath).replace("petrel://", "s3://")

    def _path(self, filepath: str | Path) -> str:
        """``filepath`` mapped and formatted (the prefix as given)."""
        return self._format_path(self._map_path(filepath))

    def _sdk_path(self, filepath: str | Path) -> str:
        """The path the SDK is called with: mapped, formatted, ``s3://``."""
        return self._replace_prefix(self._path(filepath))

    def _sdk_method(self, name: str) -> Any:
        method = getattr(self._client, name, None)
        if not callable(method):
            raise NotImplementedError(
                f"this petrel_client version has no `{name}` method; upgrade petrel_client"
            )
        return method

    def join_path(self, filepath: str | Path, *filepaths: str | Path) -> str:
        """The parts joined by ``/`` (leading ``/`` of later parts dropped)."""
        parts = [self._path(filepath).removesuffix("/")]
        parts += [self._path(part).lstrip("/") for part in filepaths]
        return "/".join(parts)

    # reading and writing ------------------------------------------------------------------

    def get(self, filepath: str | Path) -> bytes:
        """The bytes of the object ``filepath``.

        :raises FileNotFoundError: the SDK found no such object.
        """
        value = self._client.Get(self._sdk_path(filepath))
        if value is None:
            raise FileNotFoundError(f"{filepath} does not exist in Petrel")
        return value

    def get_text(self, filepath: str | Path, encoding: str = "utf-8") -> str:
        """The text of the object ``filepath``."""
        return self.get(filepath).decode(encoding)

    def put(self, obj: bytes, filepath: str | Path) -> None:
        """Write ``obj`` to the object ``filepath`` (replacing it)."""
        self._client.put(self._sdk_path(filepath), obj)

    def put_text(self, obj: str, filepath: str | Path, encoding: str = "utf-8") -> None:
        """Write the text ``obj`` to the object ``filepath``."""
        self.put(obj.encode(encoding), filepath)

    # queries ------------------------------------------------------------------------------

    def exists(self, filepath: str | Path) -> bool:
        """Whether ``filepath`` is an object or a folder (a prefix with objects under it)."""
        path = self._sdk_path(filepath)
        return bool(self._sdk_method("contains")(path) or self._sdk_method("isdir")(path))

    def isdir(self, filepath: str | Path) -> bool:
        """Whether ``filepath`` is a folder (a prefix with objects under it)."""
        return bool(self._sdk_method("isdir")(self._sdk_path(filepath)))

    def isfile(self, filepath: str | Path) -> bool:
        """Whether ``filepath`` is an object."""
        return bool(self._sdk_method("contains")(self._sdk_path(filepath)))

    @contextmanager
    def get_local_path(self, filepath: str | Path) -> Generator[str | Path, None, None]:
        """A temporary local copy of the object ``filepath``, deleted after the block.

        :raises FileNotFoundError: ``filepath`` is not an object.
        """
        if not self.isfile(filepath):
            raise FileNotFoundError(f"{filepath} is not a file in Petrel")
        suffix = os.path.splitext(str(filepath))[1]
        handle, path = tempfile.mkstemp(suffix=suffix)
        try:
            with os.fdopen(handle, "wb") as fh:
                fh.write(self.get(filepath))
            yield path
        finally:
            os.remove(path)

    def list_dir_or_file(
        self,
        dir_path: str | Path,
        list_dir: bool = True,
        list_file: bool = True,
        suffix: str | tuple[str, ...] | None = None,
        recursive: bool = False,
    ) -> Iterator[str]:
        """Paths (relative to ``dir_path``, folders without a trailing ``/``) of the folders
        and/or objects under ``dir_path``.

        :param suffix: keep only objects ending in it (then ``list_dir`` must be False).
        :param recursive: descend into sub-folders.
        """
        check_listing_arguments(list_dir, suffix)
        listing = self._sdk_method("list")
        root = self._sdk_path(dir_path).removesuffix("/") + "/"

        def scan(folder: str) -> Iterator[str]:
            for name in listing(folder):
                # the SDK marks folders (common prefixes) with a trailing '/'
                relative = folder[len(root) :] + name
                if name.endswith("/"):
                    if list_dir:
                        yield relative.removesuffix("/")
                    if recursive:
                        yield from scan(folder + name)
                elif list_file and (suffix is None or relative.endswith(suffix)):
                    yield relative

        return scan(root)

    # removing and copying -----------------------------------------------------------------

    def remove(self, filepath: str | Path) -> None:
        """Delete the object ``filepath``.

        :raises FileNotFoundError: no such object or folder. :raises IsADirectoryError: a folder.
        """
        delete = self._sdk_method("delete")
        if not self.exists(filepath):
            raise FileNotFoundError(f"{filepath} does not exist in Petrel")
        if self.isdir(filepath):
            raise IsADirectoryError(f"{filepath} is a folder, remove it with rmtree")
        delete(self._sdk_path(filepath))

    def rmtree(self, dir_path: str | Path) -> None:
        """Delete every object under ``dir_path``."""
        for path in list(self.list_dir_or_file(dir_path, list_dir=False, recursive=True)):
            self.remove(self.join_path(dir_path, path))

    def copyfile(self, src: str | Path, dst: str | Path) -> str:
        """Copy the object ``src`` to ``dst`` (an object, or a folder to copy into).

        :raises shutil.SameFileError: ``src`` and ``dst`` are the same object.
        """
        source, target = self._path(src), self._path(dst)
        if self.isdir(target):
            target = self.join_path(target, source.rsplit("/", 1)[-1])
        if source == target:
            raise shutil.SameFileError(f"{src} and {dst} are the same object")
        self.put(self.get(source), target)
        return target

    def copyfile_from_local(self, src: str | Path, dst: str | Path) -> str:
        """Upload the local file ``src`` to ``dst`` (an object, or a folder to copy into)."""
        target = self._path(dst)
        if self.isdir(target):
            target = self.join_path(target, os.path.basename(src))
        with open(src, "rb") as fh:
            self.put(fh.read(), target)
        return target

    def copyfile_to_local(self, src: str | Path, dst: str | Path) -> str | Path:
        """Download the object ``src`` to the local ``dst`` (a file, or a folder to copy into)."""
        if os.path.isdir(dst):
            name = self._path(src).rsplit("/", 1)[-1]
            dst = dst / name if isinstance(dst, Path) else os.path.join(dst, name)
        with open(dst, "wb") as fh:
            fh.write(self.get(src))
        return dst

    def copytree(self, src: str | Path, dst: str | Path) -> str:
        """Copy every object under the folder ``src`` to the folder ``dst``; return ``dst``.

        :raises FileExistsError: ``dst`` exists.
        """
        source, target = self._path(src), self._path(dst)
        if self.exists(target):
            raise FileExistsError(f"{dst} already exists in Petrel")
        for path in list(self.list_dir_or_file(source, list_dir=False, recursive=True)):
            self.put(self.get(self.join_path(source, path)), self.join_path(target, path))
        return target

    def copytree_from_local(self, src: str | Path, dst: str | Path) -> str:
        """Upload every file under the local folder ``src`` to the folder ``dst``; return ``dst``.

        :raises FileExistsError: ``dst`` exists.
        """
        target = self._path(dst)
        if self.exists(target):
            raise FileExistsError(f"{dst} already exists in Petrel")
        for folder, _, names in os.walk(src):
            for name in names:
                local = os.path.join(folder, name)
                relative = os.path.relpath(local, src).replace(os.sep, "/")
                self.copyfile_from_local(local, self.join_path(target, relative))
        return target

    def copytree_to_local(self, src: str | Path, dst: str | Path) -> str | Path:
        """Download every object under the folder ``src`` into the local folder ``dst``."""
        for path in list(self.list_dir_or_file(src, list_dir=False, recursive=True)):
            local = os.path.join(dst, *path.split("/"))
            os.makedirs(os.path.dirname(local), exist_ok=True)
            with open(local, "wb") as fh:
                fh.write(self.get(self.join_path(src, path)))
        return dst

    def copy_if_symlink_fails(self, src: str | Path, dst: str | Path) -> bool:
        """Copy ``src`` (an object or a folder) to ``dst``: the store has no symlinks, so
        this always copies and returns False."""
        if self.isfile(src):
            self.copyfile(src, dst)
        else:
            self.copytree(src, dst)
        return False


register_backend("petrel", PetrelBackend, prefixes=["petrel", "s3"])
