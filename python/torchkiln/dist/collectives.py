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
from torchkiln.errors import UsageTypeError

__all__ = [
    "all_gather",
    "all_gather_object",
    "all_reduce",
    "all_reduce_dict",
    "all_reduce_params",
    "barrier",
    "broadcast",
    "broadcast_object",
    "broadcast_object_list",
    "collect_results",
    "collect_results_cpu",
    "collect_results_gpu",
    "gather",
    "gather_object",
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


def broadcast_object_list(data: list[Any], src: int = 0) -> None:
    """Replace ``data``'s items (in place) with rank ``src``'s; every rank's list must have
    the same length. Nothing changes in a single process."""
    if not isinstance(data, list):
        raise UsageTypeError(f"broadcast_object_list takes a list, got {type(data).__name__}")
    if is_distributed() and get_world_size() > 1:
        dist.broadcast_object_list(data, src=src)


def gather(tensor: torch.Tensor, dst: int = 0) -> list[torch.Tensor]:
    """Every rank's ``tensor`` (same shape and dtype) on rank ``dst``, in rank order; an empty
    list on the other ranks, ``[tensor]`` in a single process."""
    if not is_distributed() or get_world_size() == 1:
        return [tensor]
    if get_rank() != dst:
        dist.gather(tensor, None, dst=dst)
        return []
    out = [torch.empty_like(tensor) for _ in range(get_world_size())]
    dist.gather(tensor, out, dst=dst)
    return out


def gather_object(obj: Any, dst: int = 0) -> list[Any] | None:
    """Every rank's picklable ``obj`` on rank ``dst``, in rank order; ``None`` on the other
    ranks, ``[obj]`` in a single process."""
    if not is_distributed() or get_world_size() == 1:
        return [obj]
    out: list[Any] | None = [None] * get_world_size() if get_rank() == dst else None
    dist.gather_object(obj, out, dst=dst)
    return out


def all_reduce_dict(data: dict[str, torch.Tensor], op: str = "sum") -> None:
    """Reduce each tensor of ``data`` across ranks, in place (``op`` as in :func:`all_reduce`).

    Every rank must hold the same keys; they are reduced in sorted order so ranks agree.
    """
    if not isinstance(data, dict):
        raise UsageTypeError(f"all_reduce_dict takes a dict of tensors, got {type(data).__name__}")
    for key in sorted(data):
        all_reduce(data[key], op=op)


def all_reduce_params(params: Any, op: str = "sum") -> None:
    """Reduce each parameter or buffer of ``params`` (an iterable of tensors, e.g.
    ``model.buffers()``) across ranks, in place."""
    for tensor in params:
        data = tensor.data if isinstance(tensor, torch.nn.Parameter) else tensor
        all_reduce(data, op=op)


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


def collect_results_cpu(
    result_part: Sequence[Any], size: int, tmpdir: str | None = None
) -> list[Any] | None:
    """MMEngine's name for :func:`collect_results` as rank 0 sees it: the ordered list on
    rank 0 and ``None`` on the others (nothing goes through ``tmpdir``)."""
    results = collect_results(result_part, size, tmpdir=tmpdir)
    return results if get_rank() == 0 else None


def collect_results_gpu(result_part: Sequence[Any], size: int) -> list[Any] | None:
    """MMEngine's name for :func:`collect_results` over the backend's device: the ordered
    list on rank 0 and ``None`` on the others."""
    results = collect_results(result_part, size)
    return results if get_rank() == 0 else None


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
