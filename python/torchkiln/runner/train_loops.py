"""Training loops: by epoch and by iteration (MMEngine's semantics and names).

Hot path: ``run_iter`` is called once per batch. It does exactly three things — the
``before_train_iter`` hooks, ``model.train_step`` and the ``after_train_iter`` hooks — and
every attribute it needs is looked up once per epoch, not per batch.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from torchkiln.errors import ConfigError
from torchkiln.registry import LOOPS
from torchkiln.runner.base_loop import BaseLoop

if TYPE_CHECKING:  # pragma: no cover
    from torchkiln.runner.runner import Runner

__all__ = ["EpochBasedTrainLoop", "IterBasedTrainLoop", "check_train_outputs"]


def _parse_dynamic_intervals(
    start_interval: int, dynamic_intervals: Sequence[Sequence[int]] | None, what: str
) -> tuple[list[int], list[int]]:
    milestones = [0]
    intervals = [start_interval]
    if dynamic_intervals:
        for item in dynamic_intervals:
            if not isinstance(item, (list, tuple)) or len(item) != 2:
                raise ConfigError(
                    f"train_cfg.dynamic_intervals items must be [milestone, interval], got {item!r}",
                    where="train_cfg.dynamic_intervals",
                )
            milestones.append(int(item[0]))
            intervals.append(int(item[1]))
        if milestones != sorted(milestones):
            raise ConfigError(f"train_cfg.dynamic_intervals milestones must be increasing {what}", where="train_cfg.dynamic_intervals")
    return milestones, intervals


def check_train_outputs(model: Any, outputs: Any) -> None:
    """Raise a clear error when ``train_step`` did not return a dict (checked once per run)."""
    if not isinstance(outputs, dict):
        raise TypeError(
            f"{type(model).__name__}.train_step must return a dict of loss values to log "
            f"(e.g. {{'loss': tensor}}), got {type(outputs).__name__}"
        )


class _TrainLoopMixin:
    """State and helpers shared by both train loops."""

    runner: Runner
    _epoch: int
    _iter: int

    def _init_state(self, val_begin: int, val_interval: int, dynamic_intervals: Any, unit: str) -> None:
        self._epoch = 0
        self._iter = 0
        self.val_begin = val_begin
        self.val_interval = val_interval
        self.stop_training = False
        self.dynamic_milestones, self.dynamic_intervals = _parse_dynamic_intervals(val_interval, dynamic_intervals, unit)
        self._outputs_checked = False

    @property
    def epoch(self) -> int:
        """Number of finished epochs (the current epoch index, 0-based)."""
        return self._epoch

    @property
    def iter(self) -> int:
        """Number of finished training iterations."""
        return self._iter

    def _decide_current_val_interval(self, progress: int) -> None:
        step = bisect.bisect(self.dynamic_milestones, progress + 1)
        self.val_interval = self.dynamic_intervals[step - 1]

    def _ensure_train_mode(self) -> None:
        model = self.runner.model
        if not model.training:
            model.train()


@LOOPS.register_module()
class EpochBasedTrainLoop(_TrainLoopMixin, BaseLoop):
    """Train for ``max_epochs`` passes over the dataloader, validating every ``val_interval``.

    :param runner: the runner.
    :param dataloader: dataloader or its config.
    :param max_epochs: total training epochs.
    :param val_begin: first epoch (1-based) after which validation runs.
    :param val_interval: validate every this many epochs.
    :param dynamic_intervals: ``[[epoch, interval], ...]`` changes ``val_interval`` from an epoch on.
    """

    def __init__(
        self,
        runner: Runner,
        dataloader: Any,
        max_epochs: int,
        val_begin: int = 1,
        val_interval: int = 1,
        dynamic_intervals: list[list[int]] | None = None,
    ) -> None:
        super().__init__(runner, dataloader)
        if not isinstance(max_epochs, int) or max_epochs < 1:
            raise ConfigError(f"train_cfg.max_epochs must be a positive int, got {max_epochs!r}", where="train_cfg.max_epochs")
        self._max_epochs = max_epochs
        self._max_iters = max_epochs * len(self.dataloader)
        self._init_state(val_begin, val_interval, dynamic_intervals, "epochs")
        # Batches of the current epoch already consumed before a resume (skipped by the sampler).
        self._resume_skip = 0

    @property
    def max_epochs(self) -> int:
        """Total number of training epochs."""
        return self._max_epochs

    @property
    def max_iters(self) -> int:
        """Total number of training iterations (epochs x batches per epoch)."""
        return self._max_iters

    def run(self) -> Any:
        """Train until ``max_epochs`` or until ``stop_training`` is set."""
        hooks = self.runner.hooks
        hooks.before_train(self.runner)
        while self._epoch < self._max_epochs and not self.stop_training:
            self.run_epoch()
            self._decide_current_val_interval(self._epoch - 1)
            if self._should_validate():
                self.runner.val_loop.run()
        hooks.after_train(self.runner)
        return self.runner.model

    def _should_validate(self) -> bool:
        if self.runner.val_loop is None or self._epoch < self.val_begin:
            return False
        return self._epoch % self.val_interval == 0 or self._epoch == self._max_epochs

    def run_epoch(self) -> None:
        """Iterate over the dataloader once."""
        runner = self.runner
        runner.hooks.before_train_epoch(runner)
        self._ensure_train_mode()
        start = self._resume_skip
        self._resume_skip = 0
        for idx, data_batch in enumerate(self.dataloader, start):
            self.run_iter(idx, data_batch)
            if self.stop_training and runner.stop_requested:
                break
        else:
            runner.hooks.after_train_epoch(runner)
            self._epoch += 1
            return
        # Stopped mid-epoch by a signal: leave the epoch counter where it is.

    def run_iter(self, idx: int, data_batch: Any) -> None:
        """One training iteration: hooks, ``train_step``, hooks."""
        runner = self.runner
        hooks = runner.hooks
        hooks.before_train_iter(runner, idx, data_batch)
        outputs = runner.model.train_step(data_batch, optim_wrapper=runner.optim_wrapper)
        if not self._outputs_checked:
            check_train_outputs(runner.model, outputs)
            self._outputs_checked = True
        hooks.after_train_iter(runner, idx, data_batch, outputs)
        self._iter += 1


class _InfiniteLoader:
    """Endless iteration over a dataloader, calling ``set_epoch`` on each new pass."""

    def __init__(self, dataloader: Any, loop: IterBasedTrainLoop) -> None:
        self._dataloader = dataloader
        self._loop = loop
        self._iterator = iter(dataloader)

    def __next__(self) -> Any:
        try:
            return next(self._iterator)
        except StopIteration:
            self._loop._epoch += 1
            sampler = getattr(self._dataloader, "sampler", None)
            if hasattr(sampler, "set_epoch"):
                sampler.set_epoch(self._loop._epoch)
            self._iterator = iter(self._dataloader)
            return next(self._iterator)


@LOOPS.register_module()
class IterBasedTrainLoop(_TrainLoopMixin, BaseLoop):
    """Train for ``max_iters`` iterations, validating every ``val_interval`` iterations.

    :param runner: the runner.
    :param dataloader: dataloader or its config (``InfiniteSampler`` suits it best).
    :param max_iters: total training iterations.
    :param val_begin: first iteration (1-based) after which validation runs.
    :param val_interval: validate every this many iterations.
    :param dynamic_intervals: ``[[iter, interval], ...]``.
    """

    def __init__(
        self,
        runner: Runner,
        dataloader: Any,
        max_iters: int,
        val_begin: int = 1,
        val_interval: int = 1000,
        dynamic_intervals: list[list[int]] | None = None,
    ) -> None:
        super().__init__(runner, dataloader)
        if not isinstance(max_iters, int) or max_iters < 1:
            raise ConfigError(f"train_cfg.max_iters must be a positive int, got {max_iters!r}", where="train_cfg.max_iters")
        self._max_iters = max_iters
        self._init_state(val_begin, val_interval, dynamic_intervals, "iterations")

    @property
    def max_epochs(self) -> int:
        """Passes over the data needed for ``max_iters`` (informational)."""
        length = len(self.dataloader) if hasattr(self.dataloader, "__len__") else 0
        return -(-self._max_iters // length) if length else 1

    @property
    def max_iters(self) -> int:
        """Total number of training iterations."""
        return self._max_iters

    def run(self) -> Any:
        """Train until ``max_iters`` or until ``stop_training`` is set."""
        runner = self.runner
        hooks = runner.hooks
        hooks.before_train(runner)
        hooks.before_train_epoch(runner)
        self._ensure_train_mode()
        loader = _InfiniteLoader(self.dataloader, self)
        while self._iter < self._max_iters and not self.stop_training:
            data_batch = next(loader)
            self.run_iter(data_batch)
            self._decide_current_val_interval(self._iter - 1)
            if self._should_validate():
                runner.val_loop.run()
                self._ensure_train_mode()
        hooks.after_train_epoch(runner)
        hooks.after_train(runner)
        return runner.model

    def _should_validate(self) -> bool:
        if self.runner.val_loop is None or self._iter < self.val_begin:
            return False
        return self._iter % self.val_interval == 0 or self._iter == self._max_iters

    def run_iter(self, data_batch: Any) -> None:
        """One training iteration: hooks, ``train_step``, hooks."""
        runner = self.runner
        hooks = runner.hooks
        idx = self._iter
        hooks.before_train_iter(runner, idx, data_batch)
        outputs = runner.model.train_step(data_batch, optim_wrapper=runner.optim_wrapper)
        if not self._outputs_checked:
            check_train_outputs(runner.model, outputs)
            self._outputs_checked = True
        hooks.after_train_iter(runner, idx, data_batch, outputs)
        self._iter += 1
