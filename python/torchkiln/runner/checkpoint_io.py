"""Checkpoint files on disk: atomic writes, safe loads, the ``last_checkpoint`` pointer.

A write goes to a temporary file in the destination folder, is fsynced, then renamed over
the destination (atomic on POSIX), and the folder is fsynced so the rename survives a crash.
A crash at any moment leaves either the old file or the new one, never a torn one.

:class:`CheckpointWriter` writes one checkpoint at a time, either in the calling thread or,
for asynchronous saving, in a background thread after staging every tensor as a CPU copy
(training may change the originals right away). A write starts only when the previous one
has finished, and a callback (which updates ``last_checkpoint``) runs only after the file is
complete.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import re
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable
from typing import Any

from torchkiln.errors import TorchkilnError

__all__ = [
    "LAST_CHECKPOINT",
    "CheckpointError",
    "CheckpointWriter",
    "atomic_save",
    "atomic_write_bytes",
    "atomic_write_text",
    "find_latest_checkpoint",
    "load_checkpoint_file",
    "read_pointer",
    "remove_stale_temp_files",
    "stage_on_cpu",
]

LAST_CHECKPOINT = "last_checkpoint"
_TEMP_PREFIX = "."
_TEMP_SUFFIX = ".tmp"
# ".<name>.<8 random characters from mkstemp>.tmp"
_TEMP_NAME = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")


class CheckpointError(TorchkilnError):
    """A checkpoint file is missing, truncated, corrupt or not a torchkiln checkpoint."""

    exit_code = 2


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _umask() -> int:
    """The process's umask, read without changing it (``os.umask`` would race with threads)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return _UMASK_AT_IMPORT


def _read_umask_once() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK_AT_IMPORT = _read_umask_once()


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file, fsync, rename, fsync folder).

    The file gets the mode any new file gets (``0o666`` less the umask), like logs and the
    dumped config: the temporary file's private mode does not survive the rename, so a
    teammate can load checkpoints from a shared work folder.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f"{_TEMP_PREFIX}{os.path.basename(path)}.", suffix=_TEMP_SUFFIX, dir=folder
    )
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(folder)


def remove_stale_temp_files(folder: str) -> list[str]:
    """Delete temporary files that interrupted atomic writes left in ``folder``; return their names.

    Only call it when no other process writes into ``folder``.
    """
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    removed = []
    for name in names:
        if _TEMP_NAME.match(name):
            try:
                os.unlink(os.path.join(folder, name))
            except OSError:
                continue
            removed.append(name)
    return removed


def atomic_write_text(path: str, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_save(obj: Any, path: str) -> None:
    """``torch.save`` ``obj`` to ``path`` atomically."""
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getbuffer().tobytes())


def stage_on_cpu(obj: Any) -> Any:
    """A copy of ``obj`` whose tensors are CPU copies, detached from anything training changes.

    Dicts, lists and tuples are rebuilt; tensors are copied (to the CPU); other values are
    kept (numbers and strings are immutable).
    """
    import torch

    if isinstance(obj, torch.Tensor):
        obj = obj.detach()
        return obj.clone() if obj.device.type == "cpu" else obj.to("cpu")
    if isinstance(obj, collections.OrderedDict):
        return collections.OrderedDict((key, stage_on_cpu(value)) for key, value in obj.items())
    if isinstance(obj, dict):
        return {key: stage_on_cpu(value) for key, value in obj.items()}
    if isinstance(obj, list):
        return [stage_on_cpu(value) for value in obj]
    if isinstance(obj, tuple):
        return tuple(stage_on_cpu(value) for value in obj)
    return obj


class CheckpointWriter:
    """Writes checkpoints atomically, one at a time, in the foreground or in a background thread.

    ``save(...)`` first waits for a background write still running, so at most one is in
    flight and they finish in order. An error in a background write is raised by the next
    ``save`` or ``wait``.
    """

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._error_path: str | None = None
        self.last_write_s = 0.0

    @property
    def busy(self) -> bool:
        """Whether a background write is still running."""
        return self._thread is not None and self._thread.is_alive()

    def save(
        self,
        obj: Any,
        path: str,
        *,
        background: bool = False,
        on_written: Callable[[str], None] | None = None,
    ) -> float:
        """Write ``obj`` to ``path``; return how long the caller was held up, in seconds.

        :param background: stage the tensors as CPU copies and write in a background thread.
        :param on_written: called with ``path`` once the file is complete (in the writing thread).
        """
        start = self._clock()
        self.wait()
        if not background:
            self._write(obj, path, on_written)
            return self._clock() - start
        staged = stage_on_cpu(obj)
        thread = threading.Thread(
            target=self._background,
            args=(staged, path, on_written),
            name="torchkiln-checkpoint-writer",
            daemon=True,
        )
        self._thread = thread
        thread.start()
        return self._clock() - start

    def _write(self, obj: Any, path: str, on_written: Callable[[str], None] | None) -> None:
        start = self._clock()
        atomic_save(obj, path)
        self.last_write_s = self._clock() - start
        if on_written is not None:
            on_written(path)

    def _background(self, obj: Any, path: str, on_written: Callable[[str], None] | None) -> None:
        try:
            self._write(obj, path, on_written)
        except BaseException as exc:  # handed to the main thread by wait()
            self._error = exc
            self._error_path = path

    def wait(self) -> None:
        """Block until a background write has finished; raise its error if it failed."""
        thread = self._thread
        if thread is not None:
            thread.join()
            self._thread = None
        if self._error is not None:
            error, path = self._error, self._error_path
            self._error = self._error_path = None
            raise CheckpointError(
                f"writing checkpoint {path} in the background failed: {type(error).__name__}: {error}",
                hint="check free disk space and permissions of the checkpoint folder",
            ) from error


def _first_sentence(exc: BaseException) -> str:
    text = str(exc).strip()
    if not text:
        return type(exc).__name__
    return text.splitlines()[0].split(". ")[0].rstrip(".")[:200]


def load_checkpoint_file(
    path: str, map_location: Any = "cpu", weights_only: bool = True
) -> dict[str, Any]:
    """Load a checkpoint safely (``weights_only=True`` by default), with clear errors.

    Raises :class:`CheckpointError` (naming the file) when it is missing, truncated or
    corrupt, is not a ``torch.save`` file, holds objects that cannot be loaded safely, or does
    not hold a dict.
    """
    import warnings

    import torch

    if not os.path.isfile(path):
        raise CheckpointError(
            f"checkpoint file not found: {path}",
            hint="check the path, or use resume: true to pick up work_dir/last_checkpoint",
        )
    with open(path, "rb") as fh:
        head = fh.read(4)
    is_zip = head[:4] == b"PK\x03\x04"
    if not is_zip and head[:1] != b"\x80":
        raise CheckpointError(
            f"{path} is not a checkpoint: it is not a torch.save file (empty, truncated, corrupt or another format)",
            hint="pick a .pth file written by torchkiln or torch.save",
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's notes about pickle protocols of odd files
            obj = torch.load(path, map_location=map_location, weights_only=weights_only)
    except (
        pickle.UnpicklingError,
        zipfile.BadZipFile,
        EOFError,
        RuntimeError,
        ValueError,
        TypeError,
        AttributeError,
        ImportError,
        IndexError,
        KeyError,
        UnicodeDecodeError,
    ) as exc:
        text = str(exc)
        blocked = re.search(r"GLOBAL ([\w.]+)", text)
        if blocked:
            raise CheckpointError(
                f"checkpoint {path} holds an object of type {blocked.group(1)}, which cannot be loaded safely "
                "(torch.load with weights_only=True)",
                hint="torchkiln never saves such objects; load the file with weights_only=False only if you trust where it came from",
            ) from None
        if not is_zip:
            raise CheckpointError(
                f"{path} is not a checkpoint: it is a pickle that torch.load cannot read safely "
                "(a plain pickle, an old-format torch file, or a corrupt one)",
                hint="pick a .pth file written by torchkiln or by torch.save",
            ) from None
        raise CheckpointError(
            f"checkpoint {path} is truncated or corrupt ({type(exc).__name__}: {_first_sentence(exc)})",
            hint="pick an earlier checkpoint; torchkiln writes checkpoints atomically, so a torn file was not written by it",
        ) from None
    if not isinstance(obj, dict):
        raise CheckpointError(
            f"{path} is not a checkpoint: it holds a {type(obj).__name__}, expected a dict"
        )
    return obj


def read_pointer(folder: str) -> str | None:
    """The absolute path ``folder/last_checkpoint`` names, or None without a (non-empty) pointer.

    The file it names may not exist; callers decide what that means.
    """
    pointer = os.path.join(folder, LAST_CHECKPOINT)
    try:
        with open(pointer, encoding="utf-8") as fh:
            target = fh.read().strip()
    except OSError:
        return None
    if not target:
        return None
    return target if os.path.isabs(target) else os.path.join(folder, target)


def find_latest_checkpoint(work_dir: str) -> str | None:
    """The checkpoint ``work_dir/last_checkpoint`` points to, or None when there is none."""
    target = read_pointer(work_dir)
    return target if target is not None and os.path.isfile(target) else None
