"""Where this process stands in the job: rank, world size, local rank.

Every query works without ``torch.distributed`` (not built, or no process group yet): the
process is then rank 0 of a world of 1. Nothing here starts or joins a process group; that
is :func:`torchkiln.dist.init_dist`'s job.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any, TypeVar

import torch.distributed as dist

__all__ = [
    "get_dist_info",
    "get_local_rank",
    "get_local_world_size",
    "get_rank",
    "get_world_size",
    "is_distributed",
    "is_main_process",
    "master_only",
]

F = TypeVar("F", bound=Callable[..., Any])


def is_distributed() -> bool:
    """True when a default process group is initialised (even a world of one)."""
    return dist.is_available() and dist.is_initialized()


def get_rank() -> int:
    """Global rank of this process; 0 when not distributed."""
    return dist.get_rank() if is_distributed() else 0


def get_world_size() -> int:
    """Number of processes in the default group; 1 when not distributed."""
    return dist.get_world_size() if is_distributed() else 1


def get_local_rank() -> int:
    """Rank of this process on its node (``LOCAL_RANK``, as set by every launcher); 0 if unset."""
    if not is_distributed():
        return 0
    return int(os.environ.get("LOCAL_RANK", "0"))


def get_local_world_size() -> int:
    """Processes on this node (``LOCAL_WORLD_SIZE``); the world size when the launcher sets none."""
    if not is_distributed():
        return 1
    return int(os.environ.get("LOCAL_WORLD_SIZE", str(get_world_size())))


def get_dist_info() -> tuple[int, int]:
    """``(rank, world_size)``; ``(0, 1)`` when not distributed."""
    return get_rank(), get_world_size()


def is_main_process() -> bool:
    """True on global rank 0 (and always when not distributed)."""
    return get_rank() == 0


def master_only(func: F) -> F:
    """Decorate ``func`` to run only on rank 0; other ranks get ``None`` without calling it."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if is_main_process():
            return func(*args, **kwargs)
        return None

    return wrapper  # type: ignore[return-value]  # same call signature as func
