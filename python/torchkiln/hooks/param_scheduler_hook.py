"""ParamSchedulerHook: step the parameter schedulers at the right moments.

Iteration-based schedulers (``by_epoch=False``) step after every training iteration,
epoch-based ones after every training epoch. Schedulers that decide from validation metrics
(``need_val_args = True``, torchkiln's and MMEngine's protocol, e.g. ``ReduceOnPlateauLR``)
take both calls: the plain ``step()`` after training counts steps (so ``begin``/``end``
work), ``step(metrics)`` after validation acts.

The schedulers are sorted into these three groups once, and again only when
``runner.param_schedulers`` is replaced (or a list or dict of them changes length), so a
training iteration costs one loop over the iteration-based schedulers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torchkiln.errors import ConfigTypeError
from torchkiln.hooks.hook import Hook
from torchkiln.optim.scheduler.collection import iter_schedulers
from torchkiln.registry import HOOKS

__all__ = ["ParamSchedulerHook", "iter_schedulers", "needs_val_metrics"]


def needs_val_metrics(scheduler: Any) -> bool:
    """True for schedulers that step on validation metrics (``need_val_args = True``)."""
    return bool(getattr(scheduler, "need_val_args", False))


def _by_epoch(scheduler: Any) -> bool:
    return bool(getattr(scheduler, "by_epoch", True))


def _size(param_schedulers: Any) -> int:
    return len(param_schedulers) if isinstance(param_schedulers, (list, tuple, Mapping)) else -1


@HOOKS.register_module()
class ParamSchedulerHook(Hook):
    """Step ``runner.param_schedulers``.

    - after each training iteration: schedulers with ``by_epoch=False``;
    - after each training epoch: schedulers with ``by_epoch=True`` (a scheduler without a
      ``by_epoch`` attribute counts as epoch-based);
    - after each validation epoch: schedulers with ``need_val_args = True``, as
      ``scheduler.step(metrics)`` (they are also stepped, without metrics, after training
      iterations or epochs as above, which counts their steps).
    """

    priority = "LOW"

    def __init__(self) -> None:
        self._source: Any = None
        self._source_size = -2
        self._iter_based: tuple[Any, ...] = ()
        self._epoch_based: tuple[Any, ...] = ()
        self._val_based: tuple[Any, ...] = ()

    def _groups(self, runner: Any) -> None:
        """Sort the schedulers into the three groups unless they are sorted already."""
        source = runner.param_schedulers
        if source is self._source and _size(source) == self._source_size:
            return
        if source is not None and not isinstance(source, (list, tuple, Mapping)):
            raise ConfigTypeError(
                "runner.param_schedulers should be list of ParamScheduler or a dict containing "
                f"list of ParamScheduler, got {type(source).__name__}",
                where="param_scheduler",
                hint="wrap a single scheduler in a list",
            )
        schedulers = list(iter_schedulers(source))
        self._iter_based = tuple(s for s in schedulers if not _by_epoch(s))
        self._epoch_based = tuple(s for s in schedulers if _by_epoch(s))
        self._val_based = tuple(s for s in schedulers if needs_val_metrics(s))
        self._source = source
        self._source_size = _size(source)

    def before_train(self, runner: Any) -> None:
        """Sort the schedulers (again: the runner may have rebuilt them)."""
        self._source = None
        self._groups(runner)

    def after_train_iter(
        self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None
    ) -> None:
        """Step the iteration-based schedulers."""
        source = runner.param_schedulers
        if source is not self._source or (
            self._source_size >= 0 and len(source) != self._source_size
        ):
            self._groups(runner)
        for scheduler in self._iter_based:
            scheduler.step()

    def after_train_epoch(self, runner: Any) -> None:
        """Step the epoch-based schedulers."""
        self._groups(runner)
        for scheduler in self._epoch_based:
            scheduler.step()

    def after_val_epoch(self, runner: Any, metrics: Mapping[str, Any] | None = None) -> None:
        """Step the metric-driven schedulers with the validation metrics."""
        if not metrics:
            return
        self._groups(runner)
        for scheduler in self._val_based:
            scheduler.step(metrics)
