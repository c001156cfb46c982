"""ZeroRedundancyOptimizer: torch's ZeRO optimizer built from a config that names the local one."""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist
from torch import nn

from torchkiln.errors import ConfigError
from torchkiln.optim import ZeroRedundancyOptimizer, build_optim_wrapper


@pytest.fixture
def process_group(tmp_path):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def test_built_by_name_with_param_groups(process_group):
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    wrapper = build_optim_wrapper(
        model,
        {"optimizer": {"type": "ZeroRedundancyOptimizer", "optimizer_type": "SGD", "lr": 0.1,
                       "momentum": 0.9, "weight_decay": 1e-4},
         "paramwise_cfg": {"norm_decay_mult": 0.0}},
    )
    optimizer = wrapper.optimizer
    assert isinstance(optimizer, ZeroRedundancyOptimizer) and isinstance(optimizer.optim, torch.optim.SGD)
    assert len(optimizer.param_groups) == 4  # one per parameter, as the constructor gives them
    model(torch.randn(3, 2)).sum().backward()
    wrapper.step()
    state = optimizer.state_dict()  # consolidated on rank 0
    assert sum(len(g["params"]) for g in state["param_groups"]) == 4


def test_needs_a_known_optimizer_type(process_group):
    params = nn.Linear(2, 2).parameters()
    with pytest.raises(TypeError):
        ZeroRedundancyOptimizer(params, lr=0.1)  # optimizer_type is required
    with pytest.raises(ConfigError, match="unknown optimizer_type 'SDG'"):
        ZeroRedundancyOptimizer(nn.Linear(2, 2).parameters(), optimizer_type="SDG", lr=0.1)
