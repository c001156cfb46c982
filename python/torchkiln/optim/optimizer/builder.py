"""build_optim_wrapper: the runner's entry point from the ``optim_wrapper`` config."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from torchkiln.errors import ConfigAssertionError, ConfigTypeError
from torchkiln.optim.optimizer.known_optimizers import (
    BITSANDBYTES_OPTIMIZERS,
    DADAPTATION_OPTIMIZERS,
    LION_OPTIMIZERS,
    NPU_OPTIMIZERS,
    SOPHIA_OPTIMIZERS,
    TORCH_OPTIMIZERS,
    TRANSFORMERS_OPTIMIZERS,
)
from torchkiln.optim.optimizer.optim_wrapper import OptimWrapper
from torchkiln.optim.optimizer.optim_wrapper_dict import OptimWrapperDict
from torchkiln.registry import OPTIM_WRAPPER_CONSTRUCTORS, OPTIMIZERS

# The optimizer name lists are here too, where MMEngine's builder module defines them.
__all__ = [
    "BITSANDBYTES_OPTIMIZERS",
    "DADAPTATION_OPTIMIZERS",
    "LION_OPTIMIZERS",
    "NPU_OPTIMIZERS",
    "OPTIMIZERS",
    "OPTIM_WRAPPER_CONSTRUCTORS",
    "SOPHIA_OPTIMIZERS",
    "TORCH_OPTIMIZERS",
    "TRANSFORMERS_OPTIMIZERS",
    "build_optim_wrapper",
]


def build_optim_wrapper(
    model: nn.Module,
    cfg: Mapping[str, Any] | OptimWrapper | OptimWrapperDict,
) -> OptimWrapper | OptimWrapperDict:
    """Build the optimizer wrapper(s) for ``model`` from an ``optim_wrapper`` config.

    - an :class:`OptimWrapper` or :class:`OptimWrapperDict` is returned as is;
    - ``{constructor: Name, paramwise_cfg: ..., **rest}`` builds ``Name(optim_wrapper_cfg=rest,
      paramwise_cfg=...)`` from OPTIM_WRAPPER_CONSTRUCTORS and calls it with the model
      (``DefaultOptimWrapperConstructor`` when ``constructor`` is absent);
    - a dict whose values are all built OptimWrappers becomes an :class:`OptimWrapperDict`.

    :param model: the model (possibly wrapped in DDP).
    :param cfg: the ``optim_wrapper`` config or an already-built wrapper.
    """
    if isinstance(cfg, (OptimWrapper, OptimWrapperDict)):
        return cfg
    if not isinstance(cfg, Mapping):
        raise ConfigTypeError(
            f"optim_wrapper must be a dict or an OptimWrapper, got {type(cfg).__name__}",
            where="optim_wrapper",
            hint="e.g. optim_wrapper: {optimizer: {type: SGD, lr: 0.01}}",
        )
    cfg = dict(cfg)
    constructor_type = cfg.pop("constructor", None)
    paramwise_cfg = cfg.pop("paramwise_cfg", None)
    if constructor_type is None:
        if "optimizer" not in cfg:
            if cfg and all(isinstance(v, OptimWrapper) for v in cfg.values()):
                return OptimWrapperDict(**cfg)
            if cfg and all(isinstance(v, Mapping) and "optimizer" in v for v in cfg.values()):
                raise ConfigAssertionError(
                    f"optim_wrapper has sections {', '.join(map(repr, cfg))} but no constructor to build them",
                    where="optim_wrapper",
                    hint="add constructor: MultiOptimWrapperConstructor",
                )
            raise ConfigAssertionError(
                "`optim_wrapper_cfg` must contain an 'optimizer' entry, e.g. optimizer: "
                "{type: SGD, lr: 0.01}",
                where="optim_wrapper",
            )
        constructor_type = "DefaultOptimWrapperConstructor"
    constructor = OPTIM_WRAPPER_CONSTRUCTORS.build(
        {"type": constructor_type, "optim_wrapper_cfg": cfg, "paramwise_cfg": paramwise_cfg}
    )
    return constructor(model)
