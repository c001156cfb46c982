"""Optimizer wrappers, their constructors, and ``build_optim_wrapper``."""

from __future__ import annotations

from torchkiln.optim.optimizer.amp_optim_wrapper import AmpOptimWrapper
from torchkiln.optim.optimizer.builder import build_optim_wrapper
from torchkiln.optim.optimizer.default_constructor import (
    DefaultOptimWrapperConstructor,
    merge_param_groups,
)
from torchkiln.optim.optimizer.multi_constructor import MultiOptimWrapperConstructor
from torchkiln.optim.optimizer.optim_wrapper import OptimWrapper
from torchkiln.optim.optimizer.optim_wrapper_dict import OptimWrapperDict

__all__ = [
    "AmpOptimWrapper",
    "DefaultOptimWrapperConstructor",
    "MultiOptimWrapperConstructor",
    "OptimWrapper",
    "OptimWrapperDict",
    "build_optim_wrapper",
    "merge_param_groups",
]
