"""IterTimerHook: wall time per iteration, time spent waiting for data, and the ETA.

Hot path: two ``perf_counter`` calls, two message-hub updates and the ETA per iteration,
all Python floats. It measures host time without synchronising the device, so with asynchronous CUDA
work an iteration's time shows up where the host waits (typically in a later iteration or at
a log line); averaged over the log window the numbers are right.
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
    training (or this evaluation) started times the iterations left.
    """

    priority = "NORMAL"

    def __init__(self) -> None:
        self._last: dict[str, float] = {}
        self._train_total = 0.0
        self._train_done = 0  # iterations timed since training (re)started
        self._train_to_go = 0  # iterations left when training (re)started
        self._eval_total = 0.0

    # ------------------------------------------------------------------ epochs
    def before_train(self, runner: Any) -> None:
        """Start the ETA clock at the (possibly resumed) current iteration."""
        self._train_total = 0.0
        self._train_done = 0
        self._train_to_go = runner.max_iters - runner.iter

    def before_train_epoch(self, runner: Any) -> None:
        """Reset the train timer at the start of an epoch."""
        self._last["train"] = perf_counter()

    def before_val_epoch(self, runner: Any) -> None:
        """Reset the validation timer and its ETA."""
        self._last["val"] = perf_counter()
        self._eval_total = 0.0

    def before_test_epoch(self, runner: Any) -> None:
        """Reset the test timer and its ETA."""
        self._last["test"] = perf_counter()
        self._eval_total = 0.0

    def after_val(self, runner: Any) -> None:
        """Do not count a validation run inside training as the next iteration's data time."""
        if "train" in self._last:
            self._last["train"] = perf_counter()

    # ------------------------------------------------------------------ iterations
    def before_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None) -> None:
        """Record ``train/data_time``."""
        now = perf_counter()
        runner.message_hub.update_scalar("train/data_time", now - self._last.get("train", now))

    def before_val_iter(self, runner: Any, batch_idx: int, data_batch: Any = None) -> None:
        """Record ``val/data_time``."""
        self._record_data_time(runner, "val")

    def before_test_iter(self, runner: Any, batch_idx: int, data_batch: Any = None) -> None:
        """Record ``test/data_time``."""
        self._record_data_time(runner, "test")

    def after_train_iter(
        self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None
    ) -> None:
        """Record ``train/time`` and the training ETA."""
        now = perf_counter()
        last = self._last
        elapsed = now - last.get("train", now)
        last["train"] = now
        hub = runner.message_hub
        hub.update_scalar("train/time", elapsed)
        total = self._train_total = self._train_total + elapsed
        # Counted here rather than read from the runner (two property chains per iteration).
        done = self._train_done = self._train_done + 1
        left = self._train_to_go - done
        hub.update_info("eta", total / done * left if left > 0 else 0.0)

    def after_val_iter(
        self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None
    ) -> None:
        """Record ``val/time`` and the validation ETA."""
        self._after_eval_iter(runner, "val", batch_idx)

    def after_test_iter(
        self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None
    ) -> None:
        """Record ``test/time`` and the test ETA."""
        self._after_eval_iter(runner, "test", batch_idx)

    # ------------------------------------------------------------------ helpers
    # (Not named _before_iter/_after_iter: those are the Hook base class's generic methods.)
    def _record_data_time(self, runner: Any, mode: str) -> None:
        now = perf_counter()
        start = self._last.get(mode, now)
        runner.message_hub.update_scalar(_KEYS[mode][0], now - start)

    def _record_time(self, runner: Any, mode: str) -> float:
        now = perf_counter()
        elapsed = now - self._last.get(mode, now)
        self._last[mode] = now
        runner.message_hub.update_scalar(_KEYS[mode][1], elapsed)
        return elapsed

    def _after_eval_iter(self, runner: Any, mode: str, batch_idx: int) -> None:
        self._eval_total += self._record_time(runner, mode)
        total = loader_len(runner, mode)
        if total is not None:
            left = max(total - batch_idx - 1, 0)
            runner.message_hub.update_info("eta", self._eval_total / (batch_idx + 1) * left)
