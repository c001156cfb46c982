"""AmpOptimWrapper: mixed precision on ``torch.amp`` (autocast + loss scaling for float16)."""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import torch
from torch import nn

from torchkiln.errors import ConfigAssertionError, ConfigTypeError, ConfigValueError, did_you_mean
from torchkiln.optim.optimizer.optim_wrapper import _NO_CONTEXT, OptimWrapper
from torchkiln.registry import OPTIM_WRAPPERS

__all__ = ["AmpOptimWrapper"]


@contextmanager
def _nested(
    outer: AbstractContextManager[Any], inner: AbstractContextManager[Any]
) -> Iterator[None]:
    with outer, inner:
        yield


_DTYPES: dict[str, torch.dtype] = {
    "float16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
}


def _resolve_dtype(dtype: str | torch.dtype | None, device_type: str) -> torch.dtype:
    if dtype is None:
        return torch.float16 if device_type == "cuda" else torch.bfloat16
    if isinstance(dtype, torch.dtype):
        if dtype not in (torch.float16, torch.bfloat16):
            raise ConfigAssertionError(
                f"AmpOptimWrapper dtype must be float16 or bfloat16, got {dtype}",
                where="optim_wrapper.dtype",
            )
        return dtype
    if isinstance(dtype, str) and dtype.removeprefix("torch.") in _DTYPES:
        return _DTYPES[dtype.removeprefix("torch.")]
    raise ConfigAssertionError(
        f"unknown AmpOptimWrapper dtype {dtype!r}",
        where="optim_wrapper.dtype",
        hint=(did_you_mean(str(dtype), _DTYPES) or "")
        + " use 'float16', 'bfloat16' or null (float16 on CUDA, bfloat16 elsewhere)",
    )


def _optimizer_device_type(optimizer: torch.optim.Optimizer) -> str:
    for group in optimizer.param_groups:
        for param in group["params"]:
            return param.device.type
    return "cuda" if torch.cuda.is_available() else "cpu"


def _scaler_class(use_fsdp: bool) -> Any:
    if use_fsdp:
        from torch.distributed.fsdp.sharded_grad_scaler import ShardedGradScaler

        return ShardedGradScaler
    return torch.amp.GradScaler


@OPTIM_WRAPPERS.register_module()
class AmpOptimWrapper(OptimWrapper):
    """An :class:`OptimWrapper` that trains in mixed precision with ``torch.amp``.

    :meth:`optim_context` enters ``torch.autocast`` on the model's device. With float16,
    the loss is scaled by a ``torch.amp.GradScaler`` before backward, gradients are
    unscaled before clipping, and steps with non-finite gradients are skipped. bfloat16
    has float32's range and needs no scaler.

    Cost: with float16, ``GradScaler.step`` reads the found-inf flag back to the host once
    per optimizer step (a host-device synchronisation), unless the optimizer is a fused one
    that takes the flag on the device: ``fused=True`` for Adam, AdamW and SGD (e.g.
    ``optimizer: {type: AdamW, lr: 1e-3, fused: true}``) avoids it. bfloat16 has no scaler
    and no such read.

    :param optimizer: a ``torch.optim.Optimizer``.
    :param accumulative_counts: see :class:`OptimWrapper`.
    :param clip_grad: see :class:`OptimWrapper`.
    :param loss_scale: ``'dynamic'`` (a default GradScaler), a number (a fixed scale), or a
        dict of ``GradScaler`` arguments (``init_scale``, ``growth_factor``, ...). Ignored
        for bfloat16.
    :param dtype: ``'float16'``, ``'bfloat16'``, a torch dtype, or None (float16 on CUDA,
        bfloat16 elsewhere).
    :param use_fsdp: use FSDP's ``ShardedGradScaler`` (for models wrapped in FSDP).
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        accumulative_counts: int = 1,
        clip_grad: Mapping[str, Any] | None = None,
        loss_scale: str | float | Mapping[str, Any] = "dynamic",
        dtype: str | torch.dtype | None = None,
        use_fsdp: bool = False,
    ) -> None:
        super().__init__(optimizer, accumulative_counts=accumulative_counts, clip_grad=clip_grad)
        self._device_type = _optimizer_device_type(optimizer)
        self.cast_dtype = _resolve_dtype(dtype, self._device_type)
        self._fixed_scale: float | None = None
        self._device_probe: tuple[Any, Any] | None = None
        self.loss_scaler: Any = None
        if self.cast_dtype == torch.float16:
            self.loss_scaler = self._build_scaler(loss_scale, use_fsdp)

    @property
    def _scale_update_param(self) -> float | None:
        """The fixed loss scale passed to each scaler update (None: dynamic), MMEngine's name."""
        return self._fixed_scale

    def _build_scaler(self, loss_scale: Any, use_fsdp: bool) -> Any:
        scaler_cls = _scaler_class(use_fsdp)
        if loss_scale == "dynamic":
            return scaler_cls(device=self._device_type)
        if isinstance(loss_scale, (int, float)) and not isinstance(loss_scale, bool):
            if loss_scale <= 0:
                raise ConfigValueError(
                    f"loss_scale must be positive, got {loss_scale}",
                    where="optim_wrapper.loss_scale",
                )
            self._fixed_scale = float(loss_scale)
            return scaler_cls(device=self._device_type, init_scale=self._fixed_scale)
        if isinstance(loss_scale, Mapping):
            kwargs = dict(loss_scale)
            accepted = [
                n for n in inspect.signature(scaler_cls).parameters if n not in ("self", "device")
            ]
            for key in kwargs:
                if key not in accepted:
                    raise ConfigTypeError(
                        f"loss_scale got an unexpected GradScaler argument {key!r}",
                        where=f"optim_wrapper.loss_scale.{key}",
                        hint=(did_you_mean(key, accepted) or "")
                        + f" accepted: {', '.join(accepted)}",
                    )
            return scaler_cls(device=self._device_type, **kwargs)
        raise ConfigTypeError(
            f"loss_scale must be 'dynamic', a number or a dict, got {loss_scale!r}",
            where="optim_wrapper.loss_scale",
        )

    # ------------------------------------------------------------------ the update cycle
    def backward(self, loss: torch.Tensor, **kwargs: Any) -> None:
        """Backward through the loss scaler (float16) and count the pass."""
        if self.loss_scaler is not None:
            loss = self.loss_scaler.scale(loss)
        loss.backward(**kwargs)
        self._inner_count += 1
        if self._observer is not None:
            self._observer("after_backward", self)

    def step(self, **kwargs: Any) -> None:
        """Unscale and clip (if configured), then step through the scaler and update it."""
        if self.loss_scaler is None:
            super().step(**kwargs)
            return
        if self._clip is not None or self._observer is not None:
            self.loss_scaler.unscale_(self.optimizer)
        if self._observer is not None:
            self._observer("before_optimizer_step", self)
        if self._clip is not None:
            self._clip_grad()
        self.loss_scaler.step(self.optimizer, **kwargs)
        self.loss_scaler.update(self._fixed_scale)

    def _model_device_type(self, model: nn.Module) -> str:
        """The device type of ``model``'s first parameter, located once per model.

        What is kept is where that parameter lives (its module's ``_parameters`` dict and
        key), so a model moved between calls, even one whose parameters a move replaced, is
        seen where it is now.
        """
        probe = self._device_probe
        if probe is None or probe[0]() is not model:
            slot = None
            for module in model.modules() if isinstance(model, nn.Module) else ():
                key = next((k for k, v in module._parameters.items() if v is not None), None)
                if key is not None:
                    slot = (module._parameters, key)
                    break
            probe = self._device_probe = (weakref.ref(model), slot)
        slot = probe[1]
        if slot is None:
            return self._device_type
        param = slot[0].get(slot[1])
        return param.device.type if param is not None else self._device_type

    def optim_context(self, model: nn.Module) -> AbstractContextManager[Any]:
        """The :class:`OptimWrapper` context plus ``torch.autocast`` on the model's device."""
        autocast = torch.autocast(device_type=self._model_device_type(model), dtype=self.cast_dtype)
        outer = super().optim_context(model)
        if outer is _NO_CONTEXT:
            return autocast
        return _nested(outer, autocast)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state dict, plus ``loss_scaler`` when a scaler is used."""
        state = super().state_dict()
        if self.loss_scaler is not None:
            state["loss_scaler"] = self.loss_scaler.state_dict()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load optimizer state and, when both sides use one, the loss scaler's state."""
        state = dict(state_dict)
        scaler_state = state.pop("loss_scaler", None)
        if scaler_state is not None and self.loss_scaler is not None:
            self.loss_scaler.load_state_dict(scaler_state)
        super().load_state_dict(state)

    def __repr__(self) -> str:
        base = super().__repr__()[:-1]
        scale = "none" if self.loss_scaler is None else (self._fixed_scale or "dynamic")
        return f"{base}, dtype={self.cast_dtype}, loss_scale={scale})"
