"""ReduceOnPlateauParamScheduler: lower a hyperparameter when a validation metric stalls."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torchkiln.errors import ConfigValueError, UsageKeyError, UsageTypeError, did_you_mean
from torchkiln.optim.scheduler.param_scheduler import INF, _logger, _ParamScheduler
from torchkiln.registry import PARAM_SCHEDULERS

__all__ = ["ReduceOnPlateauParamScheduler"]


@PARAM_SCHEDULERS.register_module()
class ReduceOnPlateauParamScheduler(_ParamScheduler):
    """Multiply the value by ``factor`` after ``patience`` validations without improvement.

    Two kinds of calls: plain ``step()`` counts training steps (epochs or iterations, like
    any scheduler; it changes nothing) so that ``begin``/``end`` mean the same as
    elsewhere; ``step(metrics)`` after each validation reads ``metrics[monitor]`` (or
    ``metrics['val/' + monitor]``) and reduces the value when it has not improved for more
    than ``patience`` validations. ``need_val_args`` tells the scheduler hook to pass
    metrics.

    In iteration-based training give ``by_epoch: false`` (``begin``/``end`` in iterations).
    ``by_epoch: true`` is refused there like for any scheduler: its counting ``step()``
    runs after training epochs, which such training does not have, so ``begin``/``end``
    would never be reached.

    :param monitor: the metric to watch.
    :param rule: ``'less'`` (lower is better, e.g. a loss) or ``'greater'``.
    :param factor: multiplier in ``[0, 1)`` applied on a plateau.
    :param patience: validations without improvement tolerated before reducing.
    :param threshold: minimum change that counts as an improvement.
    :param threshold_rule: ``'rel'`` (relative to the best value) or ``'abs'``.
    :param cooldown: validations to wait after a reduction before counting again.
    :param min_value: lower bound, one number or one per param group.
    :param eps: reductions smaller than this are skipped.
    """

    need_val_args = True

    def __init__(
        self,
        optimizer: Any,
        param_name: str,
        monitor: str = "loss",
        rule: str = "less",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_rule: str = "rel",
        cooldown: int = 0,
        min_value: float | Sequence[float] = 0.0,
        eps: float = 1e-8,
        begin: int = 0,
        end: int = INF,
        last_step: int = -1,
        by_epoch: bool = True,
        verbose: bool = False,
    ) -> None:
        owner = type(self).__name__
        if not 0 <= factor < 1.0:
            raise ConfigValueError(
                f"{owner}: factor must be in [0, 1), got {factor}", where=f"{owner}.factor"
            )
        if rule not in ("less", "greater"):
            raise ConfigValueError(
                f"{owner}: rule must be 'less' or 'greater', got {rule!r}", where=f"{owner}.rule"
            )
        if threshold_rule not in ("rel", "abs"):
            raise ConfigValueError(
                f"{owner}: threshold_rule must be 'rel' or 'abs', got {threshold_rule!r}",
                where=f"{owner}.threshold_rule",
            )
        if threshold < 0:
            raise ConfigValueError(
                f"{owner}: threshold must be >= 0, got {threshold}", where=f"{owner}.threshold"
            )
        for name, value in (("patience", patience), ("cooldown", cooldown)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigValueError(
                    f"{owner}: {name} must be an integer >= 0, got {value!r}",
                    where=f"{owner}.{name}",
                )
        groups = getattr(optimizer, "param_groups", None)
        if not isinstance(groups, list):  # not an optimizer: the base class says so below
            groups = []
        # An OptimWrapper's base_param_settings group is not the optimizer's: one min_value
        # per optimizer group, and the base group takes the last one.
        base = getattr(optimizer, "base_param_settings", None)
        own_groups = len(groups) - (1 if base is not None else 0)
        if isinstance(min_value, Sequence) and not isinstance(min_value, str):
            if len(min_value) != own_groups:
                raise ConfigValueError(
                    f"{owner}: min_value has {len(min_value)} values for {own_groups} param groups",
                    where=f"{owner}.min_value",
                )
            self.min_values = [float(v) for v in min_value]
            if base is not None and self.min_values:
                self.min_values.append(self.min_values[-1])
        else:
            self.min_values = [float(min_value)] * len(groups)
        self.monitor = monitor
        self.rule = rule
        self.factor = factor
        self.patience = patience
        self.threshold = threshold
        self.threshold_rule = threshold_rule
        self.cooldown = cooldown
        self.eps = eps
        self.best = float("inf") if rule == "less" else float("-inf")
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        super().__init__(optimizer, param_name, begin, end, last_step, by_epoch, verbose)

    def _is_better(self, value: float) -> bool:
        if self.rule == "less":
            bound = (
                self.best * (1 - self.threshold)
                if self.threshold_rule == "rel"
                else self.best - self.threshold
            )
            return value < bound
        bound = (
            self.best * (1 + self.threshold)
            if self.threshold_rule == "rel"
            else self.best + self.threshold
        )
        return value > bound

    def _metric(self, metrics: Mapping[str, Any]) -> float:
        for key in (self.monitor, f"val/{self.monitor}"):
            if key in metrics:
                return float(metrics[key])
        raise UsageKeyError(
            f"{type(self).__name__} monitors {self.monitor!r}, which the validation metrics do not have",
            where=f"{type(self).__name__}.monitor",
            hint=(did_you_mean(self.monitor, metrics) or "")
            + f" metrics: {', '.join(map(str, metrics)) or 'none'}",
        )

    def step(self, metrics: Mapping[str, Any] | None = None) -> None:
        """Count a training step (no ``metrics``) or react to validation ``metrics``."""
        groups = self.optimizer.param_groups
        if metrics is None:
            self._global_step += 1
            self._last_value = [group[self.param_name] for group in groups]
            return
        if not isinstance(metrics, Mapping):
            raise UsageTypeError(
                f"{type(self).__name__}.step expects a dict of metrics, got {type(metrics).__name__}"
            )
        if self.begin <= self._global_step < self.end:
            self.last_step += 1
            value = self._metric(metrics)
            if self._is_better(value):
                self.best = value
                self.num_bad_epochs = 0
            else:
                self.num_bad_epochs += 1
            if self.cooldown_counter > 0:
                self.cooldown_counter -= 1
                self.num_bad_epochs = 0
            if self.num_bad_epochs > self.patience:
                for index, (group, new) in enumerate(zip(groups, self._get_value())):
                    if group[self.param_name] - new > self.eps:
                        group[self.param_name] = new
                        if self.verbose:
                            _logger.info(
                                "%s: %s of group %d reduced to %.4e",
                                type(self).__name__,
                                self.param_name,
                                index,
                                new,
                            )
                self._sync_betas()
                self.cooldown_counter = self.cooldown
                self.num_bad_epochs = 0
        self._last_value = [group[self.param_name] for group in groups]

    def _get_value(self) -> list[Any]:
        return [
            max(group[self.param_name] * self.factor, floor)
            for group, floor in zip(self.optimizer.param_groups, self.min_values)
        ]
