"""Every parameter gets the lr, weight decay and momentum MMEngine's constructor gives it.

torchkiln merges parameters with equal settings into one param group; MMEngine makes one
group per parameter. So these tests compare per parameter: which parameters the optimizer
holds, and each one's settings, against MMEngine's own ``DefaultOptimWrapperConstructor``.
"""

from __future__ import annotations

import copy
import logging

import pytest
import torch
from torch import nn

from torchkiln.optim import DefaultOptimWrapperConstructor

mm_optim = pytest.importorskip("mmengine.optim")

SETTINGS = ("lr", "weight_decay", "momentum", "betas")


class Sub(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 2, kernel_size=1, groups=2)  # depth-wise, with a bias
        self.gn = nn.GroupNorm(2, 2)
        self.param1 = nn.Parameter(torch.ones(1))


class Example(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.param1 = nn.Parameter(torch.ones(1))
        self.conv1 = nn.Conv2d(3, 4, kernel_size=1, bias=False)
        self.conv2 = nn.Conv2d(4, 2, kernel_size=1)
        self.bn = nn.BatchNorm2d(2)
        self.sub = Sub()
        self.ln = nn.LayerNorm(2)
        self.head = nn.Linear(2, 3)


class Frozen(Example):
    """A frozen sub-module and a single frozen parameter next to trainable ones."""

    def __init__(self):
        super().__init__()
        self.sub.requires_grad_(False)
        self.conv2.bias.requires_grad_(False)


class Shared(Example):
    """``conv3`` is ``conv1`` again: its parameters appear twice in the module tree."""

    def __init__(self):
        super().__init__()
        self.conv3 = self.conv1
        self.block = nn.Sequential(nn.Conv2d(2, 2, 1))
        self.block_again = nn.Sequential(self.block[0])


def per_parameter(model, optimizer):
    """{name: settings} for each parameter the optimizer holds (MMEngine names, first use)."""
    held = {}
    for group in optimizer.param_groups:
        for param in group["params"]:
            held[id(param)] = {k: group[k] for k in SETTINGS if k in group}
    return {name: held[id(p)] for name, p in model.named_parameters() if id(p) in held}


def assert_same_as_mmengine(model_cls, optimizer_cfg, paramwise_cfg):
    cfg = {"type": "OptimWrapper", "optimizer": optimizer_cfg}
    ours_model, mm_model = model_cls(), model_cls()
    ours = DefaultOptimWrapperConstructor(copy.deepcopy(cfg), copy.deepcopy(paramwise_cfg))
    theirs = mm_optim.DefaultOptimWrapperConstructor(copy.deepcopy(cfg), copy.deepcopy(paramwise_cfg))
    got = per_parameter(ours_model, ours(ours_model).optimizer)
    expected = per_parameter(mm_model, theirs(mm_model).optimizer)
    assert got.keys() == expected.keys()
    for name, settings in expected.items():
        assert got[name].keys() == settings.keys(), name
        for key, value in settings.items():
            assert got[name][key] == pytest.approx(value), f"{name} {key}"
    return got


SGD = {"type": "SGD", "lr": 0.01, "momentum": 0.9, "weight_decay": 1e-4}
MULTS = {
    "bias_lr_mult": 2.0,
    "bias_decay_mult": 0.5,
    "norm_decay_mult": 0.0,
    "dwconv_decay_mult": 0.1,
    "flat_decay_mult": 0.3,
}
CUSTOM = {
    "custom_keys": {
        "param1": {"lr_mult": 10.0},
        "sub": {"lr_mult": 0.1, "decay_mult": 0.0},
        "sub.gn": {"lr_mult": 0.01},
        "head": {"momentum": 0.5},
        "non_exist_key": {"lr_mult": 0.0},
    },
    "norm_decay_mult": 0.5,
}


@pytest.fixture(autouse=True)
def _quiet_mmengine():
    # MMEngine logs each parameter's settings; keep the test output readable.
    logging.getLogger("mmengine").setLevel(logging.ERROR)


@pytest.mark.parametrize(
    ("model_cls", "optimizer_cfg", "paramwise_cfg"),
    [
        pytest.param(Example, SGD, MULTS, id="multipliers"),
        pytest.param(Example, SGD, {"bias_lr_mult": 2.0}, id="bias-lr-only"),
        pytest.param(Example, {"type": "SGD", "lr": 0.01}, {"bias_lr_mult": 3.0}, id="no-weight-decay"),
        pytest.param(Example, SGD, {"norm_decay_mult": 0.0, "dwconv_decay_mult": 0.2}, id="norm-dwconv"),
        pytest.param(Example, SGD, CUSTOM, id="custom-keys"),
        pytest.param(Example, SGD, {**CUSTOM, **MULTS}, id="custom-keys-and-multipliers"),
        pytest.param(
            Example,
            {"type": "AdamW", "lr": 1e-3, "weight_decay": 0.05, "betas": (0.9, 0.99)},
            {"custom_keys": {"head": {"lr_mult": 0.1, "decay_mult": 0.0}}, "norm_decay_mult": 0.0},
            id="adamw",
        ),
        pytest.param(Frozen, SGD, MULTS, id="frozen"),
        pytest.param(Frozen, SGD, CUSTOM, id="frozen-custom-keys"),
        pytest.param(Frozen, SGD, {}, id="frozen-without-paramwise"),
        pytest.param(Shared, SGD, {**MULTS, "bypass_duplicate": True}, id="bypass-duplicate"),
    ],
)
def test_each_parameter_gets_mmengines_settings(model_cls, optimizer_cfg, paramwise_cfg):
    assert_same_as_mmengine(model_cls, optimizer_cfg, paramwise_cfg)


def test_frozen_parameters_are_left_out_only_with_paramwise_cfg():
    with_rules = assert_same_as_mmengine(Frozen, SGD, MULTS)
    assert not any(name.startswith("sub.") or name == "conv2.bias" for name in with_rules)
    # without paramwise_cfg both hand model.parameters() to the optimizer, frozen ones too
    without = assert_same_as_mmengine(Frozen, SGD, {})
    assert "sub.gn.weight" in without and "conv2.bias" in without


def test_shared_parameters_are_kept_once_with_bypass_duplicate():
    got = assert_same_as_mmengine(Shared, SGD, {**MULTS, "bypass_duplicate": True})
    assert "conv1.weight" in got and "block.0.bias" in got
