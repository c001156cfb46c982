"""The ``file_client_args``/``backend_args`` of MMEngine's LoggerHook and CheckpointHook.

torchkiln reads and writes local files only (mount remote storage as a folder). The
arguments are accepted when they name the local backend (``disk`` or ``local``), so MMEngine
configs that spell it out keep working; anything else is an error that says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torchkiln.errors import ConfigValueError

__all__ = ["LOCAL_BACKENDS", "check_local_backend"]

LOCAL_BACKENDS = frozenset({"disk", "local", "HardDiskBackend", "LocalBackend"})


def _check_one(hook: str, where: str, key: str, args: Mapping[str, Any]) -> None:
    if not isinstance(args, Mapping):
        raise ConfigValueError(f"{hook} {key} must be a dict, got {args!r}", where=f"{where}.{key}")
    extra = sorted(set(args) - {"backend"})
    backend = args.get("backend", "local")
    if backend not in LOCAL_BACKENDS or extra:
        what = f"backend {backend!r}" if backend not in LOCAL_BACKENDS else f"options {extra}"
        raise ConfigValueError(
            f"{hook} {key} asks for {what}, but torchkiln writes to the local file system only",
            where=f"{where}.{key}",
            hint=f"remove {key} (or use backend='local'); mount remote storage as a folder",
        )


def check_local_backend(
    hook: str,
    where: str,
    file_client_args: Mapping[str, Any] | None,
    backend_args: Mapping[str, Any] | None,
) -> None:
    """Raise unless the arguments are absent or name the local backend.

    :param hook: the hook's name, for messages.
    :param where: the hook's key path in the config.
    """
    if file_client_args is not None and backend_args is not None:
        raise ConfigValueError(
            f'{hook}: "file_client_args" and "backend_args" cannot be set at the same time',
            where=where,
            hint='keep "backend_args" ("file_client_args" is deprecated)',
        )
    if file_client_args is not None:
        _check_one(hook, where, "file_client_args", file_client_args)
        from torchkiln.logging.logger import print_log

        print_log(
            f'{hook}: "file_client_args" will be deprecated in future; use "backend_args"',
            logger="current",
            level="WARNING",
        )
    if backend_args is not None:
        _check_one(hook, where, "backend_args", backend_args)
