"""DistSamplerSeedHook: tell the sampler (and dataset) which epoch starts, so shuffles differ."""

from __future__ import annotations

from typing import Any

from torchkiln.hooks.hook import Hook
from torchkiln.registry import HOOKS

__all__ = ["DistSamplerSeedHook"]


@HOOKS.register_module()
class DistSamplerSeedHook(Hook):
    """Call ``set_epoch(runner.epoch)`` before each training epoch.

    Called on the train dataloader's ``sampler``, on its ``batch_sampler`` and that batch
    sampler's ``sampler``, and on its ``dataset``: each object that has ``set_epoch``, once.
    Samplers derive their shuffle order from ``(seed, epoch)``, so every rank draws the same
    permutation and each epoch a new one; datasets with epoch-dependent augmentation use it
    the same way.
    """

    priority = "NORMAL"

    def before_train_epoch(self, runner: Any) -> None:
        """Set the epoch on everything in the train dataloader that takes one."""
        loop = getattr(runner, "train_loop", None)
        loader = getattr(loop, "dataloader", None)
        if loader is None:
            loader = getattr(runner, "train_dataloader", None)
        if loader is None:
            return
        batch_sampler = getattr(loader, "batch_sampler", None)
        candidates = (
            getattr(loader, "sampler", None),
            batch_sampler,
            getattr(batch_sampler, "sampler", None),
            getattr(loader, "dataset", None),
        )
        seen: list[int] = []
        for obj in candidates:
            if obj is None or id(obj) in seen or not callable(getattr(obj, "set_epoch", None)):
                continue
            seen.append(id(obj))
            obj.set_epoch(runner.epoch)
