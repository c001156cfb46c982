"""Small questions about models that the optimisation code asks: wrapped? batch norm?"""

from __future__ import annotations

from typing import Any

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

__all__ = ["has_batch_norm", "model_device_type", "unwrap_model"]


def _is_data_parallel(model: Any) -> bool:
    return isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel))


def unwrap_model(model: nn.Module) -> nn.Module:
    """The user's module inside a data-parallel wrapper (DDP, DataParallel), else ``model``.

    Uses ``torchkiln.model.wrappers.is_model_wrapper`` when that module is available, so
    wrappers registered in MODEL_WRAPPERS are recognised too.
    """
    try:
        from torchkiln.model.wrappers import is_model_wrapper
    except ImportError:
        is_model_wrapper = _is_data_parallel
    inner = getattr(model, "module", None)
    if isinstance(inner, nn.Module) and (is_model_wrapper(model) or _is_data_parallel(model)):
        return inner
    return model


def has_batch_norm(model: nn.Module) -> bool:
    """True when any sub-module of ``model`` is a batch-norm layer."""
    return any(isinstance(m, _BatchNorm) for m in model.modules())


def model_device_type(model: Any) -> str | None:
    """Device type (``cuda``, ``cpu``, ...) of the model's first parameter, None without any."""
    parameters = getattr(model, "parameters", None)
    if parameters is None:
        return None
    for param in parameters():
        return param.device.type
    return None
