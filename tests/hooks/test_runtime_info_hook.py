"""RuntimeInfoHook: counters, learning rates, losses as tensors, metrics."""

from __future__ import annotations

import types

import torch

from torchkiln.hooks.runtime_info_hook import RuntimeInfoHook
from torchkiln.logging.message_hub import MessageHub


def _optim(**lrs):
    return types.SimpleNamespace(get_lr=lambda: {k: list(v) for k, v in lrs.items()})


def test_counters_and_limits(make_runner, drive):
    runner = make_runner(max_epochs=3, iters_per_epoch=2)
    hook = RuntimeInfoHook()
    hook.before_run(runner)
    info = runner.message_hub.runtime_info
    assert info["experiment_name"] == "exp" and info["seed"] == 7
    hook.before_train(runner)
    assert (info["epoch"], info["iter"], info["max_epochs"], info["max_iters"]) == (0, 0, 3, 6)
    assert info["loop_stage"] == "train"
    runner.optim_wrapper = _optim(lr=[0.1, 0.01])
    drive.train_epoch(runner, [hook])
    assert info["iter"] == 1  # the last iteration of epoch 1 (0-based) was announced
    drive.train_epoch(runner, [hook])
    assert info["epoch"] == 1 and info["iter"] == 3
    assert runner.message_hub.scalars["train/lr"] == [0.1] * 4  # first param group


def test_losses_stay_tensors(make_runner, drive):
    runner = make_runner(max_epochs=1, iters_per_epoch=2)
    runner.optim_wrapper = _optim(**{"generator.lr": [0.2], "discriminator.lr": [0.3]})
    weight = torch.ones(1, requires_grad=True)
    hook = RuntimeInfoHook()

    def outputs(_runner):
        loss = (weight * 2).sum()
        return {"loss": loss, "loss_cls": torch.tensor(1.5)}

    drive.train_epoch(runner, [hook], outputs=outputs)
    scalars = runner.message_hub.scalars
    assert scalars["train/generator.lr"] == [0.2, 0.2] and scalars["train/discriminator.lr"] == [0.3, 0.3]
    for key in ("train/loss", "train/loss_cls"):
        assert len(scalars[key]) == 2
        assert all(isinstance(v, torch.Tensor) for v in scalars[key])
    assert torch.equal(scalars["train/loss"][0], torch.tensor(2.0))


def test_a_real_hub_keeps_losses_detached(make_runner, drive):
    """Losses still attached to the graph reach the hub, which keeps them detached (no
    graph stays alive until the next log read)."""
    runner = make_runner(max_epochs=1, iters_per_epoch=3)
    runner.optim_wrapper = _optim(lr=[0.1])
    runner.message_hub = MessageHub("runtime-info-test")
    weight = torch.ones(1, requires_grad=True)
    drive.train_epoch(runner, [RuntimeInfoHook()], outputs=lambda _r: {"loss": (weight * 2).sum()})
    pending = [value for key, value, _ in runner.message_hub._pending.entries if key == "train/loss"]
    assert len(pending) == 3 and not any(v.requires_grad for v in pending)
    assert runner.message_hub.get_scalar("train/loss").mean() == 2.0


def test_val_and_test_metrics(make_runner):
    runner = make_runner()
    hook = RuntimeInfoHook()
    hook.before_train(runner)
    hook.before_val(runner)
    assert runner.message_hub.get_info("loop_stage") == "val"
    hook.after_val_epoch(runner, {"accuracy/top1": 91.5, "confusion": [[1, 0], [0, 1]], "n": torch.tensor(3)})
    hook.after_val(runner)
    assert runner.message_hub.get_info("loop_stage") == "train"
    assert runner.message_hub.scalars["val/accuracy/top1"] == [91.5]
    assert runner.message_hub.get_info("val/confusion") == [[1, 0], [0, 1]]
    assert runner.message_hub.scalars["val/n"][0].item() == 3
    hook.before_test(runner)
    hook.after_test_epoch(runner, {"accuracy/top1": 90.0})
    hook.after_test(runner)
    assert runner.message_hub.scalars["test/accuracy/top1"] == [90.0]


def test_dataset_meta_and_last_loop_stage(make_runner):
    """``before_train`` publishes the training dataset's metainfo (an empty one too);
    ``last_loop_stage`` holds the stage a validation interrupted until it ends."""
    runner = make_runner(max_epochs=1, iters_per_epoch=2)
    runner.train_loop.dataloader = types.SimpleNamespace(dataset=types.SimpleNamespace(metainfo={}))
    hook = RuntimeInfoHook()
    hook.before_train(runner)
    assert runner.message_hub.get_info("dataset_meta") == {}
    hook.before_val(runner)
    assert hook.last_loop_stage == "train" and runner.message_hub.get_info("loop_stage") == "val"
    hook.after_val(runner)
    assert hook.last_loop_stage is None and runner.message_hub.get_info("loop_stage") == "train"


def test_get_lr_must_return_a_dict(make_runner):
    """A wrapper whose ``get_lr()`` is not a dict fails with a message naming the call."""
    import pytest

    from torchkiln.errors import ConfigError

    runner = make_runner(max_epochs=1, iters_per_epoch=2)
    runner.optim_wrapper = types.SimpleNamespace(get_lr=lambda: "not a dict")
    with pytest.raises(AssertionError, match=r"runner\.optim_wrapper\.get_lr\(\)") as info:
        RuntimeInfoHook().before_train_iter(runner, 0)
    assert isinstance(info.value, ConfigError)


def test_base_lr_of_a_wrapper_with_several_groups_is_logged(make_runner):
    """With ``base_param_settings`` (several param groups), ``train/base_lr`` is logged too."""
    from torchkiln.optim import OptimWrapper

    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 1))
    groups = [
        {"params": model[0].parameters(), "lr": 0.5},
        {"params": model[1].parameters(), "lr": 0.25},
    ]
    wrapper = OptimWrapper(torch.optim.SGD(groups, lr=0.1))
    assert wrapper.base_param_settings is not None
    runner = make_runner(max_epochs=1, iters_per_epoch=2)
    runner.optim_wrapper = wrapper
    RuntimeInfoHook().before_train_iter(runner, 0)
    scalars = runner.message_hub.scalars
    assert scalars["train/base_lr"] == [0.1] and scalars["train/lr"] == [0.5]
