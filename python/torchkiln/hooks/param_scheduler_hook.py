"""ParamSchedulerHook: step the parameter schedulers at the right moments.

Iteration-based schedulers (``by_epoch=False``) step after every training iteration,
epoch-based ones after every training epoch. Schedulers that decide from validation metrics
also step after validation, with the metrics:

- torchkiln's (and MMEngine's) ``need_val_args = True`` schedulers take both calls: the
  plain ``step()`` after training counts steps (so ``begin``/``end`` work), ``step(metrics)``
  after validation acts;
- other schedulers of the ReduceOnPlateau kind (recognised by class name) only get
  ``step(metrics)`` after validation.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from torchkiln.errors import ConfigError
from torchkiln.hooks.hook import Hook
from torchkiln.registry import HOOKS

__all__ = ["ParamSchedulerHook", "iter_schedulers", "metrics_only", "needs_val_metrics"]


def iter_schedulers(param_schedulers: Any) -> Iterator[Any]:
    """Every scheduler in ``runner.param_schedulers``: None, a list, one scheduler, or a dict
    of optimizer name to list (for an OptimWrapperDict). Configs not built yet (dicts with a
    ``type`` key, e.g. in a run that only validates) are skipped."""
    if param_schedulers is None:
        return
    if isinstance(param_schedulers, Mapping):
        if "type" in param_schedulers:
            return
        for group in param_schedulers.values():
            yield from iter_schedulers(group)
    elif isinstance(param_schedulers, (list, tuple)):
        for scheduler in param_schedulers:
            yield from iter_schedulers(scheduler)
    elif callable(getattr(param_schedulers, "step", None)):
        yield param_schedulers
    else:
        raise ConfigError(
            f"runner.param_schedulers must be a scheduler, a list of them or a dict of lists, "
            f"got {type(param_schedulers).__name__}",
            where="param_scheduler",
        )


def needs_val_metrics(scheduler: Any) -> bool:
    """True for schedulers that step on a validation metric (ReduceOnPlateau and its kin)."""
    return bool(getattr(scheduler, "need_val_args", False)) or metrics_only(scheduler)


def metrics_only(scheduler: Any) -> bool:
    """A plateau-kind scheduler without ``need_val_args``: it only takes ``step(metrics)``."""
    name = type(scheduler).__name__
    plateau = "ReduceOnPlateau" in name or "ReduceLROnPlateau" in name
    return plateau and not getattr(scheduler, "need_val_args", False)


def _by_epoch(scheduler: Any) -> bool:
    return bool(getattr(scheduler, "by_epoch", True))


@HOOKS.register_module()
class ParamSchedulerHook(Hook):
    """Step ``runner.param_schedulers``.

    - after each training iteration: schedulers with ``by_epoch=False``;
    - after each training epoch: schedulers with ``by_epoch=True`` (a scheduler without a
      ``by_epoch`` attribute counts as epoch-based);
    - after each validation epoch: metric-driven schedulers, as ``scheduler.step(metrics)``.

    Plateau-kind schedulers without ``need_val_args`` are stepped only after validation.
    """

    priority = "LOW"

    def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        """Step the iteration-based schedulers."""
        for scheduler in iter_schedulers(runner.param_schedulers):
            if not _by_epoch(scheduler) and not metrics_only(scheduler):
                scheduler.step()

    def after_train_epoch(self, runner: Any) -> None:
        """Step the epoch-based schedulers."""
        for scheduler in iter_schedulers(runner.param_schedulers):
            if _by_epoch(scheduler) and not metrics_only(scheduler):
                scheduler.step()

    def after_val_epoch(self, runner: Any, metrics: Mapping[str, Any] | None = None) -> None:
        """Step the metric-driven schedulers with the validation metrics."""
        if not metrics:
            return
        for scheduler in iter_schedulers(runner.param_schedulers):
            if needs_val_metrics(scheduler):
                scheduler.step(metrics)
