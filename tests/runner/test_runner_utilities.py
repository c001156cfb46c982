"""Priority/get_priority, autocast and turn_on_activation_checkpointing (torchkiln.runner)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from torchkiln.errors import ConfigError
from torchkiln.hooks import Hook
from torchkiln.runner import Priority, autocast, get_priority, turn_on_activation_checkpointing


def test_priority_enum_and_get_priority() -> None:
    assert Priority.HIGHEST.value == 0 and Priority.NORMAL.value == 50
    assert Priority.LOWEST.value == 100 and len(Priority) == 9
    assert get_priority(Priority.VERY_LOW) == 90
    assert get_priority("above_normal") == 40 and get_priority(7) == 7
    with pytest.raises(ConfigError) as info:
        get_priority(101)
    assert isinstance(info.value, ValueError)
    with pytest.raises(ConfigError, match="SOMETIMES"):
        get_priority("SOMETIMES")
    with pytest.raises(ConfigError, match="integer or Priority") as info:
        get_priority([10])  # type: ignore[arg-type]
    assert isinstance(info.value, TypeError)


def test_a_hook_may_declare_an_enum_priority(tmp_path) -> None:
    from kiln_toys import ToyModel, make_loader

    from torchkiln.runner import Runner

    order: list[str] = []

    class Early(Hook):
        priority = Priority.VERY_HIGH

        def before_train(self, runner) -> None:
            order.append("early")

    class Late(Hook):
        priority = Priority.LOW

        def before_train(self, runner) -> None:
            order.append("late")

    runner = Runner(
        model=ToyModel(),
        work_dir=str(tmp_path),
        train_dataloader=make_loader(),
        train_cfg={"by_epoch": True, "max_epochs": 1},
        optim_wrapper={"optimizer": {"type": "SGD", "lr": 0.1}},
        custom_hooks=[Late(), Early()],
        default_hooks={"checkpoint": None, "logger": None},
    )
    runner.train()
    assert order == ["early", "late"]


def test_autocast_on_cpu_uses_bfloat16() -> None:
    layer = nn.Linear(4, 4)
    with autocast(device_type="cpu"):
        assert layer(torch.randn(2, 4)).dtype == torch.bfloat16
    with autocast(device_type="cpu", enabled=False):
        assert layer(torch.randn(2, 4)).dtype == torch.float32
    with pytest.raises(AssertionError, match="CPU autocast"), autocast(
        device_type="cpu", dtype=torch.float64
    ):
        pass
    with pytest.raises(ValueError, match="device_type 'abacus'"), autocast(device_type="abacus"):
        pass


def test_autocast_picks_the_device_by_default() -> None:
    layer = nn.Linear(4, 4)
    if torch.cuda.is_available():
        layer = layer.cuda()
        with autocast():
            assert layer(torch.randn(2, 4, device="cuda")).dtype == torch.float16
    else:
        with autocast():
            assert layer(torch.randn(2, 4)).dtype == torch.bfloat16


def test_activation_checkpointing_recomputes_and_keeps_gradients() -> None:
    torch.manual_seed(0)
    calls = {"n": 0}

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            calls["n"] += 1
            return torch.relu(self.fc(x))

    model = nn.Sequential(Block(), nn.Linear(4, 1))
    reference = nn.Sequential(Block(), nn.Linear(4, 1))
    reference.load_state_dict(model.state_dict())
    x = torch.randn(3, 4)
    reference(x).sum().backward()
    turn_on_activation_checkpointing(model, "0")
    calls["n"] = 0
    model(x).sum().backward()
    assert calls["n"] == 2  # the block ran again in the backward pass
    for mine, theirs in zip(model.parameters(), reference.parameters()):
        assert torch.allclose(mine.grad, theirs.grad)
    with pytest.raises(ValueError, match="no submodule 'neck'"):
        turn_on_activation_checkpointing(model, ["neck"])
