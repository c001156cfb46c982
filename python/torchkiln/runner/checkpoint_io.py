"""Checkpoint files on disk: atomic writes, safe loads, the ``last_checkpoint`` pointer.

A write goes to a temporary file in the destination folder, is fsynced, then renamed over
the destination (atomic on POSIX), and the folder is fsynced so the rename survives a crash.
A crash at any moment leaves either the old file or the new one, never a torn one.
"""

from __future__ import annotations

import io
import os
import pickle
import tempfile
import zipfile
from typing import Any

from torchkiln.errors import TorchkilnError

__all__ = [
    "LAST_CHECKPOINT",
    "CheckpointError",
    "atomic_save",
    "atomic_write_bytes",
    "atomic_write_text",
    "find_latest_checkpoint",
    "load_checkpoint_file",
]

LAST_CHECKPOINT = "last_checkpoint"


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


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file, fsync, rename, fsync folder)."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
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


def atomic_write_text(path: str, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_save(obj: Any, path: str) -> None:
    """``torch.save`` ``obj`` to ``path`` atomically."""
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getbuffer().tobytes())


def load_checkpoint_file(path: str, map_location: Any = "cpu", weights_only: bool = True) -> dict[str, Any]:
    """Load a checkpoint safely (``weights_only=True`` by default), with clear errors.

    Raises :class:`CheckpointError` when the file is missing, truncated or corrupt, or does
    not hold a dict.
    """
    import torch

    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint file not found: {path}", hint="check the path, or use resume: true to pick up work_dir/last_checkpoint")
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head[:4] != b"PK\x03\x04" and head[:1] != b"\x80":
        raise CheckpointError(
            f"{path} is not a checkpoint: it is not a torch.save file (truncated, corrupt or another format)",
            hint="pick a .pth file written by torchkiln or torch.save",
        )
    try:
        obj = torch.load(path, map_location=map_location, weights_only=weights_only)
    except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, RuntimeError, ValueError) as exc:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if weights_only and "Weights only load failed" in str(exc) and "Unsupported" in str(exc):
            raise CheckpointError(
                f"checkpoint {path} holds objects that cannot be loaded safely: {text}",
                hint="only load files you trust with weights_only=False",
            ) from None
        raise CheckpointError(
            f"checkpoint {path} is truncated or corrupt ({type(exc).__name__}: {text})",
            hint="pick an earlier checkpoint; torchkiln writes checkpoints atomically, so a torn file was not written by it",
        ) from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path} is not a checkpoint: it holds a {type(obj).__name__}, expected a dict")
    return obj


def find_latest_checkpoint(work_dir: str) -> str | None:
    """The checkpoint ``work_dir/last_checkpoint`` points to, or None when there is none."""
    pointer = os.path.join(work_dir, LAST_CHECKPOINT)
    if not os.path.isfile(pointer):
        return None
    with open(pointer, encoding="utf-8") as fh:
        target = fh.read().strip()
    if not target:
        return None
    if not os.path.isabs(target):
        target = os.path.join(work_dir, target)
    return target if os.path.isfile(target) else None
