"""A hook the torchrun tests add with ``custom_hooks: [{type: _ddp_probe.ProbeHook}]``.

It saves what each rank ends with (weights, iteration, validation metrics) to
``work_dir/probe_rank<r>.pt``, and can make one rank raise to test failure handling.
"""

from __future__ import annotations

import os

import torch

from torchkiln.hooks import Hook
from torchkiln.model.wrappers import unwrap_model


class ProbeHook(Hook):
    """Record each rank's final state; optionally raise on ``fail_rank`` after ``fail_iter`` iterations."""

    priority = "LOWEST"

    def __init__(self, fail_rank: int | None = None, fail_iter: int = 1) -> None:
        self.fail_rank = fail_rank
        self.fail_iter = fail_iter
        self.metrics: list[dict] = []
        self.first_iter: int | None = None

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        if self.first_iter is None:
            self.first_iter = runner.iter

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if runner.rank == self.fail_rank and runner.iter + 1 >= self.fail_iter:
            raise RuntimeError(f"probe failure on rank {runner.rank} at iteration {runner.iter + 1}")

    def after_val_epoch(self, runner, metrics=None) -> None:
        self.metrics.append(dict(metrics or {}))

    def after_run(self, runner) -> None:
        model = unwrap_model(runner.model)
        torch.save(
            {
                "rank": runner.rank,
                "world_size": runner.world_size,
                "model_type": type(runner.model).__name__,
                "iter": runner.iter,
                "first_iter": self.first_iter,
                "metrics": self.metrics,
                "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            },
            os.path.join(runner.work_dir, f"probe_rank{runner.rank}.pt"),
        )
