"""NonFiniteLossHook: catch NaN/Inf losses without synchronising every iteration.

``action='error'``: each iteration folds ``isfinite`` of every loss value into a flag that
stays on the device (a few tiny kernels, no host sync). Every ``interval`` iterations and at
the end of each epoch the flag is read once; if a loss was NaN or Inf in that window the run
stops with an error naming the window and the loss keys.

``action='skip'``: the optimizer wrapper skips any update whose loss is not finite
(``optim_wrapper.skip_nonfinite``) and counts them (``optim_wrapper.skipped_steps``); the
hook turns that on and logs the count every ``interval`` iterations when it grew.

Registered as ``NonFiniteLossHook`` and, for MMEngine configs, ``CheckInvalidLossHook``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torchkiln.errors import ConfigError, TorchkilnError
from torchkiln.hooks.hook import Hook
from torchkiln.registry import HOOKS

__all__ = ["CheckInvalidLossHook", "NonFiniteLossError", "NonFiniteLossHook"]

_ACTIONS = ("error", "skip")


class NonFiniteLossError(TorchkilnError, RuntimeError):
    """Training produced a NaN or infinite loss."""


def _loss_items(outputs: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The tensors to check: ``loss`` and every key containing ``loss``."""
    return [(k, v) for k, v in outputs.items() if "loss" in k and hasattr(v, "isfinite")]


def _iter_wrappers(optim_wrapper: Any) -> list[Any]:
    """The wrapper itself, or each wrapper of an OptimWrapperDict."""
    values = getattr(optim_wrapper, "values", None)
    if callable(values) and callable(getattr(optim_wrapper, "items", None)):
        return list(values())
    return [optim_wrapper]


@HOOKS.register_module(name=["NonFiniteLossHook", "CheckInvalidLossHook"])
class NonFiniteLossHook(Hook):
    """Stop on (``'error'``) or skip (``'skip'``) updates with a NaN or infinite loss.

    :param action: ``'error'`` or ``'skip'``.
    :param interval: iterations between checks (``'error'``) or count reports (``'skip'``).
    """

    priority = "NORMAL"

    def __init__(self, action: str = "error", interval: int = 50) -> None:
        if action not in _ACTIONS:
            raise ConfigError(
                f"NonFiniteLossHook action must be 'error' or 'skip', got {action!r}",
                where="custom_hooks.NonFiniteLossHook.action",
            )
        if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
            raise ConfigError(
                f"NonFiniteLossHook interval must be a positive int, got {interval!r}",
                where="custom_hooks.NonFiniteLossHook.interval",
            )
        self.action = action
        self.interval = interval
        # 'error': device-side flags for the current window, one per key set seen in it.
        self._keys: tuple[str, ...] | None = None
        self._finite: Any = None
        self._closed: list[tuple[tuple[str, ...], Any]] = []
        self._window_start: int | None = None
        # 'skip'
        self._reported_skips = 0

    # ------------------------------------------------------------------ setup
    def before_train(self, runner: Any) -> None:
        """In ``'skip'`` mode, ask the optimizer wrapper(s) to skip non-finite updates."""
        self._reset()
        if self.action != "skip":
            return
        for wrapper in _iter_wrappers(runner.optim_wrapper):
            if not hasattr(wrapper, "skip_nonfinite"):
                raise ConfigError(
                    f"NonFiniteLossHook(action='skip') needs an optimizer wrapper that can skip updates; "
                    f"{type(wrapper).__name__} has no skip_nonfinite",
                    where="custom_hooks.NonFiniteLossHook.action",
                    hint="use torchkiln's OptimWrapper/AmpOptimWrapper, or action='error'",
                )
            wrapper.skip_nonfinite = True
        self._reported_skips = self._skipped(runner)

    def _reset(self) -> None:
        self._keys = None
        self._finite = None
        self._closed = []
        self._window_start = None

    # ------------------------------------------------------------------ per iteration
    def after_train_iter(
        self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None
    ) -> None:
        """Fold this iteration's losses into the device flag; check at the interval."""
        if self.action == "skip":
            if self.every_n_train_iters(runner, self.interval):
                self._report_skips(runner)
            return
        if self._window_start is None:
            self._window_start = runner.iter
        if isinstance(outputs, Mapping):
            self._accumulate(outputs)
        if self.every_n_train_iters(runner, self.interval):
            self._check(runner, runner.iter)

    def _accumulate(self, outputs: Mapping[str, Any]) -> None:
        import torch

        items = _loss_items(outputs)
        if not items:
            return
        keys = tuple(k for k, _ in items)
        values = [v.detach() for _, v in items]
        if all(v.numel() == 1 for v in values):
            finite = torch.isfinite(torch.stack([v.reshape(()).float() for v in values]))
        else:
            finite = torch.stack([torch.isfinite(v).all() for v in values])
        if keys != self._keys:
            if self._keys is not None:
                self._closed.append((self._keys, self._finite))
            self._keys, self._finite = keys, finite
        else:
            self._finite = self._finite & finite  # stays on the device: no sync

    def after_train_epoch(self, runner: Any) -> None:
        """Check the rest of the window at the end of an epoch."""
        if self.action == "error":
            self._check(runner, runner.iter - 1)
        else:
            self._report_skips(runner)

    def after_train(self, runner: Any) -> None:
        """Check whatever is left when training ends."""
        if self.action == "error":
            self._check(runner, runner.iter - 1)

    # ------------------------------------------------------------------ checks
    def _check(self, runner: Any, last_iter: int) -> None:
        windows = self._closed + ([(self._keys, self._finite)] if self._keys is not None else [])
        start = self._window_start
        self._reset()
        if not windows or start is None:
            return
        bad: list[str] = []
        for keys, finite in windows:
            flags = finite.tolist()  # the one host sync per window
            bad.extend(k for k, ok in zip(keys, flags) if not ok and k not in bad)
        if not bad:
            return
        first, last = start + 1, last_iter + 1
        span = f"iteration {first}" if first == last else f"iterations {first}-{last}"
        raise NonFiniteLossError(
            f"non-finite loss (NaN or Inf) in {', '.join(repr(k) for k in bad)} during {span}",
            where=f"epoch {runner.epoch + 1}, {span}",
            hint=(
                "lower the learning rate or add warmup, enable gradient clipping "
                "(optim_wrapper.clip_grad: {max_norm: 1.0}), check the data for NaN/Inf, or use "
                "NonFiniteLossHook(action='skip') to skip such updates"
            ),
        )

    @staticmethod
    def _skipped(runner: Any) -> int:
        total = 0
        for wrapper in _iter_wrappers(runner.optim_wrapper):
            count = getattr(wrapper, "skipped_steps", 0)
            total += int(count)  # read at report intervals only
        return total

    def _report_skips(self, runner: Any) -> None:
        skipped = self._skipped(runner)
        if skipped > self._reported_skips:
            runner.logger.warning(
                f"NonFiniteLossHook: skipped {skipped - self._reported_skips} update(s) with a non-finite loss "
                f"since the last report ({skipped} in total)"
            )
            runner.message_hub.update_info("skipped_steps", skipped)
        self._reported_skips = skipped


CheckInvalidLossHook = NonFiniteLossHook
