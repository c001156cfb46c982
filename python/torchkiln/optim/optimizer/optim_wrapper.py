"""OptimWrapper: one optimizer plus gradient accumulation, clipping and DDP-aware contexts.

A model's ``train_step`` calls ``optim_wrapper.update_params(loss)`` once per iteration;
the wrapper scales the loss for accumulation, runs backward, and every
``accumulative_counts`` calls clips, steps and zeroes the gradients. Nothing here reads a
device value back to the host: the gradient norm is kept as a detached tensor.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from torch import nn

from torchkiln.errors import ConfigAssertionError, ConfigTypeError, ConfigValueError, did_you_mean
from torchkiln.optim.optimizer._model import has_batch_norm
from torchkiln.registry import OPTIM_WRAPPERS

__all__ = ["OptimWrapper"]

_CLIP_ARGS: dict[str, tuple[str, ...]] = {
    "norm": ("max_norm", "norm_type", "error_if_nonfinite", "foreach"),
    "value": ("clip_value", "foreach"),
}
_CLIP_REQUIRED = {"norm": "max_norm", "value": "clip_value"}

_NO_CONTEXT = nullcontext()

# Resolved once: the MessageHub class, or False when the logging package is not there.
_HUB_CLASS: Any = None


def _current_message_hub() -> Any:
    """The current ``torchkiln.logging.MessageHub`` instance, or None if unavailable."""
    global _HUB_CLASS
    if _HUB_CLASS is None:
        try:
            from torchkiln.logging import MessageHub
        except ImportError:
            _HUB_CLASS = False
        else:
            _HUB_CLASS = MessageHub
    if _HUB_CLASS is False:
        return None
    try:
        return _HUB_CLASS.get_current_instance()
    except Exception:  # no hub created yet: logging is optional here
        return None


def _base_settings(optimizer: Any) -> dict[str, Any] | None:
    """The optimizer's defaults as a group for several param groups. Its ``params`` is a
    single zero that no optimizer sees: code that reads ``group['params'][0]`` of every
    group works on it as on the others."""
    groups = optimizer.param_groups
    if len(groups) <= 1:
        return None
    return {"params": torch.zeros(1), **getattr(optimizer, "defaults", {})}


def _check_optimizer(optimizer: Any, owner: str) -> None:
    if not all(
        hasattr(optimizer, name) for name in ("param_groups", "step", "zero_grad", "state_dict")
    ):
        raise ConfigTypeError(
            f"{owner} needs a torch optimizer, got {type(optimizer).__name__}",
            where=f"{owner}.optimizer",
            hint="give a torch.optim.Optimizer instance, or a config such as optimizer: {type: SGD, lr: 0.01}",
        )


def _parse_clip_grad(clip_grad: Mapping[str, Any] | None) -> tuple[str, dict[str, Any]] | None:
    if clip_grad is None or (isinstance(clip_grad, Mapping) and not clip_grad):
        return None
    if not isinstance(clip_grad, Mapping):
        raise ConfigAssertionError(
            "If `clip_grad` is not None, it should be a dict of the arguments of "
            f"clip_grad_norm_ or clip_grad_value_; got {type(clip_grad).__name__}",
            where="optim_wrapper.clip_grad",
            hint="e.g. clip_grad: {max_norm: 1.0} or clip_grad: {type: value, clip_value: 0.5}",
        )
    kwargs = dict(clip_grad)
    kind = kwargs.pop("type", "norm")
    if kind not in _CLIP_ARGS:
        raise ConfigValueError(
            f"unknown clip_grad type {kind!r}",
            where="optim_wrapper.clip_grad.type",
            hint="use 'norm' (clip_grad_norm_) or 'value' (clip_grad_value_)",
        )
    accepted = _CLIP_ARGS[kind]
    for key in kwargs:
        if key not in accepted:
            raise ConfigTypeError(
                f"clip_grad of type {kind!r} got an unexpected argument {key!r}",
                where=f"optim_wrapper.clip_grad.{key}",
                hint=(did_you_mean(key, accepted) or "") + f" accepted: {', '.join(accepted)}",
            )
    required = _CLIP_REQUIRED[kind]
    if required not in kwargs:
        raise ConfigTypeError(
            f"clip_grad of type {kind!r} needs {required!r}",
            where="optim_wrapper.clip_grad",
            hint=f"e.g. clip_grad: {{type: {kind}, {required}: 1.0}}",
        )
    return kind, kwargs


@OPTIM_WRAPPERS.register_module()
class OptimWrapper:
    """Wraps one optimizer: gradient accumulation, clipping, and the step/zero_grad cycle.

    :param optimizer: a ``torch.optim.Optimizer``.
    :param accumulative_counts: backward passes per optimizer step (gradient accumulation);
        the loss of each pass is divided by it (by the remainder in the last, partial window
        once :meth:`initialize_count_status` told the wrapper where training ends).
    :param clip_grad: ``{type: 'norm', max_norm, norm_type=2, error_if_nonfinite=False}``
        (the default type) or ``{type: 'value', clip_value}``; ``None`` disables clipping.
        Clipping by norm keeps the total norm in :attr:`last_grad_norm` (a detached tensor)
        and reports it as ``train/grad_norm`` to the current message hub.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        accumulative_counts: int = 1,
        clip_grad: Mapping[str, Any] | None = None,
    ) -> None:
        _check_optimizer(optimizer, type(self).__name__)
        if (
            not isinstance(accumulative_counts, int)
            or isinstance(accumulative_counts, bool)
            or accumulative_counts < 1
        ):
            raise ConfigAssertionError(
                f"accumulative_counts must be a positive integer, got {accumulative_counts!r}",
                where="optim_wrapper.accumulative_counts",
            )
        self.optimizer = optimizer
        self._accumulative_counts = accumulative_counts
        self._clip = _parse_clip_grad(clip_grad)
        #: The clipping function's keyword arguments; ``None`` when gradients are not clipped.
        self.clip_grad_kwargs: dict[str, Any] | None = dict(self._clip[1]) if self._clip else None
        #: The message hub current when the wrapper was built (``train/grad_norm`` goes there).
        self.message_hub = _current_message_hub()
        #: With several param groups, the optimizer's own settings (``lr``, ...) as one more
        #: group that holds no parameters: :attr:`param_groups` lists it last, so schedulers
        #: move it like the others, and :meth:`get_lr` reports its ``lr`` as ``base_lr``.
        self.base_param_settings: dict[str, Any] | None = _base_settings(optimizer)
        self._groups_with_base: list[dict[str, Any]] = []
        self._inner_count = 0
        # Unknown until initialize_count_status: every window then counts as a full one.
        self._max_counts = -1
        self._remainder_counts = -1
        self._divisible_counts = -1
        self.last_grad_norm: torch.Tensor | None = None
        # Set by NonFiniteLossHook(action='skip'): drop updates whose loss is NaN/Inf.
        self.skip_nonfinite = False
        self.skipped_steps = 0
        self._drop_window = False
        self._clip_key: tuple[tuple[int, int], ...] | None = None
        self._clip_list: list[torch.Tensor] = []
        # Called at after_backward / before_optimizer_step when hooks implement them.
        self._observer: Callable[[str, OptimWrapper], None] | None = None
        # update_params may skip the backward/step/zero_grad methods (see there).
        self._direct = type(self) is OptimWrapper and accumulative_counts == 1

    def observe_steps(self, observer: Callable[[str, OptimWrapper], None] | None) -> None:
        """Call ``observer(mount_point, self)`` at ``after_backward`` (after each backward
        pass) and ``before_optimizer_step`` (once per real step, gradients complete and
        unscaled, before clipping); ``None`` stops it. The runner installs one only when a
        hook implements either mount point.
        """
        self._observer = observer
        self._direct = (
            type(self) is OptimWrapper and self._accumulative_counts == 1 and observer is None
        )

    # ------------------------------------------------------------------ the update cycle
    def update_params(
        self,
        loss: torch.Tensor,
        step_kwargs: Mapping[str, Any] | None = None,
        zero_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        """Scale ``loss`` for accumulation, backward, and step + zero_grad when a window ends.

        With :attr:`skip_nonfinite` set, a NaN/Inf loss is not backpropagated and marks its
        accumulation window as bad: when the window ends, the gradients the window's finite
        losses accumulated are zeroed without an optimizer step, and :attr:`skipped_steps`
        grows by one. So a window either steps with every one of its gradients or not at all,
        wherever in the window the non-finite loss falls. Checking costs one host sync per
        iteration, paid only when skipping is on.

        :param loss: the scalar loss of this iteration.
        :param step_kwargs: keyword arguments for :meth:`step`.
        :param zero_kwargs: keyword arguments for :meth:`zero_grad`.
        """
        if self._direct and not (self.skip_nonfinite or step_kwargs or zero_kwargs):
            # OptimWrapper itself without accumulation: every call closes a window, and no
            # subclass overrides the steps below, so they run without the method chain.
            loss.backward()
            self._inner_count += 1
            if self._clip is not None:
                self._clip_grad()
            optimizer = self.optimizer
            optimizer.step()
            optimizer.zero_grad()
            return
        if self.skip_nonfinite and not bool(torch.isfinite(loss.detach()).all()):
            self._drop_window = True  # counted, not backpropagated
            self._inner_count += 1
        else:
            self.backward(loss if self._accumulative_counts == 1 else self.scale_loss(loss))
        if self.should_update():
            if self._drop_window:
                self._drop_window = False
                self.skipped_steps += 1
            elif step_kwargs:
                self.step(**step_kwargs)
            else:
                self.step()
            if zero_kwargs:
                self.zero_grad(**zero_kwargs)
            else:
                self.zero_grad()

    def scale_loss(self, loss: torch.Tensor) -> torch.Tensor:
        """Divide ``loss`` by the size of the accumulation window this iteration belongs to."""
        if self._accumulative_counts == 1:
            return loss
        if (
            self._max_counts == -1
            or self._remainder_counts <= 0
            or self._inner_count < self._divisible_counts
        ):
            return loss / self._accumulative_counts
        return loss / self._remainder_counts

    def backward(self, loss: torch.Tensor, **kwargs: Any) -> None:
        """Run ``loss.backward(**kwargs)`` and count the pass."""
        loss.backward(**kwargs)
        self._inner_count += 1
        if self._observer is not None:
            self._observer("after_backward", self)

    def step(self, **kwargs: Any) -> None:
        """Clip gradients (if configured) and step the optimizer."""
        if self._observer is not None:
            self._observer("before_optimizer_step", self)
        if self._clip is not None:
            self._clip_grad()
        self.optimizer.step(**kwargs)

    def zero_grad(self, **kwargs: Any) -> None:
        """Zero the optimizer's gradients."""
        self.optimizer.zero_grad(**kwargs)

    def should_update(self) -> bool:
        """True after the backward pass that closes an accumulation window."""
        return (
            self._inner_count % self._accumulative_counts == 0
            or self._inner_count == self._max_counts
        )

    def should_sync(self) -> bool:
        """True when the next backward pass closes a window (DDP must all-reduce then)."""
        upcoming = self._inner_count + 1
        return upcoming % self._accumulative_counts == 0 or upcoming == self._max_counts

    def optim_context(self, model: nn.Module) -> AbstractContextManager[Any]:
        """Context for forward and backward: skips DDP's all-reduce inside a window.

        Under DDP (``model`` has ``no_sync``) and when this iteration does not close the
        accumulation window, this is ``model.no_sync()``, so gradients accumulate locally;
        otherwise a shared no-op context (entered every iteration, so it is built once).
        """
        if self._accumulative_counts == 1 or self.should_sync() or not hasattr(model, "no_sync"):
            return _NO_CONTEXT
        return model.no_sync()  # type: ignore[operator]  # nn.Module types attribute access as Tensor | Module

    def initialize_count_status(self, model: nn.Module, init_counts: int, max_counts: int) -> None:
        """Tell the wrapper where training stands and ends, before the first iteration.

        :param model: the trained model (checked for batch norm, which accumulation changes).
        :param init_counts: iterations already done (non-zero when resuming).
        :param max_counts: total training iterations; when not divisible by
            ``accumulative_counts``, the last window's losses are divided by its length.
        """
        self._inner_count = init_counts
        self._max_counts = max_counts
        self._drop_window = False
        if self._accumulative_counts == 1:
            return
        from torchkiln.logging import print_log

        if init_counts % self._accumulative_counts != 0:
            print_log(
                f"Resumed iteration number {init_counts} is not divisible by "
                f"accumulative_counts={self._accumulative_counts}: the gradients of the first "
                "iterations of that accumulation window are lost",
                logger="current",
                level=logging.WARNING,
            )
        if has_batch_norm(model):
            print_log(
                f"Gradient accumulative counts of {self._accumulative_counts} with batch norm "
                "layers: their statistics use each iteration's batch, not the accumulated one, "
                "which may slightly lower the accuracy",
                logger="current",
                level=logging.WARNING,
            )
        self._remainder_counts = max_counts % self._accumulative_counts
        self._divisible_counts = max_counts - self._remainder_counts

    # ------------------------------------------------------------------ clipping
    def _clip_params(self) -> list[torch.Tensor]:
        """Every parameter of the optimizer, listed once per change of its param groups.

        The clip functions skip parameters without a gradient themselves, so the list holds
        frozen ones too and stays valid when layers are frozen or unfrozen.
        """
        groups = self.optimizer.param_groups
        key = tuple((id(g["params"]), len(g["params"])) for g in groups)
        if key != self._clip_key:
            self._clip_key = key
            self._clip_list = [p for g in groups for p in g["params"]]
        return self._clip_list

    def _clip_grad(self) -> None:
        params = self._clip_params()
        # usually decided by the first parameter; a step without any gradient clips nothing
        if not any(p.grad is not None for p in params):
            return
        kind, kwargs = self._clip  # type: ignore[misc]  # set whenever clipping runs
        if kind == "value":
            nn.utils.clip_grad_value_(params, **kwargs)
            return
        norm = nn.utils.clip_grad_norm_(params, **kwargs).detach()
        full_tensor = getattr(norm, "full_tensor", None)
        if full_tensor is not None:  # FSDP2: the norm is a DTensor; log the global value
            norm = full_tensor()
        self.last_grad_norm = norm
        hub = self.message_hub
        if hub is not None:
            hub.update_scalar("train/grad_norm", norm)

    # ------------------------------------------------------------------ inspection
    @property
    def param_groups(self) -> list[dict[str, Any]]:
        """The optimizer's parameter groups (schedulers edit these), followed by
        :attr:`base_param_settings` when the optimizer has several groups."""
        groups = self.optimizer.param_groups
        base = self.base_param_settings
        if base is None:
            return groups
        cached = self._groups_with_base
        # rebuilt only when the optimizer's groups change (add_param_group)
        if len(cached) != len(groups) + 1 or cached[-1] is not base or cached[0] is not groups[0]:
            cached = self._groups_with_base = [*groups, base]
        return cached

    @property
    def defaults(self) -> dict[str, Any]:
        """The optimizer's default hyperparameters."""
        return self.optimizer.defaults

    @property
    def inner_count(self) -> int:
        """Backward passes counted so far (set by :meth:`initialize_count_status`)."""
        return self._inner_count

    @property
    def accumulative_counts(self) -> int:
        """Backward passes per optimizer step."""
        return self._accumulative_counts

    def get_lr(self) -> dict[str, list[float]]:
        """``{'lr': [lr of each param group]}``, and ``'base_lr'``: ``[the optimizer's own lr
        as scheduled]`` when the optimizer has several groups (see :attr:`base_param_settings`)."""
        lrs = {"lr": [group["lr"] for group in self.optimizer.param_groups]}
        if self.base_param_settings is not None:
            return {"base_lr": [self.base_param_settings["lr"]], **lrs}
        return lrs

    def get_momentum(self) -> dict[str, list[float]]:
        """``{'momentum': [...]}``: each group's momentum, or ``betas[0]`` (Adam-style), or 0."""
        values = []
        for group in self.optimizer.param_groups:
            if "momentum" in group:
                values.append(group["momentum"])
            elif "betas" in group:
                values.append(group["betas"][0])
            else:
                values.append(0)
        return {"momentum": values}

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state dict, plus ``base_param_settings`` when there is one."""
        state = self.optimizer.state_dict()
        if self.base_param_settings is not None:
            state["base_param_settings"] = {
                k: v for k, v in self.base_param_settings.items() if k != "params"
            }
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state dict produced by :meth:`state_dict` (or a plain optimizer's)."""
        if "base_param_settings" in state_dict:
            state_dict = dict(state_dict)
            base = state_dict.pop("base_param_settings")
            if self.base_param_settings is not None and isinstance(base, Mapping):
                self.base_param_settings.update((k, v) for k, v in base.items() if k != "params")
        self.optimizer.load_state_dict(state_dict)

    def __repr__(self) -> str:
        clip = f", clip_grad={dict(type=self._clip[0], **self._clip[1])}" if self._clip else ""
        return (
            f"{type(self).__name__}(optimizer={type(self.optimizer).__name__}, "
            f"accumulative_counts={self._accumulative_counts}{clip})"
        )
