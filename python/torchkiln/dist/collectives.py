"""Collectives over ``torch.distributed`` that degrade to no-ops in a single process.

Tensor collectives run in place on the given tensor (on the device the backend needs:
CUDA tensors for NCCL). Object collectives pickle Python objects through the process group,
so results never pass through a shared folder.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from torchkiln.dist.utils import get_rank, get_world_size, is_distributed

__all__ = [
    "all_gather",
    "all_gather_object",
    "all_reduce",
    "barrier",
    "broadcast",
    "broadcast_object",
    "collect_results",
    "kept_sample_count",
    "sync_random_seed",
]

_REDUCE_OPS = {
    "sum": "SUM",
    "mean": "SUM",  # summed, then divided by the world size
    "max": "MAX",
    "min": "MIN",
    "prod": "PRODUCT",
    "product": "PRODUCT",
}


def barrier() -> None:
    """Wait until every rank reaches this point; nothing happens in a single process."""
    if is_distributed():
        dist.barrier()


def broadcast(tensor: torch.Tensor, src: int = 0) -> torch.Tensor:
    """Copy ``tensor`` from rank ``src`` into every rank's ``tensor`` (in place) and return it."""
    if is_distributed() and get_world_size() > 1:
        dist.broadcast(tensor, src=src)
    return tensor


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Return rank ``src``'s ``obj`` on every rank (picklable objects only)."""
    if not is_distributed() or get_world_size() == 1:
        return obj
    box = [obj if get_rank() == src else None]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_reduce(tensor: torch.Tensor, op: str = "sum") -> torch.Tensor:
    """Reduce ``tensor`` across ranks in place and return it.

    :param op: ``'sum'``, ``'mean'``, ``'max'``, ``'min'`` or ``'prod'``. ``'mean'`` needs a
        floating-point tensor (the sum is divided by the world size).
    """
    key = op.lower() if isinstance(op, str) else op
    if key not in _REDUCE_OPS:
        raise ValueError(f"unknown reduce op {op!r}; choose one of {sorted(_REDUCE_OPS)}")
    if key == "mean" and not (tensor.is_floating_point() or tensor.is_complex()):
        raise TypeError(f"all_reduce(op='mean') needs a floating-point tensor, got {tensor.dtype}")
    if not is_distributed() or get_world_size() == 1:
        return tensor
    dist.all_reduce(tensor, op=getattr(dist.ReduceOp, _REDUCE_OPS[key]))
    if key == "mean":
        tensor.div_(get_world_size())
    return tensor


def all_gather(tensor: torch.Tensor) -> list[torch.Tensor]:
    """Every rank's ``tensor`` (same shape and dtype on all ranks), in rank order."""
    if not is_distributed() or get_world_size() == 1:
        return [tensor]
    out = [torch.empty_like(tensor) for _ in range(get_world_size())]
    dist.all_gather(out, tensor)
    return out


def all_gather_object(obj: Any) -> list[Any]:
    """Every rank's ``obj`` (picklable), in rank order; ``[obj]`` in a single process."""
    if not is_distributed() or get_world_size() == 1:
        return [obj]
    out: list[Any] = [None] * get_world_size()
    dist.all_gather_object(out, obj)
    return out


def collect_results(
    results: Sequence[Any], size: int, device: str = "cpu", tmpdir: str | None = None
) -> list[Any]:
    """Gather every rank's per-sample results into one list in dataset order.

    The ranks' lists are gathered through ``torch.distributed`` object collectives (no shared
    folder), then interleaved the way :class:`~torchkiln.data.DefaultSampler` hands out
    indices (rank ``r`` holds samples ``r, r + W, r + 2W, ...``), and cut to ``size`` to drop
    the samples repeated by ``round_up`` padding.

    :param results: this rank's results, one entry per sample, in the order it saw them.
    :param size: the dataset's length.
    :param device: accepted for MMEngine compatibility; object collectives choose the device
        the backend needs.
    :param tmpdir: accepted for MMEngine compatibility and ignored: nothing goes through files.
    :return: the full list on every rank.
    """
    del device, tmpdir
    if not is_distributed() or get_world_size() == 1:
        return list(results)[:size]
    parts = all_gather_object(list(results))
    ordered: list[Any] = []
    # Ranks may hold different counts (round_up=False); zip_longest keeps the interleaving.
    missing = object()
    for row in itertools.zip_longest(*parts, fillvalue=missing):
        ordered.extend(item for item in row if item is not missing)
    return ordered[:size]


def kept_sample_count(size: int, rank: int | None = None, world_size: int | None = None) -> int:
    """How many of rank ``rank``'s samples :func:`collect_results` keeps for a dataset of ``size``.

    The ``k``-th sample a rank evaluates lands at position ``k * world_size + rank`` of the
    gathered list, which is cut to ``size``: the rank's first ``ceil((size - rank) / world_size)``
    samples count, the rest (the repeats ``round_up`` padded in, always at the end of a rank's
    share) are dropped. Values computed per batch, like a loss, use it to drop the same samples.

    :param size: the dataset's length.
    :param rank: this process's rank by default.
    :param world_size: the number of ranks by default.
    """
    if rank is None or world_size is None:
        this_rank, this_world = get_rank(), get_world_size()
        rank = this_rank if rank is None else rank
        world_size = this_world if world_size is None else world_size
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in a world of {world_size}")
    return max(0, -(-(int(size) - rank) // world_size))


def sync_random_seed(seed: int | None = None) -> int:
    """A seed shared by all ranks: ``seed`` if given, else one rank 0 draws, sent to all.

    Samplers use it so every rank shuffles the same way and their shards stay disjoint.
    """
    if seed is None:
        seed = int(np.random.randint(2**31))
    return int(broadcast_object(int(seed), src=0))
