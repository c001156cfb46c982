"""MMEngine's Runner API: the hook list, the register_* and build_* methods, lazy optimizer."""

from __future__ import annotations

import functools

import pytest
import torch
from kiln_toys import ToyModel, make_loader
from torch.utils.data import DataLoader

from torchkiln import Hook, Runner
from torchkiln.data import DefaultSampler, worker_init_fn
from torchkiln.hooks import (
    CheckpointHook,
    DistSamplerSeedHook,
    IterTimerHook,
    LoggerHook,
    ParamSchedulerHook,
    RuntimeInfoHook,
)
from torchkiln.optim import OptimWrapper
from torchkiln.plugin_host import HookList, get_priority


class Lowest(Hook):
    priority = "LOWEST"

    def __init__(self) -> None:
        self.epochs: list[int] = []

    def before_train_epoch(self, runner):
        self.epochs.append(runner.epoch)


class Plain:
    """Not a Hook subclass: any object with mount-point methods is a hook."""

    def __init__(self) -> None:
        self.calls = 0

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.calls += 1


@pytest.fixture(autouse=True)
def _no_entry_point_plugins(monkeypatch):
    monkeypatch.setenv("TORCHKILN_DISABLE_PLUGIN_AUTOLOAD", "1")


def _runner(tmp_path, **kw):
    args = dict(
        model=ToyModel(),
        work_dir=str(tmp_path),
        train_dataloader=make_loader(8, 4),
        train_cfg=dict(by_epoch=True, max_epochs=2),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1)),
        default_hooks=dict(progress_bar=None),
    )
    args.update(kw)
    return Runner(**args)


# ---------------------------------------------------------------------- runner.hooks
def test_hooks_is_a_list_of_hook_objects_in_priority_order(tmp_path):
    custom = Lowest()
    runner = _runner(tmp_path, custom_hooks=[custom, {"type": "EMAHook", "priority": "ABOVE_NORMAL"}])
    hooks = runner.hooks
    assert isinstance(hooks, HookList) and len(hooks) == len(list(hooks)) == 8
    types = [type(hook) for hook in hooks]
    assert types[:2] == [RuntimeInfoHook, type(hooks[1])] and type(hooks[1]).__name__ == "EMAHook"
    assert types[2:] == [IterTimerHook, DistSamplerSeedHook, LoggerHook, ParamSchedulerHook, CheckpointHook, Lowest]
    assert hooks[-1] is custom and custom in hooks and hooks.index(custom) == 7
    priorities = [get_priority(hook.priority) for hook in hooks]
    assert priorities == sorted(priorities)
    assert hooks[1].priority == "ABOVE_NORMAL"  # a config's priority is set on the hook
    assert isinstance(hooks[2:4], list) and all(isinstance(h, Hook) for h in hooks)


def test_hooks_view_follows_registrations_and_refuses_edits(tmp_path):
    runner = _runner(tmp_path)
    view = runner.hooks
    before = len(view)
    plain = Plain()
    runner.register_hook(plain, priority=0)
    assert len(view) == before + 1 and view[0] is plain and plain.priority == 0
    for edit in (lambda: view.append(Plain()), lambda: view.pop(), lambda: view.__setitem__(0, Plain())):
        with pytest.raises(TypeError, match=r"read-only view.*register_hook"):
            edit()
    with pytest.raises(AttributeError):
        runner.hooks = []
    runner.train()
    assert plain.calls == 4  # dispatch still reaches a hook registered after construction


def test_assigning_private_hooks_replaces_the_registrations(tmp_path):
    runner = _runner(tmp_path)
    runner._hooks = []
    assert len(runner.hooks) == 0
    lowest = Lowest()
    runner._hooks = [lowest]
    runner.register_hook({"type": "IterTimerHook"})
    assert [type(h) for h in runner.hooks] == [IterTimerHook, Lowest]
    runner.register_hook(RuntimeInfoHook())  # needed by the loops' message hub bookkeeping
    runner.train()
    assert lowest.epochs == [0, 1]


def test_register_hook_priorities_as_in_mmengine(tmp_path):
    runner = _runner(tmp_path)
    runner._hooks = []
    runner.register_hook({"type": "IterTimerHook", "priority": "BELOW_NORMAL"})
    runner.register_hook(RuntimeInfoHook())
    runner.register_hook({"type": "ParamSchedulerHook", "priority": "LOW"}, priority="VERY_LOW")
    runner.register_hook({"type": "LoggerHook"}, priority=90)  # ties keep registration order
    hooks = runner.hooks
    assert [type(h) for h in hooks] == [RuntimeInfoHook, IterTimerHook, ParamSchedulerHook, LoggerHook]
    assert [get_priority(h.priority) for h in hooks] == [10, 60, 90, 90]
    for bad in (["string"], "IterTimerHook", None, IterTimerHook):
        with pytest.raises(TypeError, match="hook should be an instance of Hook or dict"):
            runner.register_hook(bad)


def test_register_default_and_custom_hooks(tmp_path):
    runner = _runner(tmp_path)
    runner._hooks = []
    runner.register_default_hooks()
    names = [type(h).__name__ for h in runner.hooks]
    assert sorted(names) == [
        "CheckpointHook", "DistSamplerSeedHook", "IterTimerHook", "LoggerHook", "ParamSchedulerHook",
        "ProgressBarHook", "RuntimeInfoHook",
    ]
    assert names.index("DistSamplerSeedHook") == 2 and names[4:6] == ["ParamSchedulerHook", "CheckpointHook"]
    runner._hooks = []
    runner.register_default_hooks({"timer": None, "progress_bar": None, "lowest": {"type": Lowest}})
    assert [type(h) for h in runner.hooks][-1] is Lowest and IterTimerHook not in map(type, runner.hooks)
    runner._hooks = []
    runner.register_hooks(default_hooks={"progress_bar": None}, custom_hooks=[{"type": Lowest}])
    assert len(runner.hooks) == 7 and isinstance(runner.hooks[6], Lowest)
    runner.register_custom_hooks([Plain()])
    assert len(runner.hooks) == 8


# ---------------------------------------------------------------------- build_*
def test_build_model_returns_modules_builds_configs_and_rejects_the_rest(tmp_path):
    runner = _runner(tmp_path)
    model = ToyModel()
    assert runner.build_model(model) is model
    built = runner.build_model({"type": "DigitsMLP", "hidden": 8})
    assert type(built).__name__ == "DigitsMLP"
    with pytest.raises(TypeError, match=r"model should be an nn\.Module or a model config dict"):
        runner.build_model("DigitsMLP")
    assert runner.wrap_model(None, built) is built  # not distributed: moved to the device only


def test_build_visualizer_and_log_processor(tmp_path):
    runner = _runner(tmp_path, experiment_name="exp")
    assert runner.build_visualizer(runner.visualizer) is runner.visualizer
    other = runner.build_visualizer({"type": "Visualizer", "name": "other_vis"})
    assert other.instance_name == "other_vis"
    default = runner.build_visualizer(None)
    assert default.instance_name == runner.experiment_name
    with pytest.raises(TypeError, match="visualizer should be"):
        runner.build_visualizer("invalid")
    processor = runner.build_log_processor({"window_size": 3})
    assert type(processor).__name__ == "LogProcessor" and processor.window_size == 3
    assert processor.by_epoch is True  # follows the epoch-based train loop
    assert runner.build_log_processor(processor) is processor
    with pytest.raises(TypeError, match="log_processor should be"):
        runner.build_log_processor("invalid")


def test_build_dataloader_takes_mmengine_seed_arguments(tmp_path):
    cfg = {"dataset": list(range(12)), "sampler": {"type": "DefaultSampler", "shuffle": True}, "batch_size": 3}
    loader = Runner.build_dataloader(cfg, seed=1234)  # a static method, as in MMEngine
    assert isinstance(loader, DataLoader) and isinstance(loader.sampler, DefaultSampler)
    assert loader.sampler.seed == 1234
    assert loader.worker_init_fn.func is worker_init_fn and loader.worker_init_fn.keywords["seed"] == 1234
    assert Runner.build_dataloader(cfg, seed=1234, diff_rank_seed=True).sampler.seed != 1234
    assert Runner.build_dataloader(loader) is loader
    unseeded = _runner(tmp_path).build_dataloader(cfg)
    assert unseeded.worker_init_fn.keywords["seed"] is None
    partial = Runner.build_dataloader(dict(cfg, worker_init_fn={"type": "torch.manual_seed"}))
    assert isinstance(partial.worker_init_fn, functools.partial)


def test_loops_build_their_dataloaders_with_the_run_seed(tmp_path):
    runner = _runner(
        tmp_path,
        train_dataloader={"dataset": {"type": "DigitsDataset", "split": "val"}, "batch_size": 4},
        randomness={"seed": 77},
    )
    assert runner.train_dataloader.sampler.seed == 77


# ---------------------------------------------------------------------- lazy optimizer
def test_optim_wrapper_and_schedulers_are_configs_until_train(tmp_path):
    cfg = {"optimizer": {"type": "SGD", "lr": 0.1}}
    runner = _runner(
        tmp_path,
        optim_wrapper=cfg,
        param_scheduler={"type": "MultiStepLR", "milestones": [1]},
        auto_scale_lr={"enable": True, "base_batch_size": 8},
    )
    assert runner.optim_wrapper == cfg and isinstance(runner.param_schedulers, dict)
    runner.val_loop  # noqa: B018 - nothing else builds the optimizer
    assert isinstance(runner.optim_wrapper, dict)
    runner.train()
    assert isinstance(runner.optim_wrapper, OptimWrapper)
    assert [type(s).__name__ for s in runner.param_schedulers] == ["MultiStepLR"]
    wrapper = runner.optim_wrapper
    lr = wrapper.param_groups[0]["lr"]
    assert lr == pytest.approx(0.1 * 4 / 8 * 0.1)  # scaled by batch 4 / base 8, then one milestone
    runner.build_training_components()  # again: nothing rebuilt, nothing scaled twice
    assert runner.optim_wrapper is wrapper and wrapper.param_groups[0]["lr"] == lr


def test_a_checkpoint_saved_before_train_has_no_optimizer_and_resume_builds_it(tmp_path):
    first = _runner(tmp_path / "a", param_scheduler={"type": "MultiStepLR", "milestones": [1]})
    first.train()
    path = first.checkpointer.last_checkpoint() if hasattr(first.checkpointer, "last_checkpoint") else None
    path = path or str(tmp_path / "a" / "epoch_2.pth")
    fresh = _runner(tmp_path / "b", param_scheduler={"type": "MultiStepLR", "milestones": [1]})
    saved = fresh.save_checkpoint(str(tmp_path / "b"), "before.pth")
    assert "optimizer" not in torch.load(saved, weights_only=False)
    assert isinstance(fresh.optim_wrapper, dict)
    fresh.resume(path)
    assert isinstance(fresh.optim_wrapper, OptimWrapper)
    assert fresh.optim_wrapper.param_groups[0]["lr"] == pytest.approx(first.optim_wrapper.param_groups[0]["lr"])
    assert [type(s).__name__ for s in fresh.param_schedulers] == ["MultiStepLR"]
    assert fresh.param_schedulers[0].last_step == first.param_schedulers[0].last_step


def test_build_logger_message_hub_and_hooks_info(tmp_path):
    import logging

    from torchkiln.logging import MessageHub, MMLogger
    from torchkiln.runner import Runner

    runner = Runner(model={"type": "DigitsMLP"}, work_dir=str(tmp_path), experiment_name="api_info")
    logger = runner.build_logger(log_level="DEBUG")
    assert isinstance(logger, MMLogger) and isinstance(logger, logging.Logger)
    assert logger is MMLogger.get_instance("api_info")
    assert runner.build_message_hub() is MessageHub.get_instance("api_info")
    other = runner.build_message_hub({"name": "api_info_other"})
    assert other.instance_name == "api_info_other"
    with pytest.raises(TypeError, match="message_hub should be"):
        runner.build_message_hub("hub")
    info = runner.get_hooks_info()
    assert "before_train:" in info and "RuntimeInfoHook" in info and "(VERY_HIGH" in info
