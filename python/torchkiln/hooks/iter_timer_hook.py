"""IterTimerHook: wall time per iteration, time spent waiting for data, and the ETA.

Hot path: two ``perf_counter`` calls, two message-hub updates and the ETA per iteration,
all Python floats. It measures host time without synchronising the device, so with
asynchronous CUDA work an iteration's time shows up where the host waits (typically in a
later iteration or at a log line); averaged over the log window the numbers are right.
"""

from __future__ import annotations

from time import perf_counter
from typing import Any

from torchkiln.hooks._phase_length import loader_len
from torchkiln.hooks.hook import Hook
from torchkiln.registry import HOOKS

__all__ = ["IterTimerHook"]

# Hub keys per mode, built once: (data time, iteration time).
_KEYS = {mode: (f"{mode}/data_time", f"{mode}/time") for mode in ("train", "val", "test")}


@HOOKS.register_module()
class IterTimerHook(Hook):
    """Log ``<mode>/data_time`` and ``<mode>/time`` per iteration and the ``eta`` info.

    ``data_time`` is the time from the end of the previous iteration (or the start of the
    epoch) to the start of this one, i.e. waiting for the dataloader; ``time`` is the whole
    iteration including that wait. ``eta`` (seconds) is the mean iteration time since
    training (or this evaluation epoch) started times the iterations left.

    One timestamp serves every mode: iterations run one after another, and a validation run
    inside training restarts the clock when it ends, so the next training iteration does not
    count the validation as waiting for data.
    """

    priority = "NORMAL"

    def __init__(self) -> None:
        self._t = 0.0  # end of the previous iteration (or start of the epoch)
        self._train_total = 0.0
        self._train_done = 0  # iterations timed since training (re)started
        # Iterations left when training (re)started; read from the runner at the first
        # timed iteration when ``before_train`` did not run (a hook driven by hand).
        self._train_to_go: int | None = None
        self._eval_total = 0.0

    # ------------------------------------------------------------------ runs and epochs
    def before_train(self, runner: Any) -> None:
        """Start the ETA clock at the (possibly resumed) current iteration."""
        self._train_total = 0.0
        self._train_done = 0
        self._train_to_go = runner.max_iters - runner.iter

    def _before_epoch(self, runner: Any, mode: str = "train") -> None:
        """Start the clock at the start of an epoch of ``mode``; evaluation restarts its ETA."""
        self._t = perf_counter()
        if mode != "train":
            self._eval_total = 0.0

    def _before_iter(
        self, runner: Any, batch_idx: int, data_batch: Any = None, mode: str = "train"
    ) -> None:
        """Record ``<mode>/data_time``."""
        runner.message_hub.update_scalar(_KEYS[mode][0], perf_counter() - self._t)

    def _after_iter(
        self,
        runner: Any,
        batch_idx: int,
        data_batch: Any = None,
        outputs: Any = None,
        mode: str = "train",
    ) -> None:
        """Record ``<mode>/time`` and the ETA of the running phase."""
        if mode == "train":
            self.after_train_iter(runner, batch_idx, data_batch, outputs)
            return
        now = perf_counter()
        elapsed = now - self._t
        self._t = now
        runner.message_hub.update_scalar(_KEYS[mode][1], elapsed)
        self._eval_total += elapsed
        total = loader_len(runner, mode)
        if total is not None:
            left = max(total - batch_idx - 1, 0)
            runner.message_hub.update_info("eta", self._eval_total / (batch_idx + 1) * left)

    # ------------------------------------------------------------------ mount points
    # Every mount point the generic methods above serve is spelled out, so none is generated.
    def before_train_epoch(self, runner: Any) -> None:
        """Start the clock for a training epoch."""
        self._before_epoch(runner, "train")

    def before_val_epoch(self, runner: Any) -> None:
        """Start the clock and the ETA sum for a validation epoch."""
        self._before_epoch(runner, "val")

    def before_test_epoch(self, runner: Any) -> None:
        """Start the clock and the ETA sum for a test epoch."""
        self._before_epoch(runner, "test")

    def after_val_epoch(self, runner: Any, metrics: Any = None) -> None:
        """The next validation epoch's ETA sum starts over, even without ``before_val_epoch``."""
        self._eval_total = 0.0

    def after_test_epoch(self, runner: Any, metrics: Any = None) -> None:
        """The next test epoch's ETA sum starts over, even without ``before_test_epoch``."""
        self._eval_total = 0.0

    def after_val(self, runner: Any) -> None:
        """Do not count a validation run inside training as the next iteration's data time."""
        self._t = perf_counter()

    def before_val_iter(self, runner: Any, batch_idx: int, data_batch: Any = None) -> None:
        """Record ``val/data_time``."""
        self._before_iter(runner, batch_idx, data_batch, "val")

    def before_test_iter(self, runner: Any, batch_idx: int, data_batch: Any = None) -> None:
        """Record ``test/data_time``."""
        self._before_iter(runner, batch_idx, data_batch, "test")

    def after_val_iter(
        self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None
    ) -> None:
        """Record ``val/time`` and the validation ETA."""
        self._after_iter(runner, batch_idx, data_batch, outputs, "val")

    def after_test_iter(
        self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None
    ) -> None:
        """Record ``test/time`` and the test ETA."""
        self._after_iter(runner, batch_idx, data_batch, outputs, "test")

    # The training mount points, spelled out: they run every step.
    def before_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None) -> None:
        """Record ``train/data_time``."""
        runner.message_hub.update_scalar("train/data_time", perf_counter() - self._t)

    def after_train_iter(
        self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None
    ) -> None:
        """Record ``train/time`` and the training ETA."""
        now = perf_counter()
        elapsed = now - self._t
        self._t = now
        hub = runner.message_hub
        hub.update_scalar("train/time", elapsed)
        total = self._train_total = self._train_total + elapsed
        # Counted here rather than read from the runner (two property chains per iteration).
        done = self._train_done = self._train_done + 1
        to_go = self._train_to_go
        if to_go is None:
            to_go = self._train_to_go = runner.max_iters - runner.iter + done - 1
        left = to_go - done
        hub.update_info("eta", total / done * left if left > 0 else 0.0)
