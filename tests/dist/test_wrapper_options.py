"""model_wrapper_cfg checks that need no process group: sync_bn on the CPU, FSDP options."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from torchkiln.dist import fsdp
from torchkiln.errors import ConfigError
from torchkiln.model import DigitsMLP
from torchkiln.model.wrappers import wrap_model
from torchkiln.registry import MODEL_WRAPPERS


def test_sync_bn_under_ddp_on_the_cpu_is_a_config_error():
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
    with pytest.raises(ConfigError, match="sync_bn needs CUDA") as info:
        wrap_model(model, {"sync_bn": "torch"}, device="cpu", distributed=True)
    assert info.value.hint


def test_fsdp_wrapper_is_registered_under_both_names():
    assert MODEL_WRAPPERS.get("FSDPWrapper") is fsdp.KilnFullyShardedDataParallel
    assert MODEL_WRAPPERS.get("KilnFullyShardedDataParallel") is fsdp.KilnFullyShardedDataParallel


def test_fsdp_rejects_shard_modules_the_model_lacks():
    with pytest.raises(ConfigError, match="TransformerBlock") as info:
        fsdp.KilnFullyShardedDataParallel(DigitsMLP(hidden=4), shard_modules=["Linear", "TransformerBlock"])
    assert "Linear" in info.value.hint


def test_fsdp_policies_from_config_values():
    from torch.distributed.fsdp import CPUOffloadPolicy

    policy = fsdp._mp_policy({"param_dtype": "bf16", "reduce_dtype": "float32", "cast_forward_inputs": False})
    assert (policy.param_dtype, policy.reduce_dtype, policy.cast_forward_inputs) == (torch.bfloat16, torch.float32, False)
    with pytest.raises(ConfigError, match="unknown dtype 'float8'"):
        fsdp._mp_policy({"param_dtype": "float8"})
    assert isinstance(fsdp._offload_policy("cpu"), CPUOffloadPolicy)
    assert fsdp._offload_policy({"type": "cpu", "pin_memory": False}).pin_memory is False
    assert fsdp._offload_policy(None) is None
    with pytest.raises(ConfigError, match="offload_policy"):
        fsdp._offload_policy("nvme")


def test_mm_fsdp_name_refuses_first_fsdp_arguments_with_their_replacement() -> None:
    from torchkiln.dist import KilnFullyShardedDataParallel, MMFullyShardedDataParallel
    from torchkiln.errors import UsageTypeError
    from torchkiln.model import MMFullyShardedDataParallel as from_model
    from torchkiln.registry import MODEL_WRAPPERS

    assert from_model is MMFullyShardedDataParallel
    assert issubclass(MMFullyShardedDataParallel, KilnFullyShardedDataParallel)
    assert MODEL_WRAPPERS.get("MMFullyShardedDataParallel") is MMFullyShardedDataParallel
    with pytest.raises(UsageTypeError, match="auto_wrap_policy") as info:
        MMFullyShardedDataParallel(torch.nn.Linear(1, 1), auto_wrap_policy=None, cpu_offload=True)
    assert "shard_modules" in str(info.value)
