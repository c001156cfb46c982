"""Optimisation: optimizer wrappers, their constructors, and parameter schedulers.

Names are resolved lazily, so importing ``torchkiln.optim`` does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torchkiln._lazy import lazy_exports

_OPTIMIZER = "torchkiln.optim.optimizer"
_SCHEDULER = "torchkiln.optim.scheduler"

_SCHEDULE_NAMES = (
    "Constant",
    "CosineAnnealing",
    "CosineRestart",
    "Exponential",
    "Linear",
    "MultiStep",
    "OneCycle",
    "Poly",
    "ReduceOnPlateau",
    "Step",
)

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "AmpOptimWrapper": _OPTIMIZER,
    "DefaultOptimWrapperConstructor": _OPTIMIZER,
    "MultiOptimWrapperConstructor": _OPTIMIZER,
    "OptimWrapper": _OPTIMIZER,
    "OptimWrapperDict": _OPTIMIZER,
    "build_optim_wrapper": _OPTIMIZER,
    "merge_param_groups": _OPTIMIZER,
    "ApexOptimWrapper": "torchkiln.optim.optimizer.apex_optim_wrapper",
    "ZeroRedundancyOptimizer": "torchkiln.optim.optimizer.zero_optimizer",
    # the registries optimizers and constructors are registered in, as MMEngine offers them here
    "OPTIMIZERS": "torchkiln.registry",
    "OPTIM_WRAPPER_CONSTRUCTORS": "torchkiln.registry",
    **{
        f"{source}_OPTIMIZERS": "torchkiln.optim.optimizer.known_optimizers"
        for source in (
            "BITSANDBYTES",
            "DADAPTATION",
            "LION",
            "NPU",
            "SOPHIA",
            "TORCH",
            "TRANSFORMERS",
        )
    },
    "INF": _SCHEDULER,
    "_ParamScheduler": _SCHEDULER,
    "build_param_schedulers": _SCHEDULER,
    **{
        f"{name}{kind}": _SCHEDULER
        for name in _SCHEDULE_NAMES
        for kind in ("ParamScheduler", "LR", "Momentum")
    },
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports("torchkiln.optim", _EXPORTS, globals())


if TYPE_CHECKING:  # pragma: no cover
    from torchkiln.optim.optimizer import (
        AmpOptimWrapper as AmpOptimWrapper,
        DefaultOptimWrapperConstructor as DefaultOptimWrapperConstructor,
        MultiOptimWrapperConstructor as MultiOptimWrapperConstructor,
        OptimWrapper as OptimWrapper,
        OptimWrapperDict as OptimWrapperDict,
        build_optim_wrapper as build_optim_wrapper,
        merge_param_groups as merge_param_groups,
    )
    from torchkiln.optim.optimizer.apex_optim_wrapper import ApexOptimWrapper as ApexOptimWrapper
    from torchkiln.optim.optimizer.known_optimizers import (
        BITSANDBYTES_OPTIMIZERS as BITSANDBYTES_OPTIMIZERS,
        DADAPTATION_OPTIMIZERS as DADAPTATION_OPTIMIZERS,
        LION_OPTIMIZERS as LION_OPTIMIZERS,
        NPU_OPTIMIZERS as NPU_OPTIMIZERS,
        SOPHIA_OPTIMIZERS as SOPHIA_OPTIMIZERS,
        TORCH_OPTIMIZERS as TORCH_OPTIMIZERS,
        TRANSFORMERS_OPTIMIZERS as TRANSFORMERS_OPTIMIZERS,
    )
    from torchkiln.optim.optimizer.zero_optimizer import (
        ZeroRedundancyOptimizer as ZeroRedundancyOptimizer,
    )
    from torchkiln.optim.scheduler import *  # noqa: F403
    from torchkiln.registry import (
        OPTIM_WRAPPER_CONSTRUCTORS as OPTIM_WRAPPER_CONSTRUCTORS,
        OPTIMIZERS as OPTIMIZERS,
    )
