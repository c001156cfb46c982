"""ApexOptimWrapper's missing-package error and the *_OPTIMIZERS lists."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from torch import nn

from torchkiln import optim
from torchkiln.registry import OPTIM_WRAPPERS, OPTIMIZERS


@pytest.mark.skipif(importlib.util.find_spec("apex") is not None, reason="apex is installed")
def test_apex_wrapper_names_the_missing_package() -> None:
    from torchkiln.optim.optimizer.apex_optim_wrapper import ApexNotInstalledError

    sgd = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1)
    with pytest.raises(ApexNotInstalledError, match="`apex`") as info:
        OPTIM_WRAPPERS.build({"type": "ApexOptimWrapper", "optimizer": sgd})
    assert isinstance(info.value, ImportError)
    assert "AmpOptimWrapper" in str(info.value)


def test_optimizer_lists() -> None:
    assert {"SGD", "Adam", "AdamW"} <= set(optim.TORCH_OPTIMIZERS)
    assert "Optimizer" in optim.TORCH_OPTIMIZERS  # listed, as in MMEngine, but not built
    for name in optim.TORCH_OPTIMIZERS:
        if name != "Optimizer":
            assert OPTIMIZERS.get(name) is getattr(torch.optim, name)
    for listing, package in [
        (optim.DADAPTATION_OPTIMIZERS, "dadaptation"),
        (optim.LION_OPTIMIZERS, "lion_pytorch"),
        (optim.BITSANDBYTES_OPTIMIZERS, "bitsandbytes"),
        (optim.NPU_OPTIMIZERS, "torch_npu"),
    ]:
        if importlib.util.find_spec(package) is None:
            assert listing == []
        else:
            assert all(name in OPTIMIZERS for name in listing)
    assert isinstance(optim.SOPHIA_OPTIMIZERS, list)
    assert isinstance(optim.TRANSFORMERS_OPTIMIZERS, list)
