"""``ApexOptimWrapper``: mixed precision through NVIDIA apex's ``amp`` (optional).

apex is not a dependency: building the wrapper without it installed raises an error that
names the package. :class:`~torchkiln.optim.AmpOptimWrapper` (``torch.amp``) covers the same
need without extra packages and is the recommended choice.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import torch
from torch import nn

from torchkiln.errors import ConfigError
from torchkiln.model.wrappers import unwrap_model
from torchkiln.optim.optimizer.optim_wrapper import OptimWrapper
from torchkiln.registry import OPTIM_WRAPPERS

__all__ = ["ApexNotInstalledError", "ApexOptimWrapper"]


class ApexNotInstalledError(ConfigError, ModuleNotFoundError):
    """ApexOptimWrapper was asked for, but NVIDIA's apex package is not installed."""


def _apex_amp() -> Any:
    try:
        return importlib.import_module("apex.amp")
    except ImportError:
        raise ApexNotInstalledError(
            "ApexOptimWrapper needs NVIDIA's `apex` package, which is not installed",
            where="optim_wrapper.type",
            hint="install apex (https://github.com/NVIDIA/apex), or use type: AmpOptimWrapper "
            "(torch.amp, no extra package)",
        ) from None


@OPTIM_WRAPPERS.register_module()
class ApexOptimWrapper(OptimWrapper):
    """An :class:`OptimWrapper` whose backward pass scales the loss with ``apex.amp``.

    The model and optimizer are handed to ``apex.amp.initialize`` on the first
    :meth:`optim_context`; the keyword arguments below are passed to it as given.

    :param opt_level: apex's optimisation level, ``'O0'`` to ``'O3'``.
    :param loss_scale: ``'dynamic'`` or a fixed float.
    :raises ConfigError: apex is not installed.
    """

    def __init__(
        self,
        opt_level: str = "O1",
        loss_scale: float | str | None = "dynamic",
        enabled: bool | None = True,
        cast_model_type: torch.dtype | None = None,
        patch_torch_functions: bool | None = None,
        keep_batchnorm_fp32: bool | str | None = None,
        master_weights: bool | None = None,
        cast_model_outputs: torch.dtype | None = None,
        num_losses: int = 1,
        verbosity: int = 1,
        min_loss_scale: float | None = None,
        max_loss_scale: float | None = 2.0**24,
        **kwargs: Any,
    ) -> None:
        self._amp = _apex_amp()
        super().__init__(**kwargs)
        options = {
            "enabled": enabled,
            "opt_level": opt_level,
            "loss_scale": loss_scale,
            "cast_model_type": cast_model_type,
            "patch_torch_functions": patch_torch_functions,
            "keep_batchnorm_fp32": keep_batchnorm_fp32,
            "master_weights": master_weights,
            "cast_model_outputs": cast_model_outputs,
            "num_losses": num_losses,
            "verbosity": verbosity,
            "min_loss_scale": min_loss_scale,
            "max_loss_scale": max_loss_scale,
        }
        self.opt_level = opt_level
        self.loss_scale = loss_scale
        self._initialize_options = {
            key: value for key, value in options.items() if value is not None
        }
        self._initialized = False
        self._direct = False

    def backward(self, loss: torch.Tensor, **kwargs: Any) -> None:
        """Backward through ``apex.amp.scale_loss`` and count the pass."""
        with self._amp.scale_loss(loss, self.optimizer) as scaled_loss:
            scaled_loss.backward(**kwargs)
        self._inner_count += 1
        if self._observer is not None:
            self._observer("after_backward", self)

    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state dict plus apex's loss scaler state under ``'apex_amp'``."""
        state = super().state_dict()
        if self._initialized:
            state["apex_amp"] = self._amp.state_dict()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load an optimizer state (and apex's loss scaler state when present)."""
        state = dict(state_dict)
        apex_state = state.pop("apex_amp", None)
        if apex_state is not None:
            self._amp.load_state_dict(apex_state)
        super().load_state_dict(state)

    def optim_context(self, model: nn.Module) -> AbstractContextManager[Any]:
        """Initialise apex amp for ``model`` once, then the base class's context."""
        if not self._initialized:
            inner = unwrap_model(model)
            inner, self.optimizer = self._amp.initialize(
                inner, self.optimizer, **self._initialize_options
            )
            self._initialized = True
        return self._context(model)

    @contextmanager
    def _context(self, model: nn.Module) -> Iterator[None]:
        with super().optim_context(model):
            yield
