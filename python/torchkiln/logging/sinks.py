"""JSON-lines files written off the training thread, and the one place that flushes them all.

:class:`JsonlWriter` encodes records with :mod:`json` and hands the lines to the Rust
``torchkiln._native.JsonlSink``: a write only appends to an in-memory buffer, and a
background thread appends the buffer to the file every ``flush_interval_s`` seconds, when
``max_buffered`` lines wait, on :meth:`JsonlWriter.flush` and on close. ``log.jsonl``,
``scalars.jsonl`` and the local vis backend's scalar file are all written this way.

Every open writer, and every object given to :func:`register_flushable` (visualizers, the
log handlers), is known here, so :func:`flush_all` pushes everything to disk from one call:
the checkpoint path before it saves, the signal and crash paths before the process ends,
and :mod:`atexit` (which also closes the writers). Nothing here imports torch.
"""

from __future__ import annotations

import atexit
import json
import math
import os
import sys
import threading
import weakref
from collections.abc import Mapping
from typing import Any

__all__ = [
    "JsonlWriter",
    "close_all",
    "flush_all",
    "open_writers",
    "register_flushable",
    "to_jsonable",
    "unregister_flushable",
]

_writers: weakref.WeakSet[JsonlWriter] = weakref.WeakSet()
_flushables: weakref.WeakSet[Any] = weakref.WeakSet()
_registry_lock = threading.Lock()


def to_jsonable(value: Any) -> Any:
    """Plain JSON data for ``value``: numbers, strings, lists and dicts as they are; NaN and
    infinities as the strings ``"nan"``, ``"inf"``, ``"-inf"`` (JSON has no such numbers);
    tensors and arrays through ``tolist()``; anything else as ``str(value)``.

    Only call this at log intervals: ``tolist()`` of a device tensor synchronises.
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    tolist = getattr(value, "tolist", None)  # torch.Tensor, numpy arrays and scalars
    if callable(tolist):
        return to_jsonable(tolist())
    return str(value)


class _PyJsonlSink:
    """Stand-in for the Rust sink when the extension is not built: a line-buffered file."""

    def __init__(self, path: str, flush_interval_s: float = 1.0, max_buffered: int = 1000) -> None:
        self.path = path
        self._file: Any = open(path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - closed by close()
        self._lock = threading.Lock()

    @property
    def closed(self) -> bool:
        return self._file is None

    def write(self, line: str) -> None:
        if "\n" in line:
            raise ValueError("a JSON-lines record must not contain a newline")
        with self._lock:
            if self._file is None:
                raise ValueError("write to a closed JsonlSink")
            self._file.write(line + "\n")

    def flush(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.flush()

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


def _sink_class() -> Any:
    try:
        from torchkiln._native import JsonlSink
    except ImportError:
        return _PyJsonlSink
    return JsonlSink


class JsonlWriter:
    """An append-only JSON-lines file written by a background thread.

    :param path: the file (created with its folder if missing; appended to if present).
    :param flush_interval_s: the background thread writes queued lines this often.
    :param max_buffered: ... or as soon as this many lines wait.

    ``write(record)`` costs one ``json.dumps`` and a memory copy; it never waits on the disk.
    """

    def __init__(
        self, path: str | os.PathLike[str], flush_interval_s: float = 1.0, max_buffered: int = 1000
    ) -> None:
        self.path = os.fspath(path)
        folder = os.path.dirname(self.path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        self._sink: Any = _sink_class()(self.path, flush_interval_s, max_buffered)
        self._pid = os.getpid()
        with _registry_lock:
            _writers.add(self)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return bool(self._sink.closed)

    def write(self, record: Mapping[str, Any]) -> None:
        """Queue ``record`` as one JSON line (converted with :func:`to_jsonable`)."""
        self._sink.write(json.dumps(to_jsonable(record), ensure_ascii=False))

    def write_line(self, line: str) -> None:
        """Queue an already encoded JSON line (no newline inside)."""
        self._sink.write(line)

    def flush(self) -> None:
        """Write every queued line and return when it is in the file (no-op in a forked copy)."""
        if os.getpid() == self._pid:
            self._sink.flush()

    def close(self) -> None:
        """Flush and close; later calls do nothing.

        In a process forked from the one that opened the file, the writing thread does not
        exist (fork copies only the calling thread): the copy is dropped, and the lines it
        holds stay the parent's to write.
        """
        if os.getpid() == self._pid:
            self._sink.close()
        with _registry_lock:
            _writers.discard(self)

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"JsonlWriter({self.path!r}, closed={self.closed})"


def open_writers() -> list[JsonlWriter]:
    """The writers not closed yet."""
    with _registry_lock:
        return [w for w in _writers if not w.closed]


def register_flushable(obj: Any) -> None:
    """Have :func:`flush_all` call ``obj.flush()`` while ``obj`` is alive (weakly held)."""
    with _registry_lock:
        _flushables.add(obj)


def unregister_flushable(obj: Any) -> None:
    """Undo :func:`register_flushable`."""
    with _registry_lock:
        _flushables.discard(obj)


def _report(what: Any, exc: BaseException) -> None:
    try:
        sys.stderr.write(f"torchkiln: flushing {what!r} failed: {exc}\n")
    except Exception:  # stderr itself may be gone at shutdown
        pass


def flush_all() -> None:
    """Push every log record, scalar record and visualizer event written so far to disk.

    Flushes every open :class:`JsonlWriter` (``log.jsonl``, ``scalars.jsonl``, the local vis
    backend's scalars), the run's log handlers and every registered flushable (visualizers:
    TensorBoard event files). Safe to call at any time and repeatedly, from the main thread or
    a signal handler; nothing is closed, so logging goes on afterwards. Errors are reported on
    stderr, never raised: this runs on the way out of a failing process.
    """
    with _registry_lock:
        flushables = list(_flushables)
        writers = list(_writers)
    for obj in flushables:
        try:
            obj.flush()
        except Exception as exc:
            _report(obj, exc)
    for writer in writers:
        try:
            if not writer.closed:
                writer.flush()
        except Exception as exc:
            _report(writer, exc)


def close_all() -> None:
    """Flush everything (:func:`flush_all`), then close every open :class:`JsonlWriter`."""
    flush_all()
    for writer in open_writers():
        try:
            writer.close()
        except Exception as exc:
            _report(writer, exc)


atexit.register(close_all)


def _forget_in_child() -> None:
    """After ``fork`` the child has no writer threads: drop the parent's writers there.

    Flushing them would wait for a thread that does not exist in the child; the parent
    still owns and flushes its files.
    """
    global _registry_lock
    _registry_lock = threading.Lock()
    _writers.clear()
    _flushables.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)
