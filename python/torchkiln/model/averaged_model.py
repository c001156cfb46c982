"""Averaged copies of a model: exponential moving averages and stochastic weight averaging.

An averaged model keeps a deep copy of the model (``.module``) and, each time
``update_parameters(model)`` is called, folds the model's current weights into it. The step
counter is a buffer (saved with the state dict) mirrored by a host integer, so updates never
wait for the device; the averaging itself is one fused ``torch._foreach_*`` call per update.

An update runs every training iteration, so nothing in it walks the module tree: where each
tensor lives (the owning module's ``_parameters``/``_buffers`` dict and key) is resolved once
per source model, and an update reads the tensors straight from those dicts (which also
sees tensors a ``.to()`` replaced).
"""

from __future__ import annotations

import copy
import logging
import weakref
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from torchkiln.errors import ConfigAssertionError, ConfigValueError
from torchkiln.registry import MODELS

__all__ = [
    "BaseAveragedModel",
    "ExponentialMovingAverage",
    "MomentumAnnealingEMA",
    "StochasticWeightAverage",
]


def _unwrap(model: nn.Module) -> nn.Module:
    from torchkiln.model.wrappers import unwrap_model

    return unwrap_model(model)


class _Slots:
    """Where ``module`` keeps each named tensor: ``(owning dict, key)`` pairs, resolved once.

    :raises KeyError: a name that is not a parameter or buffer of ``module``.
    """

    __slots__ = ("slots",)

    def __init__(self, module: nn.Module, names: Sequence[str]) -> None:
        slots: list[tuple[dict[str, Any], str]] = []
        for name in names:
            prefix, _, key = name.rpartition(".")
            try:
                owner = module.get_submodule(prefix) if prefix else module
            except AttributeError:
                raise KeyError(name) from None
            if owner._parameters.get(key) is not None:
                slots.append((owner._parameters, key))
            elif owner._buffers.get(key) is not None:
                slots.append((owner._buffers, key))
            else:
                raise KeyError(name)
        self.slots = slots

    def tensors(self) -> list[torch.Tensor]:
        """The tensors as they are now (about 30 ns each, no module walk)."""
        return [d[k] for d, k in self.slots]


class _UpdatePlan:
    """Everything an update needs about one source model, computed once.

    :param avg: the averaged model.
    :param model: the (unwrapped) source model.
    :raises KeyError: the source model lacks one of the averaged tensors.
    """

    def __init__(self, avg: BaseAveragedModel, model: nn.Module) -> None:
        names, averaged = avg._avg_tensors()
        self.model_ref = weakref.ref(model)
        self.avg_version = avg._avg_version
        self.source = _Slots(model, names)
        self.floats = [i for i, a in enumerate(averaged) if a.is_floating_point()]
        self.others = [i for i, a in enumerate(averaged) if not a.is_floating_point()]
        self.all_float = not self.others
        # Without update_buffers the buffers are copied, read through their dicts on both sides.
        buffer_names = [] if avg.update_buffers else [n for n, _ in avg.module.named_buffers()]
        self.avg_bufs = _Slots(avg.module, buffer_names)
        self.source_bufs = _Slots(model, buffer_names)
        self.device: torch.device | None = None
        self.move: list[bool] | None = None
        self.move_bufs: list[bool] = []

    def source_tensors(
        self, averaged: list[torch.Tensor]
    ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
        """``(source, averaged buffers, source buffers)``, sources on the averaged tensors' devices.

        Which tensors need a copy is decided once, and again when the source model moved.
        """
        source = self.source.tensors()
        avg_bufs = self.avg_bufs.tensors()
        source_bufs = self.source_bufs.tensors()
        device = source[0].device if source else None
        if self.move is None or device != self.device:
            self.device = device
            self.move = [s.device != a.device for a, s in zip(averaged, source)]
            self.move_bufs = [s.device != a.device for a, s in zip(avg_bufs, source_bufs)]
            self.any_move = any(self.move) or any(self.move_bufs)
        if self.any_move:
            source = [
                _to_device(s, a.device) if m else s for a, s, m in zip(averaged, source, self.move)
            ]
            source_bufs = [
                _to_device(s, a.device) if m else s
                for a, s, m in zip(avg_bufs, source_bufs, self.move_bufs)
            ]
        return source, avg_bufs, source_bufs


class BaseAveragedModel(nn.Module):
    """A deep copy of a model whose weights are averaged over training steps.

    Subclasses define :meth:`avg_func` (one tensor) and may override :meth:`average` (all
    tensors at once, for speed). The first update copies the model; later updates average
    every ``interval`` calls. Without ``update_buffers`` the buffers (BatchNorm statistics) are
    copied from the model at every call instead of averaged.

    :param model: the model to average (a wrapper is unwrapped).
    :param interval: average every this many calls of :meth:`update_parameters`.
    :param device: keep the averaged copy on this device (default: the model's). With
        ``device='cpu'`` and a model on an accelerator, every update copies every parameter
        to the host and waits for the copy (a host-device synchronisation per update); raise
        ``interval`` to pay it less often.
    :param update_buffers: average the floating-point buffers too.
    """

    steps: torch.Tensor  # a registered buffer: the number of averaged steps

    def __init__(
        self,
        model: nn.Module,
        interval: int = 1,
        device: torch.device | str | None = None,
        update_buffers: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(interval, int) or interval < 1:
            raise ConfigValueError(
                f"{type(self).__name__}: interval must be a positive int, got {interval!r}"
            )
        self.module = copy.deepcopy(_unwrap(model)).requires_grad_(False)
        self.interval = interval
        if device is not None:
            self.module.to(device)
        self.register_buffer("steps", torch.tensor(0, dtype=torch.long, device=device))
        self.update_buffers = update_buffers
        self._host_steps = 0  # mirrors ``steps`` so no update reads the device
        self._avg_cache: tuple[list[str], list[torch.Tensor]] | None = None
        self._avg_version = 0  # bumped whenever _avg_cache is dropped; plans made before are stale
        self._plan: _UpdatePlan | None = None
        self._copy_plan: tuple[Any, _Slots, _Slots] | None = None
        self.register_load_state_dict_post_hook(_sync_host_steps)

    # ------------------------------------------------------------------ tensors
    def _avg_tensors(self) -> tuple[list[str], list[torch.Tensor]]:
        if self._avg_cache is None:
            if self.update_buffers:
                named = list(self.module.state_dict(keep_vars=True).items())
            else:
                named = list(self.module.named_parameters())
            # The tensors themselves (not ``.data`` aliases): they stay valid when their storage
            # is swapped in and out (EMAHook evaluates with the averaged weights that way).
            self._avg_cache = ([n for n, _ in named], [t for _, t in named])
        return self._avg_cache

    def _forget_tensors(self) -> None:
        self._avg_cache = None
        self._avg_version += 1

    def _apply(self, fn: Any, recurse: bool = True) -> nn.Module:
        self._forget_tensors()  # tensors may be replaced by a move or cast
        return super()._apply(fn, recurse)

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_avg_cache"] = state["_plan"] = state["_copy_plan"] = None  # caches (and a weakref)
        return state

    def _plan_for(self, model: nn.Module) -> _UpdatePlan:
        plan = self._plan
        if plan is None or plan.model_ref() is not model or plan.avg_version != self._avg_version:
            try:
                plan = _UpdatePlan(self, model)
            except KeyError as exc:
                raise ValueError(
                    f"{type(self).__name__}.update_parameters: the model has no tensor {exc.args[0]!r}; "
                    "it must have the same structure as the model the average was made from"
                ) from None
            self._plan = plan
        return plan

    @property
    def avg_parameters(self) -> dict[str, torch.Tensor]:
        """The averaged tensors by name (parameters, plus buffers with ``update_buffers``)."""
        names, tensors = self._avg_tensors()
        return dict(zip(names, tensors))

    # ------------------------------------------------------------------ averaging
    def avg_func(
        self, averaged_param: torch.Tensor, source_param: torch.Tensor, steps: int
    ) -> None:
        """Fold ``source_param`` into ``averaged_param`` in place.

        :param averaged_param: the averaged tensor.
        :param source_param: the model's current tensor (same device).
        :param steps: the number of updates before this one.
        """
        raise NotImplementedError

    def average(self, averaged: list[torch.Tensor], source: list[torch.Tensor], steps: int) -> None:
        """Fold every source tensor into its averaged tensor (default: :meth:`avg_func` each).

        :param averaged: the averaged floating-point tensors.
        :param source: the model's matching tensors, on the same devices.
        :param steps: the number of updates before this one.
        """
        for a, s in zip(averaged, source):
            self.avg_func(a, s, steps)

    @torch.no_grad()
    def update_parameters(self, model: nn.Module) -> None:
        """Fold ``model``'s current weights into the average (called once per training step).

        :param model: the trained model (a wrapper is unwrapped).
        """
        model = _unwrap(model)
        plan = self._plan_for(model)
        _, averaged = self._avg_tensors()
        source, avg_bufs, source_bufs = plan.source_tensors(averaged)
        steps = self._host_steps
        if steps == 0:
            _copy_all(averaged, source)
        elif steps % self.interval == 0:
            if plan.all_float:
                self.average(averaged, source, steps)
            else:
                floats, others = plan.floats, plan.others
                self.average([averaged[i] for i in floats], [source[i] for i in floats], steps)
                _copy_all([averaged[i] for i in others], [source[i] for i in others])
        _copy_all(avg_bufs, source_bufs)
        self._host_steps = steps + 1
        self.steps.fill_(self._host_steps)

    @torch.no_grad()
    def copy_from(self, model: nn.Module) -> None:
        """Copy ``model``'s whole state (parameters and persistent buffers) into the averaged
        copy without counting an update (EMAHook does this before averaging starts).

        :param model: the trained model (a wrapper is unwrapped).
        """
        model = _unwrap(model)
        plan = self._copy_plan
        if plan is None or plan[0]() is not model:
            names = list(self.module.state_dict(keep_vars=True))
            try:
                plan = (weakref.ref(model), _Slots(self.module, names), _Slots(model, names))
            except KeyError as exc:
                raise ValueError(
                    f"{type(self).__name__}.copy_from: the model has no tensor {exc.args[0]!r}; "
                    "it must have the same structure as the model the average was made from"
                ) from None
            self._copy_plan = plan
        dst = plan[1].tensors()
        src = plan[2].tensors()
        _copy_all(
            dst, [s if s.device == d.device else _to_device(s, d.device) for d, s in zip(dst, src)]
        )

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Run the averaged model."""
        return self.module(*args, **kwargs)


def _sync_host_steps(module: Any, incompatible_keys: Any) -> None:
    module._host_steps = int(module.steps)  # one read, at load time only
    module._forget_tensors()


def _to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    # Asynchronous only towards an accelerator: a copy to the host must be complete before
    # the host-side average reads it.
    return t.to(device, non_blocking=device.type != "cpu")


def _copy_all(dst: list[torch.Tensor], src: list[torch.Tensor]) -> None:
    if not dst:
        return
    if hasattr(torch, "_foreach_copy_"):
        torch._foreach_copy_(dst, src)
    else:  # pragma: no cover - older torch
        for d, s in zip(dst, src):
            d.copy_(s)


def _check_momentum(owner: str, momentum: float) -> None:
    if not 0.0 < momentum < 1.0:
        raise ConfigAssertionError(
            f"{owner}: momentum must be in range (0, 1), got {momentum}",
            hint="averaged = (1 - momentum) * averaged + momentum * model; typical values are 0.0001-0.001",
        )
    if momentum > 0.5:
        from torchkiln.logging.mm_logger import print_log

        print_log(
            f"{owner}: momentum={momentum} weighs the model more than the average; the convention is "
            f"averaged = (1 - momentum) * averaged + momentum * model (use {1 - momentum:g} for the "
            "other convention)",
            logger="current",
            level=logging.WARNING,
        )


@MODELS.register_module()
class ExponentialMovingAverage(BaseAveragedModel):
    """Exponential moving average: ``averaged = (1 - momentum) * averaged + momentum * model``.

    :param model: the model to average.
    :param momentum: weight of the current model in each update.
    :param interval: update every this many calls.
    :param device: device of the averaged copy.
    :param update_buffers: average buffers too.
    """

    def __init__(
        self,
        model: nn.Module,
        momentum: float = 0.0002,
        interval: int = 1,
        device: torch.device | str | None = None,
        update_buffers: bool = False,
    ) -> None:
        super().__init__(model, interval, device, update_buffers)
        _check_momentum(type(self).__name__, momentum)
        self.momentum = momentum

    def _momentum(self, steps: int) -> float:
        return self.momentum

    def avg_func(
        self, averaged_param: torch.Tensor, source_param: torch.Tensor, steps: int
    ) -> None:
        """``averaged += momentum * (source - averaged)``."""
        averaged_param.lerp_(source_param, self._momentum(steps))

    def average(self, averaged: list[torch.Tensor], source: list[torch.Tensor], steps: int) -> None:
        """All tensors in one fused ``lerp``."""
        if averaged:
            torch._foreach_lerp_(averaged, source, self._momentum(steps))


@MODELS.register_module()
class MomentumAnnealingEMA(ExponentialMovingAverage):
    """EMA whose momentum starts high and anneals: ``max(momentum, gamma / (gamma + steps))``.

    Early averages follow the model closely; later ones settle at ``momentum``.

    :param model: the model to average.
    :param momentum: the final (smallest) momentum.
    :param gamma: annealing speed; larger keeps the momentum high for longer.
    :param interval: update every this many calls.
    :param device: device of the averaged copy.
    :param update_buffers: average buffers too.
    """

    def __init__(
        self,
        model: nn.Module,
        momentum: float = 0.0002,
        gamma: int = 100,
        interval: int = 1,
        device: torch.device | str | None = None,
        update_buffers: bool = False,
    ) -> None:
        super().__init__(model, momentum, interval, device, update_buffers)
        if gamma <= 0:
            raise ConfigAssertionError(
                f"MomentumAnnealingEMA: gamma must be greater than 0, got {gamma}",
                hint="the momentum anneals as max(momentum, gamma / (gamma + steps))",
            )
        self.gamma = gamma

    def _momentum(self, steps: int) -> float:
        return max(self.momentum, self.gamma / (self.gamma + steps))


@MODELS.register_module()
class StochasticWeightAverage(BaseAveragedModel):
    """Stochastic weight averaging: the running mean of the models seen at each averaging step.

    ``averaged += (model - averaged) / (steps // interval + 1)``.
    """

    def avg_func(
        self, averaged_param: torch.Tensor, source_param: torch.Tensor, steps: int
    ) -> None:
        """Running-mean update."""
        averaged_param.lerp_(source_param, 1.0 / (steps // self.interval + 1))

    def average(self, averaged: list[torch.Tensor], source: list[torch.Tensor], steps: int) -> None:
        """All tensors in one fused ``lerp``."""
        if averaged:
            torch._foreach_lerp_(averaged, source, 1.0 / (steps // self.interval + 1))
