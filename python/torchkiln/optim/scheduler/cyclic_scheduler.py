"""Cyclic schedules: one-cycle (warm up, anneal) and cosine annealing with restarts."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from torchkiln.errors import ConfigAssertionError, ConfigValueError
from torchkiln.optim.scheduler.param_scheduler import (
    INF,
    _check_eta_min,
    _eta_min_of,
    _ParamScheduler,
    _positive_int,
)
from torchkiln.registry import PARAM_SCHEDULERS

__all__ = ["CosineRestartParamScheduler", "OneCycleParamScheduler"]


def _anneal(strategy: str, start: float, end: float, pct: float) -> float:
    if strategy == "cos":
        return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
    return (end - start) * pct + start


@PARAM_SCHEDULERS.register_module()
class OneCycleParamScheduler(_ParamScheduler):
    """The 1cycle policy: from ``eta_max / div_factor`` up to ``eta_max``, then down to
    ``eta_max / div_factor / final_div_factor`` (not chainable: values are absolute).

    Phases (``N = total_steps``, ``p = pct_start``): two phases ending at steps
    ``p*N - 1`` (initial to max) and ``N - 1`` (max to min); with ``three_phase`` the second
    phase returns to the initial value at ``2*p*N - 2`` and a third goes to the minimum.

    :param eta_max: the peak value, one number or one per param group.
    :param total_steps: steps in the cycle; defaults to ``end - begin``.
    :param pct_start: fraction of the cycle spent rising.
    :param anneal_strategy: ``'cos'`` or ``'linear'``.
    :param div_factor: initial value = ``eta_max / div_factor``.
    :param final_div_factor: minimum = initial value / ``final_div_factor``.
    :param three_phase: use the three-phase variant of the original paper.
    """

    def __init__(
        self,
        optimizer: Any,
        param_name: str,
        eta_max: float | Sequence[float] = 0,
        total_steps: int | None = None,
        pct_start: float = 0.3,
        anneal_strategy: str = "cos",
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
        begin: int = 0,
        end: int = INF,
        last_step: int = -1,
        by_epoch: bool = True,
        verbose: bool = False,
    ) -> None:
        owner = type(self).__name__
        if total_steps is None:
            if end >= INF:
                raise ConfigValueError(
                    f"{owner} needs total_steps or a finite end",
                    where=owner,
                    hint="set total_steps, or end (built from config, end defaults to the end of training)",
                )
            total_steps = int(end - begin)
        self.total_steps = _positive_int(total_steps, "total_steps", owner)
        if not 0 <= pct_start <= 1:
            raise ConfigValueError(
                f"{owner}: pct_start must be in [0, 1], got {pct_start}", where=f"{owner}.pct_start"
            )
        if anneal_strategy not in ("cos", "linear"):
            raise ConfigValueError(
                f"{owner}: anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}",
                where=f"{owner}.anneal_strategy",
            )
        self.anneal_strategy = anneal_strategy
        self.div_factor = div_factor
        self.final_div_factor = final_div_factor
        self.three_phase = three_phase
        n, p = self.total_steps, float(pct_start)
        if three_phase:
            self._phases = [
                (p * n - 1, "initial", "max"),
                (2 * p * n - 2, "max", "initial"),
                (n - 1, "initial", "min"),
            ]
        else:
            self._phases = [(p * n - 1, "initial", "max"), (n - 1, "max", "min")]
        groups = optimizer.param_groups
        if isinstance(eta_max, Sequence) and not isinstance(eta_max, str):
            if len(eta_max) != len(groups):
                raise ConfigValueError(
                    f"{owner}: eta_max has {len(eta_max)} values for {len(groups)} param groups",
                    where=f"{owner}.eta_max",
                )
            peaks = list(eta_max)
        else:
            peaks = [eta_max] * len(groups)
        self.eta_max = eta_max
        if last_step == -1:
            for group, peak in zip(groups, peaks):
                initial = peak / div_factor
                group[f"initial_{param_name}"] = initial
                group[f"max_{param_name}"] = peak
                group[f"min_{param_name}"] = initial / final_div_factor
        super().__init__(optimizer, param_name, begin, end, last_step, by_epoch, verbose)

    @classmethod
    def _epoch_args_to_iters(cls, arguments: dict[str, Any], epoch_length: int) -> None:
        if arguments.get("total_steps") is not None:
            arguments["total_steps"] = int(arguments["total_steps"] * epoch_length)

    def _value_at(self, group: dict[str, Any], step: int) -> float:
        start_step = 0.0
        for index, (end_step, start_key, end_key) in enumerate(self._phases):
            if step <= end_step or index == len(self._phases) - 1:
                span = end_step - start_step
                pct = (step - start_step) / span if span else 1.0
                start = group[f"{start_key}_{self.param_name}"]
                end = group[f"{end_key}_{self.param_name}"]
                return _anneal(self.anneal_strategy, start, end, pct)
            start_step = end_step
        raise AssertionError("unreachable")

    def _get_value(self) -> list[Any]:
        if self.last_step > self.total_steps:
            raise ConfigValueError(
                f"{type(self).__name__} stepped {self.last_step + 1} times but total_steps is {self.total_steps}",
                where=type(self).__name__,
                hint="make total_steps cover the whole schedule, or set end to stop it",
            )
        return [self._value_at(group, self.last_step) for group in self.optimizer.param_groups]

    def _get_closed_form(self) -> list[Any]:
        return self._get_value()


@PARAM_SCHEDULERS.register_module()
class CosineRestartParamScheduler(_ParamScheduler):
    """Cosine annealing with restarts (SGDR): one cosine per period.

    In period ``i`` (length ``P_i``, starting at step ``S_i``), with ``eta_max = base *
    restart_weights[i]``: ``eta_min + (eta_max - eta_min) * (1 + cos(pi * (t - S_i) / P_i)) / 2``.
    After the last period the value stays where it ended.

    :param periods: lengths of the periods, in steps.
    :param restart_weights: each period's peak as a fraction of the initial value
        (default all 1).
    :param eta_min: the minimum value (default 0 when ``eta_min_ratio`` is not given).
    :param eta_min_ratio: the minimum as a fraction of each group's initial value.
    """

    def __init__(
        self,
        optimizer: Any,
        param_name: str,
        periods: Sequence[int],
        restart_weights: Sequence[float] | None = None,
        eta_min: float | None = None,
        eta_min_ratio: float | None = None,
        begin: int = 0,
        end: int = INF,
        last_step: int = -1,
        by_epoch: bool = True,
        verbose: bool = False,
    ) -> None:
        owner = type(self).__name__
        if isinstance(periods, (str, bytes)) or not isinstance(periods, Sequence) or not periods:
            raise ConfigValueError(
                f"{owner}: periods must be a non-empty list of step counts, got {periods!r}",
                where=f"{owner}.periods",
            )
        self.periods = [_positive_int(p, "periods", owner) for p in periods]
        weights = [1.0] * len(self.periods) if restart_weights is None else list(restart_weights)
        if len(weights) != len(self.periods):
            raise ConfigAssertionError(
                f"{owner}: {len(weights)} restart_weights for {len(self.periods)} periods",
                where=f"{owner}.restart_weights",
                hint="give one weight per period",
            )
        self.restart_weights = weights
        self.eta_min = _check_eta_min(owner, eta_min, eta_min_ratio)
        self.eta_min_ratio = eta_min_ratio
        self.cumulative_periods = [sum(self.periods[: i + 1]) for i in range(len(self.periods))]
        super().__init__(optimizer, param_name, begin, end, last_step, by_epoch, verbose)

    @classmethod
    def _epoch_args_to_iters(cls, arguments: dict[str, Any], epoch_length: int) -> None:
        if "periods" in arguments:
            arguments["periods"] = [int(p * epoch_length) for p in arguments["periods"]]

    def _period_of(self, step: int) -> int | None:
        for index, boundary in enumerate(self.cumulative_periods):
            if step < boundary:
                return index
        return None

    def _get_value(self) -> list[Any]:
        index = self._period_of(self.last_step)
        if index is None:
            return self._current()
        start = self.cumulative_periods[index - 1] if index > 0 else 0
        period = self.periods[index]
        local = self.last_step - start
        values = []
        for base, value in zip(self.base_values, self._current()):
            eta_min = _eta_min_of(self, base)
            if local == 0:
                values.append(base * self.restart_weights[index])
            else:
                ratio = (1 + math.cos(math.pi * local / period)) / (
                    1 + math.cos(math.pi * (local - 1) / period)
                )
                values.append(ratio * (value - eta_min) + eta_min)
        return values

    def _get_closed_form(self) -> list[Any]:
        index = self._period_of(self.last_step)
        if index is None:
            index, local = len(self.periods) - 1, self.periods[-1] - 1
        else:
            local = self.last_step - (self.cumulative_periods[index - 1] if index > 0 else 0)
        cosine = (1 + math.cos(math.pi * local / self.periods[index])) / 2
        return [
            _eta_min_of(self, base)
            + (base * self.restart_weights[index] - _eta_min_of(self, base)) * cosine
            for base in self.base_values
        ]
