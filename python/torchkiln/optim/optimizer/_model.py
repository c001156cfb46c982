"""Small questions about models that the optimisation code asks: wrapped? batch norm?

``unwrap_model`` is :func:`torchkiln.model.wrappers.unwrap_model` (nested wrappers too).
"""

from __future__ import annotations

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from torchkiln.model.wrappers import unwrap_model

__all__ = ["has_batch_norm", "unwrap_model"]


def has_batch_norm(model: nn.Module) -> bool:
    """True when any sub-module of ``model`` is a batch-norm layer."""
    return any(isinstance(m, _BatchNorm) for m in model.modules())
