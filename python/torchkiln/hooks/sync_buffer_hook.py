"""SyncBuffersHook: average model buffers (BatchNorm statistics) across ranks."""

from __future__ import annotations

from typing import Any

from torchkiln.hooks.hook import Hook
from torchkiln.registry import HOOKS

__all__ = ["SyncBuffersHook", "all_reduce_buffers"]


def all_reduce_buffers(model: Any) -> None:
    """Average ``model``'s buffers over all ranks, in place.

    Buffers are grouped by device and dtype and reduced as one flat tensor per group, so the
    cost is one collective per group rather than one per buffer. Integer buffers (such as
    BatchNorm's ``num_batches_tracked``) are averaged in float64 and rounded, so every rank
    ends with the same value (normally they are equal already); boolean buffers are left
    alone. No-op in a single process.
    """
    from torchkiln.dist import all_reduce, get_world_size

    if get_world_size() <= 1:
        return
    import torch

    groups: dict[tuple[Any, Any], list[Any]] = {}
    for buf in model.buffers():
        if buf.dtype != torch.bool:
            groups.setdefault((buf.device, buf.dtype), []).append(buf)
    with torch.no_grad():
        for bufs in groups.values():
            flat = torch.cat([b.reshape(-1) for b in bufs])
            integral = not (flat.is_floating_point() or flat.is_complex())
            if integral:
                flat = flat.to(torch.float64)
            flat = all_reduce(flat, op="mean")
            if integral:
                flat = flat.round()
            offset = 0
            for b in bufs:
                n = b.numel()
                b.copy_(flat[offset : offset + n].view_as(b))
                offset += n


@HOOKS.register_module()
class SyncBuffersHook(Hook):
    """All-reduce (mean) the model's buffers after each training epoch.

    Validation also syncs first when no training epoch ended since the last sync (the
    iteration-based loop validates mid-epoch). Does nothing in a single process.
    """

    priority = "NORMAL"

    def __init__(self) -> None:
        self._synced_since_train = False

    def after_train_epoch(self, runner: Any) -> None:
        """Average the buffers across ranks."""
        all_reduce_buffers(runner.model)
        self._synced_since_train = True

    def before_val_epoch(self, runner: Any) -> None:
        """Average the buffers unless the end of a training epoch just did."""
        if not self._synced_since_train:
            all_reduce_buffers(runner.model)
        self._synced_since_train = False
