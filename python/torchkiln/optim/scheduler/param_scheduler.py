"""Parameter schedulers: the base class and the multiplicative/annealing schedules.

A scheduler changes one hyperparameter (``lr``, ``momentum``, ``weight_decay``, ...) of
every param group of an optimizer, one ``step()`` per epoch (``by_epoch=True``) or per
iteration. It is active for global steps in ``[begin, end)``; ``last_step`` counts its own
active steps from 0. Values are computed from the groups' *current* values (the chainable
form), so several schedulers can act on the same hyperparameter, in turn or together;
``_get_closed_form()`` gives the value a scheduler alone would produce.
"""

from __future__ import annotations

import bisect
import inspect
import logging
import math
from collections.abc import Sequence
from typing import Any

from torchkiln.errors import ConfigAssertionError, ConfigKeyError, ConfigTypeError, ConfigValueError
from torchkiln.optim.optimizer.optim_wrapper_dict import OptimWrapperDict
from torchkiln.optim.scheduler.step_order import order_baseline, warn_if_stepped_first
from torchkiln.registry import PARAM_SCHEDULERS

__all__ = [
    "INF",
    "ConstantParamScheduler",
    "CosineAnnealingParamScheduler",
    "ExponentialParamScheduler",
    "LinearParamScheduler",
    "MultiStepParamScheduler",
    "PolyParamScheduler",
    "StepParamScheduler",
    "fixed_param_init",
]

INF = int(1e9)
_logger = logging.getLogger("torchkiln.optim")


def _uses_betas(optimizer: Any, owner: str) -> bool:
    """Whether 'momentum' must be read from and written to ``betas[0]`` (Adam-style)."""
    defaults = getattr(optimizer, "defaults", None) or {}
    if "momentum" in defaults:
        return False
    if "betas" in defaults:
        return True
    groups = optimizer.param_groups
    if groups and "momentum" in groups[0]:
        return False
    if groups and "betas" in groups[0]:
        return True
    raise ConfigValueError(
        f"{owner}: optimizer must support momentum when using momentum scheduler, and "
        f"{type(optimizer).__name__} has neither 'momentum' nor 'betas'",
        where=owner,
        hint="use an optimizer with momentum (SGD with momentum, Adam's betas) or remove the momentum scheduler",
    )


class _ParamScheduler:
    """Base class of parameter schedulers; subclasses implement :meth:`_get_value`.

    :param optimizer: an :class:`~torchkiln.optim.OptimWrapper` or a torch optimizer.
    :param param_name: the param-group key to schedule, e.g. ``lr``, ``momentum`` (for
        Adam-style optimizers this is ``betas[0]``), ``weight_decay``.
    :param begin: first global step at which the scheduler acts.
    :param end: first global step at which it no longer acts (exclusive).
    :param last_step: index of the last active step; -1 for a fresh start. Resuming without
        a state dict needs ``initial_<param_name>`` in the param groups.
    :param by_epoch: whether :meth:`step` is called once per epoch (else per iteration).
    :param verbose: log each new value.
    """

    #: ReduceOnPlateau schedulers set this: they also step with validation metrics.
    need_val_args = False

    def __init__(
        self,
        optimizer: Any,
        param_name: str,
        begin: int = 0,
        end: int = INF,
        last_step: int = -1,
        by_epoch: bool = True,
        verbose: bool = False,
    ) -> None:
        owner = type(self).__name__
        if isinstance(optimizer, OptimWrapperDict):
            raise ConfigTypeError(
                f"{owner} schedules one optimizer, got an OptimWrapperDict",
                where=owner,
                hint="give one wrapper, e.g. optim_wrapper['generator'], or a dict of scheduler lists per name",
            )
        if not hasattr(optimizer, "param_groups"):
            raise ConfigTypeError(
                f"{owner}: the optimizer should be an Optimizer or an OptimWrapper, "
                f"got {type(optimizer).__name__}",
                where=owner,
            )
        if end <= begin:
            raise ConfigValueError(
                f"{owner}: end should be larger than begin, got begin={begin}, end={end}",
                where=owner,
            )
        if not isinstance(last_step, int) or isinstance(last_step, bool) or last_step < -1:
            raise ConfigAssertionError(
                f"{owner}: last_step must be an integer >= -1, got {last_step!r}", where=owner
            )
        self.optimizer = optimizer
        self.param_name = param_name
        self.begin = begin
        self.end = end
        self.by_epoch = by_epoch
        self.verbose = verbose
        self.use_betas = False
        groups = optimizer.param_groups
        if param_name == "momentum":
            self.use_betas = _uses_betas(optimizer, owner)
            if self.use_betas:
                for group in groups:
                    group["momentum"] = group["betas"][0]
        for group in groups:
            if param_name not in group:
                keys = sorted(
                    k
                    for k in group
                    if k != "params" and not k.startswith(("initial_", "max_", "min_"))
                )
                raise ConfigKeyError(
                    f"{owner} schedules {param_name!r}, which the param groups of "
                    f"{type(optimizer).__name__} do not have",
                    where=owner,
                    hint=f"schedulable keys: {', '.join(keys)}",
                )
        initial_key = f"initial_{param_name}"
        if last_step == -1:
            for group in groups:
                group.setdefault(initial_key, group[param_name])
        else:
            for index, group in enumerate(groups):
                if initial_key not in group:
                    raise ConfigKeyError(
                        f"{owner}: param {initial_key!r} is not specified in param group {index}, "
                        f"so it cannot resume from last_step={last_step}",
                        where=owner,
                        hint="resume the optimizer state together with the scheduler, or start with last_step=-1",
                    )
        self.base_values: list[Any] = [group[initial_key] for group in groups]
        self.last_step = last_step
        self._global_step = -1
        self._last_value: list[Any] | None = []
        # plain counts (part of the state dict) for the first step's order check
        self._order_baseline = order_baseline(optimizer)
        self.step()

    # ------------------------------------------------------------------ conversion
    @classmethod
    def build_iter_from_epoch(
        cls,
        *args: Any,
        begin: float = 0,
        end: float = INF,
        by_epoch: bool = True,
        epoch_length: int | None = None,
        **kwargs: Any,
    ) -> _ParamScheduler:
        """Build an iteration-based scheduler from arguments given in epochs.

        ``begin``, ``end`` and the schedule's own epoch-valued arguments (``step_size``,
        ``milestones``, ``T_max``, ``periods``, ``total_steps``) are multiplied by
        ``epoch_length`` (iterations per epoch); the result has ``by_epoch=False``.
        """
        if not by_epoch:
            raise ConfigAssertionError(
                f"{cls.__name__}: only by_epoch=True schedulers can be converted to iterations",
                where=cls.__name__,
                hint="remove convert_to_iter_based or set by_epoch: true",
            )
        if not isinstance(epoch_length, int) or isinstance(epoch_length, bool) or epoch_length <= 0:
            raise ConfigAssertionError(
                f"{cls.__name__}: epoch_length must be a positive integer, got {epoch_length!r}",
                where=cls.__name__,
            )
        bound = inspect.signature(cls).bind_partial(*args, **kwargs)
        cls._epoch_args_to_iters(bound.arguments, epoch_length)
        begin = int(begin * epoch_length)
        end = INF if end == INF else int(end * epoch_length)
        return cls(*bound.args, **bound.kwargs, begin=begin, end=end, by_epoch=False)  # type: ignore[misc]  # begin/end/by_epoch are this method's own parameters, never in bound

    @classmethod
    def _epoch_args_to_iters(cls, arguments: dict[str, Any], epoch_length: int) -> None:
        """Convert this schedule's epoch-valued arguments in place (none by default)."""

    # ------------------------------------------------------------------ stepping
    def step(self) -> None:
        """Advance one step; inside ``[begin, end)`` set each group's new value.

        Outside ``[begin, end)`` a step only counts (it runs every iteration for the rest of
        training once an iteration-based warmup has ended, so it does nothing more). The first
        call after construction warns if the optimizer has not stepped since then.
        """
        if self._global_step == 0:
            warn_if_stepped_first(
                self.optimizer, getattr(self, "_order_baseline", None), type(self).__name__
            )
        self._global_step += 1
        if not self.begin <= self._global_step < self.end:
            self._last_value = None  # read from the groups when asked
            return
        self.last_step += 1
        if self._keeps_value() and not self.verbose:
            # Most iteration-based steps of a step schedule change nothing: skip building
            # and writing back the unchanged values (this runs every iteration).
            self._last_value = None
            return
        groups = self.optimizer.param_groups
        values = self._get_value()
        name = self.param_name
        for group, value in zip(groups, values):
            group[name] = value
        if self.verbose:
            for index, value in enumerate(values):
                _logger.info(
                    "%s: %s of group %d set to %.4e", type(self).__name__, name, index, value
                )
        if self.use_betas:
            self._sync_betas()
        # (_get_value returns a new list; kept as is unless it covered fewer groups)
        self._last_value = (
            values if len(values) == len(groups) else [group[name] for group in groups]
        )

    def _sync_betas(self) -> None:
        if self.use_betas:
            for group in self.optimizer.param_groups:
                group["betas"] = (group["momentum"], *tuple(group["betas"])[1:])

    def _keeps_value(self) -> bool:
        """Whether the step to ``last_step`` leaves every value as it is (no writes needed).

        A cheap check for schedules that change the value only now and then; the default
        (``False``) always computes :meth:`_get_value`.
        """
        return False

    def _get_value(self) -> list[Any]:
        """New values from the groups' current values (chainable form)."""
        raise NotImplementedError(f"{type(self).__name__} must implement _get_value()")

    def _get_closed_form(self) -> list[Any]:
        """Values at ``last_step`` as if this scheduler alone had set them."""
        raise NotImplementedError(f"{type(self).__name__} has no closed form")

    def _current(self) -> list[Any]:
        return [group[self.param_name] for group in self.optimizer.param_groups]

    def get_last_value(self) -> list[Any]:
        """The values of the scheduled hyperparameter after the last :meth:`step`.

        After a step that sets nothing (outside ``[begin, end)``, or one that keeps the
        value, like most steps of a step schedule) these are the groups' current values
        (which later schedulers may have changed since).
        """
        if self._last_value is None:
            return self._current()
        return self._last_value

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Every attribute except the optimizer (plain values, loadable with weights_only)."""
        return {key: value for key, value in self.__dict__.items() if key != "optimizer"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the attributes saved by :meth:`state_dict`."""
        self.__dict__.update(state_dict)

    def __repr__(self) -> str:
        unit = "epoch" if self.by_epoch else "iter"
        end = "INF" if self.end == INF else self.end
        return f"{type(self).__name__}(param_name={self.param_name!r}, begin={self.begin}, end={end}, by={unit})"


def fixed_param_init(base: type, param_name: str) -> Any:
    """An ``__init__`` for a variant of ``base`` that always schedules ``param_name``.

    The variant's signature is ``base``'s without ``param_name`` (so config checks report
    exact argument names).
    """

    def __init__(self: Any, optimizer: Any, *args: Any, **kwargs: Any) -> None:
        base.__init__(self, optimizer, param_name, *args, **kwargs)  # type: ignore[misc]  # base is the class this variant extends

    signature = inspect.signature(base.__init__)  # type: ignore[misc]  # base's own __init__ is the one described
    __init__.__signature__ = signature.replace(  # type: ignore[attr-defined]  # read by inspect
        parameters=[p for p in signature.parameters.values() if p.name != "param_name"]
    )
    __init__.__doc__ = (
        f"Schedule {param_name!r}: the arguments of :class:`{base.__name__}` except ``param_name``."
    )
    return __init__


def _positive_int(value: Any, name: str, owner: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ConfigValueError(
            f"{owner}: {name} must be a positive integer, got {value!r}", where=f"{owner}.{name}"
        )
    return value


# ---------------------------------------------------------------------------- schedules
@PARAM_SCHEDULERS.register_module()
class StepParamScheduler(_ParamScheduler):
    """Multiply the value by ``gamma`` every ``step_size`` steps.

    Closed form: ``base * gamma ** (t // step_size)`` at active step ``t``.

    :param step_size: steps between decays.
    :param gamma: multiplicative factor.
    """

    def __init__(
        self,
        optimizer: Any,
        param_name: str,
        step_size: int,
        gamma: float = 0.1,
        begin: int = 0,
        end: int = INF,
        last_step: int = -1,
        by_epoch: bool = True,
        verbose: bool = False,
    ) -> None:
        self.step_size = _positive_int(step_size, "step_size", type(self).__name__)
        self.gamma = gamma
        super().__init__(optimizer, param_name, begin, end, last_step, by_epoch, verbose)

    @classmethod
    def _epoch_args_to_iters(cls, arguments: dict[str, Any], epoch_length: int) -> None:
        if "step_size" in arguments:
            arguments["step_size"] = int(arguments["step_size"] * epoch_length)

    def _keeps_value(self) -> bool:
        return self.last_step == 0 or self.last_step % self.step_size != 0

    def _get_value(self) -> list[Any]:
        if self._keeps_value():
            return self._current()
        return [value * self.gamma for value in self._current()]

    def _get_closed_form(self) -> list[Any]:
        return [
            base * self.gamma ** (self.last_step // self.step_size) for base in self.base_values
        ]


@PARAM_SCHEDULERS.register_module()
class MultiStepParamScheduler(_ParamScheduler):
    """Multiply the value by ``gamma`` at each milestone (a repeated milestone counts twice).

    Closed form: ``base * gamma ** (number of milestones <= t)``.

    :param milestones: active-step indices, increasing.
    :param gamma: multiplicative factor.
    """

    def __init__(
        self,
        optimizer: Any,
        param_name: str,
        milestones: Sequence[int],
        gamma: float = 0.1,
        begin: int = 0,
        end: int = INF,
        last_step: int = -1,
        by_epoch: bool = True,
        verbose: bool = False,
    ) -> None:
        owner = type(self).__name__
        if isinstance(milestones, (str, bytes)) or not isinstance(milestones, Sequence):
            raise ConfigTypeError(
                f"{owner}: milestones must be a list of steps, got {milestones!r}",
                where=f"{owner}.milestones",
            )
        # A plain dict (not Counter) so state dicts load with weights_only=True.
        self.milestones: dict[int, int] = {}
        for milestone in sorted(milestones):
            self.milestones[milestone] = self.milestones.get(milestone, 0) + 1
        self.gamma = gamma
        super().__init__(optimizer, param_name, begin, end, last_step, by_epoch, verbose)

    @classmethod
    def _epoch_args_to_iters(cls, arguments: dict[str, Any], epoch_length: int) -> None:
        if "milestones" in arguments:
            arguments["milestones"] = [int(m * epoch_length) for m in arguments["milestones"]]

    def _keeps_value(self) -> bool:
        return self.last_step not in self.milestones

    def _get_value(self) -> list[Any]:
        count = self.milestones.get(self.last_step, 0)
        if count == 0:
            return self._current()
        return [value * self.gamma**count for value in self._current()]

    def _get_closed_form(self) -> list[Any]:
        expanded = [m for m, count in sorted(self.milestones.items()) for _ in range(count)]
        passed = bisect.bisect_right(expanded, self.last_step)
        return [base * self.gamma**passed for base in self.base_values]


@PARAM_SCHEDULERS.register_module()
class ConstantParamScheduler(_ParamScheduler):
    """Multiply the value by ``factor`` until the last active step, which restores it.

    With ``T = end - begin - 1``: ``base * factor`` for ``t < T`` and ``base`` from ``t = T``
    on (MMEngine's semantics: with ``begin=0, end=5`` steps 0-3 are scaled).

    :param factor: multiplier in ``(0, 1]``.
    """

    def __init__(
        self,
        optimizer: Any,
        param_name: str,
        factor: float = 1.0 / 3,
        begin: int = 0,
        end: int = INF,
        last_step: int = -1,
        by_epoch: bool = True,
        verbose: bool = False,
    ) -> None:
        owner = type(self).__name__
        if not 0 < factor <= 1.0:
            raise ConfigValueError(
                f"{owner}: factor must be in (0, 1], got {factor}", where=f"{owner}.factor"
            )
        self.factor = factor
        self.total_iters = end - begin - 1
        super().__init__(optimizer, param_name, begin, end, last_step, by_epoch, verbose)

    def _factor(self, step: int) -> float:
        return self.factor if step < self.total_iters else 1.0

    def _get_value(self) -> list[Any]:
        ratio = self._factor(self.last_step) / (
            self._factor(self.last_step - 1) if self.last_step > 0 else 1.0
        )
        if ratio == 1.0:
            return self._current()
        return [value * ratio for value in self._current()]

    def _get_closed_form(self) -> list[Any]:
        return [base * self._factor(self.last_step) for base in self.base_values]


@PARAM_SCHEDULERS.register_module()
class ExponentialParamScheduler(_ParamScheduler):
    """Multiply the value by ``gamma`` every step. Closed form: ``base * gamma ** t``.

    :param gamma: multiplicative factor.
    """

    def __init__(
        self,
        optimizer: Any,
        param_name: str,
        gamma: float,
        begin: int = 0,
        end: int = INF,
        last_step: int = -1,
        by_epoch: bool = True,
        verbose: bool = False,
    ) -> None:
        self.gamma = gamma
        super().__init__(optimizer, param_name, begin, end, last_step, by_epoch, verbose)

    def _get_value(self) -> list[Any]:
        if self.last_step == 0:
            return self._current()
        return [value * self.gamma for value in self._current()]

    def _get_closed_form(self) -> list[Any]:
        return [base * self.gamma**self.last_step for base in self.base_values]


@PARAM_SCHEDULERS.register_module()
class LinearParamScheduler(_ParamScheduler):
    """Scale the value by a factor going linearly from ``start_factor`` to ``end_factor``.

    With ``T = end - begin - 1``: ``base * (s + (e - s) * min(t, T) / T)``; the end factor
    is reached at the last active step.

    :param start_factor: factor at the first active step, in ``[0, 1]``.
    :param end_factor: factor at the last active step, in ``[0, 1]``.
    """

    def __init__(
        self,
        optimizer: Any,
        param_name: str,
        start_factor: float = 1.0 / 3,
        end_factor: float = 1.0,
        begin: int = 0,
        end: int = INF,
        last_step: int = -1,
        by_epoch: bool = True,
        verbose: bool = False,
    ) -> None:
        owner = type(self).__name__
        if not 0 <= start_factor <= 1.0:
            raise ConfigValueError(
                f"{owner}: start_factor must be in [0, 1], got {start_factor}",
                where=f"{owner}.start_factor",
            )
        if not 0 <= end_factor <= 1.0:
            raise ConfigValueError(
                f"{owner}: end_factor must be in [0, 1], got {end_factor}",
                where=f"{owner}.end_factor",
            )
        self.start_factor = start_factor
        self.end_factor = end_factor
        self.total_iters = end - begin - 1
        super().__init__(optimizer, param_name, begin, end, last_step, by_epoch, verbose)

    def _factor(self, step: int) -> float:
        if self.total_iters <= 0:
            return self.start_factor
        return (
            self.start_factor
            + (self.end_factor - self.start_factor) * min(step, self.total_iters) / self.total_iters
        )

    def _get_value(self) -> list[Any]:
        if self.last_step == 0:
            return [value * self.start_factor for value in self._current()]
        previous = self._factor(self.last_step - 1)
        current = self._factor(self.last_step)
        if previous == 0:
            # Nothing to scale from a zero value: fall back to the closed form.
            return [base * current for base in self.base_values]
        return [value * (current / previous) for value in self._current()]

    def _get_closed_form(self) -> list[Any]:
        return [base * self._factor(self.last_step) for base in self.base_values]


@PARAM_SCHEDULERS.register_module()
class PolyParamScheduler(_ParamScheduler):
    """Polynomial decay to ``eta_min`` at the last active step.

    With ``T = end - begin - 1``: ``(base - eta_min) * (1 - min(t, T) / T) ** power + eta_min``.

    :param eta_min: value at the end.
    :param power: the polynomial's power.
    """

    def __init__(
        self,
        optimizer: Any,
        param_name: str,
        eta_min: float = 0.0,
        power: float = 1.0,
        begin: int = 0,
        end: int = INF,
        last_step: int = -1,
        by_epoch: bool = True,
        verbose: bool = False,
    ) -> None:
        self.eta_min = eta_min
        self.power = power
        self.total_iters = end - begin - 1
        super().__init__(optimizer, param_name, begin, end, last_step, by_epoch, verbose)

    def _get_value(self) -> list[Any]:
        if self.last_step == 0 or self.total_iters <= 0:
            return self._current()
        remaining = self.total_iters - self.last_step + 1
        if remaining <= 0:
            return self._current()
        keep = (1.0 - 1.0 / remaining) ** self.power
        return [(value - self.eta_min) * keep + self.eta_min for value in self._current()]

    def _get_closed_form(self) -> list[Any]:
        if self.total_iters <= 0:
            return list(self.base_values)
        keep = (1.0 - min(self.last_step, self.total_iters) / self.total_iters) ** self.power
        return [(base - self.eta_min) * keep + self.eta_min for base in self.base_values]


def _check_eta_min(owner: str, eta_min: float | None, eta_min_ratio: float | None) -> float | None:
    if eta_min is not None and eta_min_ratio is not None:
        raise ConfigAssertionError(f"{owner}: give eta_min or eta_min_ratio, not both", where=owner)
    if eta_min is None and eta_min_ratio is None:
        return 0.0
    return eta_min


def _eta_min_of(scheduler: Any, base: float) -> float:
    """The floor of a cosine schedule for a group whose initial value is ``base``:
    ``base * eta_min_ratio`` when a ratio was given, else ``eta_min``."""
    ratio = scheduler.eta_min_ratio
    return base * ratio if ratio is not None else scheduler.eta_min


@PARAM_SCHEDULERS.register_module()
class CosineAnnealingParamScheduler(_ParamScheduler):
    """Cosine annealing from the initial value to ``eta_min`` over ``T_max`` steps.

    Closed form: ``eta_min + (base - eta_min) * (1 + cos(pi * t / T_max)) / 2``.

    :param T_max: steps of a half cosine period; defaults to ``end - begin``.
    :param eta_min: the minimum value (default 0 when ``eta_min_ratio`` is not given).
    :param eta_min_ratio: the minimum as a fraction of each group's initial value.
    """

    def __init__(
        self,
        optimizer: Any,
        param_name: str,
        T_max: int | None = None,
        eta_min: float | None = None,
        begin: int = 0,
        end: int = INF,
        last_step: int = -1,
        by_epoch: bool = True,
        verbose: bool = False,
        eta_min_ratio: float | None = None,
    ) -> None:
        owner = type(self).__name__
        self.eta_min = _check_eta_min(owner, eta_min, eta_min_ratio)
        self.eta_min_ratio = eta_min_ratio
        self.T_max = _positive_int(T_max, "T_max", owner) if T_max is not None else end - begin
        super().__init__(optimizer, param_name, begin, end, last_step, by_epoch, verbose)

    @classmethod
    def _epoch_args_to_iters(cls, arguments: dict[str, Any], epoch_length: int) -> None:
        if arguments.get("T_max") is not None:
            arguments["T_max"] = int(arguments["T_max"] * epoch_length)

    def _get_value(self) -> list[Any]:
        t, period = self.last_step, self.T_max
        if t == 0:
            return self._current()
        values = []
        for base, value in zip(self.base_values, self._current()):
            eta_min = _eta_min_of(self, base)
            if (t - 1 - period) % (2 * period) == 0:
                # Bottom of the cosine: the ratio form would divide by zero.
                values.append(value + (base - eta_min) * (1 - math.cos(math.pi / period)) / 2)
            else:
                ratio = (1 + math.cos(math.pi * t / period)) / (
                    1 + math.cos(math.pi * (t - 1) / period)
                )
                values.append(ratio * (value - eta_min) + eta_min)
        return values

    def _get_closed_form(self) -> list[Any]:
        cosine = (1 + math.cos(math.pi * self.last_step / self.T_max)) / 2
        return [
            _eta_min_of(self, base) + (base - _eta_min_of(self, base)) * cosine
            for base in self.base_values
        ]
