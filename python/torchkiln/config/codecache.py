"""A disk cache of compiled ``.py`` configs, the way Python keeps ``.pyc`` files for modules.

Compiling is most of the cost of loading a ``.py`` config for the first time in a process.
Each compiled config is stored in one file under ``$TORCHKILN_CACHE_DIR/pyconfig`` (by
default ``$XDG_CACHE_HOME/torchkiln/pyconfig``, else ``~/.cache/torchkiln/pyconfig``), named
after its path and the interpreter's cache tag. An entry is used only when

- its header names this cache format and this interpreter's bytecode version,
- its payload has the checksum recorded in it (a truncated or damaged entry misses), and
- the config is unchanged: its :mod:`~torchkiln.config.filestamp` stamp is the recorded one
  (recorded only when the file was not modified just before), or else its current bytes
  have the recorded digest.

A miss compiles the config again and rewrites the entry (written to a temporary file, then
renamed into place, so readers never see half an entry). A cache folder that cannot be
created or written is skipped silently: the cache only saves time.
``TORCHKILN_CONFIG_CACHE=0`` turns it off, and with it the loads kept in memory
(:mod:`~torchkiln.config.loadcache`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import marshal
import os
import sys
import zlib
from typing import Any, NamedTuple

from torchkiln.config.filestamp import Stamp

__all__ = [
    "Stored",
    "active_folder",
    "cache_dir",
    "caching_enabled",
    "clear",
    "digest",
    "read",
    "read_bytes",
    "write",
]

_FORMAT = b"TKPYC\x03" + importlib.util.MAGIC_NUMBER
_DIGEST_SIZE = 32
_HEADER = len(_FORMAT) + 4  # then the payload's CRC-32


class Stored(NamedTuple):
    """A cache entry: the config's stamp (``None`` when it was too fresh to trust), the
    digest of its bytes and the stored value."""

    stamp: Stamp | None
    source_digest: bytes
    value: Any


_OFF = ("0", "off", "false", "no")
_CHUNK = 1 << 16


def caching_enabled() -> bool:
    """False when ``TORCHKILN_CONFIG_CACHE`` is ``0``, ``off``, ``false`` or ``no``."""
    return os.environ.get("TORCHKILN_CONFIG_CACHE", "1").strip().lower() not in _OFF


def cache_dir() -> str:
    """The folder holding compiled configs (it may not exist yet)."""
    root = os.environ.get("TORCHKILN_CACHE_DIR")
    if not root:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(base, "torchkiln")
    return os.path.join(root, "pyconfig")


def active_folder() -> str | None:
    """:func:`cache_dir` when caching is on, else ``None``; looked up once per load."""
    return cache_dir() if caching_enabled() else None


def read_bytes(path: str) -> bytes:
    """The whole content of ``path``, with fewer system calls than ``open().read()`` (this is
    on the path of every load); :class:`OSError` when it cannot be read."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    chunks = []
    try:
        while chunk := os.read(fd, _CHUNK):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def digest(data: bytes) -> bytes:
    """The digest the cache keys a config's bytes by."""
    return hashlib.blake2b(data, digest_size=_DIGEST_SIZE).digest()


_ENTRY_NAMES: dict[tuple[str, str], str] = {}


def _entry(folder: str, filename: str) -> str:
    path = _ENTRY_NAMES.get((folder, filename))
    if path is None:
        name = hashlib.blake2b(os.fsencode(filename), digest_size=16).hexdigest()
        tag = sys.implementation.cache_tag or "python"
        path = os.path.join(folder, f"{name}.{tag}.bin")
        if len(_ENTRY_NAMES) > 4096:
            _ENTRY_NAMES.clear()
        _ENTRY_NAMES[(folder, filename)] = path
    return path


def read(folder: str, filename: str) -> Stored | None:
    """The entry stored in ``folder`` for ``filename``; ``None`` when there is none or it is
    damaged. The caller checks that it is current (its stamp or its source digest)."""
    try:
        blob = read_bytes(_entry(folder, filename))
    except OSError:
        return None
    if len(blob) <= _HEADER or not blob.startswith(_FORMAT):
        return None
    view = memoryview(blob)
    payload = view[_HEADER:]
    if int.from_bytes(view[len(_FORMAT) : _HEADER], "little") != zlib.crc32(payload):
        return None
    try:
        stored_name, stored_stamp, source_digest, value = marshal.loads(payload)
    except (ValueError, EOFError, TypeError):
        return None
    if stored_name != filename or not isinstance(source_digest, bytes):
        return None
    if stored_stamp is not None and not isinstance(stored_stamp, tuple):
        return None
    return Stored(stored_stamp, source_digest, value)


def write(folder: str, filename: str, stored: Stored) -> None:
    """Store ``stored`` (its value anything :mod:`marshal` can write) in ``folder`` for
    ``filename``; errors are ignored."""
    try:
        payload = marshal.dumps((filename, stored.stamp, stored.source_digest, stored.value))
    except ValueError:  # a value marshal cannot write (an unusual _base_ entry): not cached
        return
    path = _entry(folder, filename)
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(tmp, "wb") as fh:
            fh.write(_FORMAT + zlib.crc32(payload).to_bytes(4, "little") + payload)
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def clear() -> int:
    """Delete every cached compiled config; the number of entries removed."""
    folder = cache_dir()
    removed = 0
    try:
        names = os.listdir(folder)
    except OSError:
        return 0
    for name in names:
        if name.endswith((".bin", ".tmp")):
            try:
                os.unlink(os.path.join(folder, name))
                removed += 1
            except OSError:
                pass
    return removed
