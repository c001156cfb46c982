"""convert_sync_batchnorm / revert_sync_batchnorm."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from torchkiln.model import convert_sync_batchnorm, revert_sync_batchnorm


def make() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Sequential(nn.BatchNorm1d(4)))


def test_convert_replaces_every_batch_norm() -> None:
    model = convert_sync_batchnorm(make())
    kinds = [type(m) for m in model.modules() if "Norm" in type(m).__name__]
    assert kinds == [nn.SyncBatchNorm, nn.SyncBatchNorm]
    with pytest.raises(ValueError, match="'mmcv'"):
        convert_sync_batchnorm(make(), implementation="mmcv")


def test_revert_keeps_state_and_runs_in_one_process() -> None:
    torch.manual_seed(0)
    original = make()
    with torch.no_grad():
        original[1].weight.fill_(2.0)
        original[1].running_mean.fill_(0.5)
    synced = convert_sync_batchnorm(original)
    synced.eval()
    reverted = revert_sync_batchnorm(synced)
    norms = [m for m in reverted.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert len(norms) == 2 and not any(isinstance(m, nn.SyncBatchNorm) for m in norms)
    assert torch.equal(norms[0].weight, torch.full((2,), 2.0))
    assert torch.equal(norms[0].running_mean, torch.full((2,), 0.5))
    assert not norms[0].training
    out = reverted[:2](torch.randn(2, 1, 5, 5))  # a SyncBatchNorm needs a process group here
    assert out.shape == (2, 2, 3, 3)
    class NoAdd(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(1, 1)
            self.norm = nn.SyncBatchNorm(1)

        def add_module(self, name, module):
            raise ValueError("modules are fixed")

    odd = revert_sync_batchnorm(NoAdd())
    assert not isinstance(odd.norm, nn.SyncBatchNorm) and isinstance(odd.fc, nn.Linear)
    alone = revert_sync_batchnorm(nn.SyncBatchNorm(3))
    assert not isinstance(alone, nn.SyncBatchNorm)
    assert alone(torch.randn(2, 3)).shape == (2, 3)  # any input rank
