"""Switch a model's batch norms between ``BatchNorm`` and ``SyncBatchNorm``.

``convert_sync_batchnorm`` makes every batch norm synchronise its statistics across
processes (for DDP training with small per-GPU batches); ``revert_sync_batchnorm`` turns
them back into plain batch norms (to run such a model in one process, e.g. on a CPU),
keeping weights, running statistics and the training flag.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

__all__ = ["convert_sync_batchnorm", "revert_sync_batchnorm"]


class _AnyDimBatchNorm(_BatchNorm):
    """A batch norm that accepts inputs of any rank (what a SyncBatchNorm reverts to: it
    served 1-D, 2-D and 3-D inputs alike)."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        return


def _is_sync_batchnorm(module: nn.Module) -> bool:
    # mmcv's SyncBatchNorm (if a model uses it) is named alike and keeps the same state
    return isinstance(module, nn.SyncBatchNorm) or type(module).__name__ == "SyncBatchNorm"


def revert_sync_batchnorm(module: nn.Module) -> nn.Module:
    """``module`` with every SyncBatchNorm replaced by an equivalent local batch norm.

    Returns a new module when ``module`` itself is a SyncBatchNorm, else changes it in place
    and returns it.
    """
    converted: nn.Module = module
    if _is_sync_batchnorm(module):
        sync: Any = module
        local = _AnyDimBatchNorm(
            sync.num_features, sync.eps, sync.momentum, sync.affine, sync.track_running_stats
        )
        if sync.affine:
            with torch.no_grad():
                local.weight = sync.weight
                local.bias = sync.bias
        local.running_mean = sync.running_mean
        local.running_var = sync.running_var
        local.num_batches_tracked = sync.num_batches_tracked
        local.training = sync.training
        if hasattr(sync, "qconfig"):
            local.qconfig = sync.qconfig
        converted = local
    for name, child in module.named_children():
        reverted = revert_sync_batchnorm(child)
        if reverted is not child:
            # written to the registry directly: a module may override add_module
            converted._modules[name] = reverted
        elif converted is not module:
            converted._modules[name] = child
    return converted


def convert_sync_batchnorm(module: nn.Module, implementation: str = "torch") -> nn.Module:
    """``module`` with every batch norm replaced by ``torch.nn.SyncBatchNorm``.

    :param implementation: ``'torch'`` (the only one built in).
    :raises ValueError: another implementation (MMEngine also offers ``'mmcv'``).
    """
    if implementation != "torch":
        raise ValueError(
            f"convert_sync_batchnorm: unknown implementation {implementation!r}; use 'torch' "
            "(torch.nn.SyncBatchNorm); mmcv's SyncBatchNorm is not built in"
        )
    return nn.SyncBatchNorm.convert_sync_batchnorm(module)
