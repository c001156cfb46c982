"""EmptyCacheHook: give cached CUDA memory back to the driver at chosen moments."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torchkiln.hooks.hook import Hook
from torchkiln.registry import HOOKS

__all__ = ["EmptyCacheHook"]


def _empty_cache() -> None:
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


@HOOKS.register_module()
class EmptyCacheHook(Hook):
    """Call ``torch.cuda.empty_cache()`` before/after epochs and/or after iterations.

    Applies to training, validation and testing alike. Emptying the cache makes later
    allocations slower; use it to keep memory low for other processes, not for speed. Does
    nothing without CUDA.

    :param before_epoch: empty the cache before each epoch.
    :param after_epoch: empty the cache after each epoch.
    :param after_iter: empty the cache after each iteration (costly).
    """

    priority = "NORMAL"

    def __init__(
        self, before_epoch: bool = False, after_epoch: bool = True, after_iter: bool = False
    ) -> None:
        self._empty_before_epoch = before_epoch
        self._empty_after_epoch = after_epoch
        self._empty_after_iter = after_iter

    def _on_before_epoch(self) -> None:
        if self._empty_before_epoch:
            _empty_cache()

    def _on_after_epoch(self) -> None:
        if self._empty_after_epoch:
            _empty_cache()

    def _on_after_iter(self) -> None:
        if self._empty_after_iter:
            _empty_cache()

    def before_train_epoch(self, runner: Any) -> None:
        """Empty the cache if ``before_epoch``."""
        self._on_before_epoch()

    def before_val_epoch(self, runner: Any) -> None:
        """Empty the cache if ``before_epoch``."""
        self._on_before_epoch()

    def before_test_epoch(self, runner: Any) -> None:
        """Empty the cache if ``before_epoch``."""
        self._on_before_epoch()

    def after_train_epoch(self, runner: Any) -> None:
        """Empty the cache if ``after_epoch``."""
        self._on_after_epoch()

    def after_val_epoch(self, runner: Any, metrics: Mapping[str, Any] | None = None) -> None:
        """Empty the cache if ``after_epoch``."""
        self._on_after_epoch()

    def after_test_epoch(self, runner: Any, metrics: Mapping[str, Any] | None = None) -> None:
        """Empty the cache if ``after_epoch``."""
        self._on_after_epoch()

    def after_train_iter(
        self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None
    ) -> None:
        """Empty the cache if ``after_iter``."""
        self._on_after_iter()

    def after_val_iter(
        self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None
    ) -> None:
        """Empty the cache if ``after_iter``."""
        self._on_after_iter()

    def after_test_iter(
        self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None
    ) -> None:
        """Empty the cache if ``after_iter``."""
        self._on_after_iter()
