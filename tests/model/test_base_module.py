"""BaseModule.init_weights: order, precedence, idempotence and the init report."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from torchkiln.errors import ConfigError
from torchkiln.model import BaseModule, ModuleList, Sequential


class Block(BaseModule):
    def __init__(self, init_cfg=None) -> None:
        super().__init__(init_cfg)
        self.conv = nn.Conv2d(2, 2, 1)
        self.fc = nn.Linear(2, 2)


class Top(BaseModule):
    def __init__(self, init_cfg=None, child_cfg=None) -> None:
        super().__init__(init_cfg)
        self.stem = nn.Linear(2, 2)
        self.head = Block(child_cfg)


def full(t: torch.Tensor, v: float) -> torch.Tensor:
    return torch.full_like(t, v)


def test_init_weights_applies_and_sets_flag() -> None:
    m = Top(dict(type="Constant", val=1.0, bias=2.0, layer="Linear"))
    assert not m.is_init
    m.init_weights()
    assert m.is_init and m.head.is_init
    assert torch.equal(m.stem.weight, full(m.stem.weight, 1.0))
    assert torch.equal(m.head.fc.bias, full(m.head.fc.bias, 2.0))  # layer matches inside children


def test_second_call_warns_and_changes_nothing() -> None:
    m = Top(dict(type="Normal", std=1.0, layer="Linear"))
    m.init_weights()
    before = m.stem.weight.clone()
    with pytest.warns(UserWarning, match="already called"):
        m.init_weights()
    assert torch.equal(m.stem.weight, before)


def test_second_call_keeps_the_init_report() -> None:
    """Initialising before handing the model to the runner must not wipe the report."""
    m = Top(dict(type="Constant", val=1.0, layer="Linear"))
    m.init_weights()
    first = m.params_init_info()
    assert first["stem.weight"] == "Constant: val=1.0, bias=0 (init_cfg of Top)"
    with pytest.warns(UserWarning, match="already called"):
        m.init_weights()
    assert m.params_init_info() == first


def test_child_init_cfg_beats_parent_layer_and_override() -> None:
    cfg = dict(type="Constant", val=1.0, layer="Linear", override=dict(name="head", type="Constant", val=3.0))
    m = Top(cfg, child_cfg=dict(type="Constant", val=9.0, layer="Linear"))
    m.init_weights()
    assert cfg["override"] == dict(name="head", type="Constant", val=3.0)  # the config is not consumed
    assert m.init_cfg == cfg
    assert torch.equal(m.stem.weight, full(m.stem.weight, 1.0))
    assert torch.equal(m.head.fc.weight, full(m.head.fc.weight, 9.0))  # the child's own cfg wins
    assert torch.equal(m.head.conv.weight, full(m.head.conv.weight, 3.0))  # the parent's override stays elsewhere


def test_parent_pretrained_overwrites_children(tmp_path) -> None:
    ref = Top()
    nn.init.constant_(ref.head.fc.weight, 5.0)
    path = tmp_path / "top.pth"
    torch.save(ref.state_dict(), path)
    m = Top(dict(type="Pretrained", checkpoint=str(path)), child_cfg=dict(type="Constant", val=9.0, layer="Linear"))
    m.init_weights()
    assert torch.equal(m.head.fc.weight, full(m.head.fc.weight, 5.0))
    assert "Pretrained" in m.params_init_info()["head.fc.weight"]


def test_base_modules_inside_plain_containers_are_initialised() -> None:
    top = BaseModule()
    top.blocks = nn.Sequential(Block(dict(type="Constant", val=4.0, layer="Conv2d")))
    top.init_weights()
    assert torch.equal(top.blocks[0].conv.weight, full(top.blocks[0].conv.weight, 4.0))
    assert top.blocks[0].is_init


def test_user_defined_init_weights_of_plain_child_is_called_and_reported() -> None:
    class Custom(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.zeros(3))

        def init_weights(self) -> None:
            with torch.no_grad():
                self.w.fill_(6.0)

    top = BaseModule()
    top.custom = Custom()
    top.fc = nn.Linear(2, 2)
    top.init_weights()
    assert torch.equal(top.custom.w, torch.full((3,), 6.0))
    info = top.params_init_info()
    assert info["custom.w"] == "init_weights() of Custom"
    assert info["fc.weight"] == "default initialisation of Linear"


def test_params_init_info_names_the_last_writer() -> None:
    m = Top(
        dict(type="Constant", val=1.0, layer="Linear"),
        child_cfg=dict(type="Normal", std=0.5, layer="Linear"),
    )
    m.init_weights()
    info = m.params_init_info()
    assert info["stem.weight"] == "Constant: val=1.0, bias=0 (init_cfg of Top)"
    assert info["head.fc.weight"] == "Normal: mean=0, std=0.5, bias=0 (init_cfg of Block)"
    assert info["head.conv.weight"] == "default initialisation of Conv2d"
    text = m.format_init_info()
    assert "head.fc.weight" in text and "(2, 2)" in text


def test_init_cfg_is_shown_in_repr_and_validated() -> None:
    assert "init_cfg={'type': 'Kaiming'" in repr(Top(dict(type="Kaiming", layer="Linear")))
    with pytest.raises(ConfigError, match="dict or a list of dicts"):
        Top(init_cfg="Kaiming")


def test_containers_with_init_cfg() -> None:
    seq = Sequential(nn.Linear(2, 2), nn.Linear(2, 3), init_cfg=dict(type="Constant", val=2.0, layer="Linear"))
    seq.init_weights()
    assert torch.equal(seq[1].weight, torch.full((3, 2), 2.0))
    assert seq(torch.ones(1, 2)).shape == (1, 3)
    ml = ModuleList([Block(), Block()], init_cfg=dict(type="Constant", val=3.0, layer="Conv2d"))
    ml.init_weights()
    assert torch.equal(ml[1].conv.weight, full(ml[1].conv.weight, 3.0))
    assert len(ml) == 2


def test_init_report_goes_to_the_current_loggers_log_file(tmp_path) -> None:
    from torchkiln.logging import MMLogger

    saved = MMLogger._instance_dict.copy()
    MMLogger._instance_dict.clear()
    try:
        MMLogger.get_instance("console-only")
        Sequential(nn.Linear(2, 2), init_cfg={"type": "Constant", "val": 1.0, "layer": "Linear"}).init_weights()
        assert list(tmp_path.iterdir()) == []  # no file logger: nothing written anywhere
        log_file = tmp_path / "run.log"
        run_logger = MMLogger.get_instance("with-file", log_file=str(log_file), log_level="INFO")
        Sequential(nn.Linear(2, 2), init_cfg={"type": "Constant", "val": 1.0, "layer": "Linear"}).init_weights()
        text = log_file.read_text()
        # the report is written although the file handler's level is INFO
        assert "weight initialisation of Sequential" in text and "Constant: val=1.0" in text
    finally:
        for handler in run_logger.handlers:
            handler.close()
        MMLogger._instance_dict.clear()
        MMLogger._instance_dict.update(saved)
