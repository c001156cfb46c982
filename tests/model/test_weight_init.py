"""Initializer functions, registered initializers, ``layer``/``override`` and Pretrained."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from torch import nn

from torchkiln.errors import BuildError, ConfigError
from torchkiln.model import (
    KaimingInit,
    PretrainedInit,
    bias_init_with_prob,
    caffe2_xavier_init,
    constant_init,
    initialize,
    kaiming_init,
    normal_init,
    trunc_normal_init,
    uniform_init,
    xavier_init,
)
from torchkiln.registry import WEIGHT_INITIALIZERS


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 4)
        self.head = nn.Linear(4, 2)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def test_constant_init_sets_weight_and_bias() -> None:
    fc = nn.Linear(3, 2)
    constant_init(fc, 0.5, bias=-1.0)
    assert torch.equal(fc.weight, torch.full((2, 3), 0.5))
    assert torch.equal(fc.bias, torch.full((2,), -1.0))


def test_constant_init_without_bias() -> None:
    fc = nn.Linear(3, 2, bias=False)
    constant_init(fc, 2.0, bias=1.0)
    assert torch.equal(fc.weight, torch.full((2, 3), 2.0))


def test_xavier_uniform_bound_and_normal_std() -> None:
    fc = nn.Linear(200, 300)
    xavier_init(fc, gain=2.0, bias=0.1, distribution="uniform")
    bound = 2.0 * math.sqrt(6.0 / (200 + 300))
    assert fc.weight.abs().max() <= bound
    assert fc.weight.abs().max() > 0.95 * bound
    assert torch.allclose(fc.bias, torch.full((300,), 0.1))
    xavier_init(fc, gain=1.0, distribution="normal")
    assert fc.weight.std().item() == pytest.approx(math.sqrt(2.0 / 500), rel=0.03)


def test_normal_and_trunc_normal() -> None:
    fc = nn.Linear(300, 300)
    normal_init(fc, mean=1.0, std=0.02, bias=3.0)
    assert fc.weight.mean().item() == pytest.approx(1.0, abs=1e-3)
    assert fc.weight.std().item() == pytest.approx(0.02, rel=0.02)
    assert torch.equal(fc.bias, torch.full((300,), 3.0))
    trunc_normal_init(fc, mean=0.0, std=1.0, a=-0.5, b=0.25)
    assert fc.weight.min() >= -0.5 and fc.weight.max() <= 0.25
    assert fc.weight.min() < -0.49 and fc.weight.max() > 0.24


def test_uniform_init_bounds() -> None:
    fc = nn.Linear(100, 100)
    uniform_init(fc, a=2.0, b=3.0, bias=0.0)
    assert fc.weight.min() >= 2.0 and fc.weight.max() <= 3.0
    assert fc.weight.mean().item() == pytest.approx(2.5, abs=0.01)


def test_kaiming_std_fan_in_and_fan_out() -> None:
    conv = nn.Conv2d(16, 64, 3)
    kaiming_init(conv, mode="fan_out", nonlinearity="relu")
    fan_out = 64 * 9
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2.0 / fan_out), rel=0.03)
    assert torch.equal(conv.bias, torch.zeros(64))
    kaiming_init(conv, mode="fan_in", nonlinearity="relu", distribution="uniform")
    bound = math.sqrt(2.0) * math.sqrt(3.0 / (16 * 9))
    assert conv.weight.abs().max() <= bound
    assert conv.weight.abs().max() > 0.95 * bound


def test_caffe2_xavier_is_kaiming_uniform_a1() -> None:
    fc = nn.Linear(400, 50)
    caffe2_xavier_init(fc)
    bound = math.sqrt(3.0 / 400)  # gain sqrt(2 / (1 + 1^2)) = 1
    assert fc.weight.abs().max() <= bound
    assert fc.weight.abs().max() > 0.95 * bound


def test_bias_init_with_prob_closed_form() -> None:
    assert bias_init_with_prob(0.01) == pytest.approx(-math.log(99.0))
    assert torch.sigmoid(torch.tensor(bias_init_with_prob(0.2))).item() == pytest.approx(0.2)
    with pytest.raises(ValueError):
        bias_init_with_prob(1.0)


def test_layer_selects_classes_only() -> None:
    net = Net()
    fc_before = net.fc.weight.clone()
    initialize(net, dict(type="Constant", val=2.0, bias=1.0, layer="Conv2d"))
    assert torch.equal(net.conv.weight, torch.full_like(net.conv.weight, 2.0))
    assert torch.equal(net.conv.bias, torch.ones(8))
    assert torch.equal(net.fc.weight, fc_before)


def test_layer_list_and_base_class_names() -> None:
    net = Net()
    initialize(net, [dict(type="Constant", val=3.0, layer=["Linear", "_BatchNorm"])])
    assert torch.equal(net.fc.weight, torch.full((4, 8), 3.0))
    assert torch.equal(net.head.weight, torch.full((2, 4), 3.0))
    assert torch.equal(net.bn.weight, torch.full((8,), 3.0))  # BatchNorm2d derives from _BatchNorm


def test_bias_prob() -> None:
    net = Net()
    initialize(net, dict(type="Normal", std=0.01, bias_prob=0.01, layer="Linear"))
    assert torch.allclose(net.head.bias, torch.full((2,), -math.log(99.0)))


def test_override_with_own_type_applies_to_whole_child() -> None:
    net = Net()
    initialize(
        net,
        dict(type="Constant", val=1.0, layer="Linear", override=dict(name="head", type="Constant", val=5.0, bias=2.0)),
    )
    assert torch.equal(net.fc.weight, torch.ones(4, 8))
    assert torch.equal(net.head.weight, torch.full((2, 4), 5.0))
    assert torch.equal(net.head.bias, torch.full((2,), 2.0))


def test_override_name_only_reuses_outer_initializer_ignoring_layer() -> None:
    net = Net()
    initialize(net, dict(type="Constant", val=7.0, layer="Conv2d", override=dict(name="bn")))
    assert torch.equal(net.bn.weight, torch.full((8,), 7.0))  # BatchNorm2d is not Conv2d: came from override
    assert torch.equal(net.conv.weight, torch.full_like(net.conv.weight, 7.0))
    assert not torch.equal(net.fc.weight, torch.full_like(net.fc.weight, 7.0))


def test_override_of_nested_child_with_kaiming_skips_1d_weights() -> None:
    net = nn.Module()
    net.block = nn.Sequential(nn.Conv2d(2, 4, 1), nn.BatchNorm2d(4))
    initialize(net, dict(type="Kaiming", override=dict(name="block", type="Kaiming", bias=0.5)))
    assert torch.equal(net.block[1].weight, torch.ones(4))  # 1-D norm weight left as is
    assert torch.equal(net.block[0].bias, torch.full((4,), 0.5))


def test_override_unknown_child_suggests_name() -> None:
    with pytest.raises(ConfigError, match="'haed'") as info:
        initialize(Net(), dict(type="Constant", val=1.0, layer="Linear", override=dict(name="haed")))
    assert "head" in str(info.value)


def test_override_without_type_but_with_arguments_is_an_error() -> None:
    with pytest.raises(ConfigError, match="without a 'type'"):
        initialize(Net(), dict(type="Constant", val=1.0, override=dict(name="head", val=2.0)))


def test_unknown_argument_is_a_build_error() -> None:
    with pytest.raises(BuildError, match="std"):
        initialize(Net(), dict(type="Constant", val=1.0, std=0.1, layer="Linear"))


def test_unknown_type_suggests() -> None:
    with pytest.raises(BuildError) as info:
        initialize(Net(), dict(type="Kaimin", layer="Linear"))
    assert "Kaiming" in str(info.value)


def test_bad_values_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="distribution"):
        KaimingInit(distribution="gaussian")
    with pytest.raises(ConfigError, match="mode"):
        KaimingInit(mode="fan")
    with pytest.raises(ConfigError, match="layer"):
        KaimingInit(layer=3)
    with pytest.raises(ConfigError, match="init_cfg must be a dict"):
        initialize(Net(), "Kaiming")


def test_layer_typo_warns_with_suggestion() -> None:
    with pytest.warns(UserWarning, match="did you mean 'Conv2d'"):
        initialize(Net(), dict(type="Constant", val=1.0, layer="conv2d"))


def test_absent_layer_kind_does_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        initialize(Net(), dict(type="Constant", val=1.0, layer=["Linear", "GroupNorm"]))


def test_no_layer_no_override_warns() -> None:
    with pytest.warns(UserWarning, match="initialises nothing"):
        initialize(Net(), dict(type="Normal", std=0.1))


def test_registered_names() -> None:
    for name in ["Constant", "Xavier", "Normal", "TruncNormal", "Uniform", "Kaiming", "Caffe2Xavier", "Pretrained"]:
        assert name in WEIGHT_INITIALIZERS
    assert WEIGHT_INITIALIZERS.get("Pretrained") is PretrainedInit


# ---------------------------------------------------------------------------- Pretrained
def test_pretrained_loads_state_dict(tmp_path) -> None:
    src = Net()
    path = tmp_path / "w.pth"
    torch.save(src.state_dict(), path)
    dst = Net()
    initialize(dst, dict(type="Pretrained", checkpoint=str(path)))
    for (name, a), b in zip(src.state_dict().items(), dst.state_dict().values()):
        assert torch.equal(a, b), name


def test_pretrained_checkpoint_dict_with_module_prefix_and_prefix(tmp_path) -> None:
    outer = nn.Module()
    outer.backbone = Net()
    ddp_style = {"module." + k: v for k, v in outer.state_dict().items()}
    path = tmp_path / "ckpt.pth"
    torch.save({"meta": {"epoch": 3}, "state_dict": ddp_style}, path)
    dst = Net()
    initialize(dst, dict(type="Pretrained", checkpoint=str(path), prefix="backbone"))
    assert torch.equal(dst.fc.weight, outer.backbone.fc.weight)
    with pytest.raises(ConfigError, match="no weights under prefix 'backbon.'") as info:
        initialize(Net(), dict(type="Pretrained", checkpoint=str(path), prefix="backbon."))
    assert "did you mean 'backbone'" in str(info.value)


def test_pretrained_skips_mis_shaped_tensors_and_logs_them(tmp_path, caplog) -> None:
    """Fine-tuning with another number of classes: the head is skipped, the rest loads."""
    src = Net()
    src.head = nn.Linear(4, 5)  # 5 classes in the checkpoint, 2 in the model
    path = tmp_path / "w.pth"
    torch.save({"state_dict": {"module." + k: v for k, v in src.state_dict().items()}}, path)
    dst = Net()
    head_before = dst.head.weight.detach().clone()
    with caplog.at_level("WARNING", logger="torchkiln.model.weight_init"):
        initialize(dst, dict(type="Pretrained", checkpoint=str(path)))
    assert torch.equal(dst.fc.weight, src.fc.weight)
    assert torch.equal(dst.conv.weight, src.conv.weight)
    assert torch.equal(dst.head.weight, head_before)
    text = caplog.text
    assert "shape mismatch for head.weight: checkpoint [5, 4] vs model [2, 4]" in text
    assert "shape mismatch for head.bias: checkpoint [5] vs model [2]" in text
    assert "missing keys" not in text  # skipped tensors are reported once, as mis-shaped


def test_pretrained_missing_file(tmp_path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        initialize(Net(), dict(type="Pretrained", checkpoint=str(tmp_path / "nope.pth")))


class _Evil:
    pass


def test_pretrained_refuses_arbitrary_pickles(tmp_path) -> None:
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {}, "obj": _Evil()}, path)
    with pytest.raises(ConfigError, match="weights_only"):
        initialize(Net(), dict(type="Pretrained", checkpoint=str(path)))


def test_pretrained_as_override(tmp_path) -> None:
    head = nn.Linear(4, 2)
    path = tmp_path / "head.pth"
    torch.save(head.state_dict(), path)
    net = Net()
    initialize(
        net,
        dict(type="Constant", val=0.0, layer="Linear", override=dict(name="head", type="Pretrained", checkpoint=str(path))),
    )
    assert torch.equal(net.head.weight, head.weight)
    assert torch.equal(net.fc.weight, torch.zeros(4, 8))
