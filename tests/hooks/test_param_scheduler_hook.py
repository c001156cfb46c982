"""ParamSchedulerHook: by-iteration vs by-epoch stepping, plateau schedulers, containers."""

from __future__ import annotations

import types

import pytest

from torchkiln.errors import ConfigError
from torchkiln.hooks.param_scheduler_hook import ParamSchedulerHook


class Recorder:
    """A scheduler that records its step calls."""

    def __init__(self, by_epoch: bool, need_val_args: bool = False) -> None:
        self.by_epoch = by_epoch
        self.need_val_args = need_val_args
        self.calls: list[object] = []

    def step(self, metrics=None):
        self.calls.append(metrics)


def test_iteration_and_epoch_schedulers(make_runner, drive):
    runner = make_runner(max_epochs=2, iters_per_epoch=3)
    by_iter, by_epoch = Recorder(False), Recorder(True)
    runner.param_schedulers = [by_iter, by_epoch]
    hook = ParamSchedulerHook()
    for _ in range(2):
        drive.train_epoch(runner, [hook])
    assert len(by_iter.calls) == 6 and len(by_epoch.calls) == 2
    assert by_iter.calls == [None] * 6


def test_dict_of_lists_and_none(make_runner, drive):
    runner = make_runner(max_epochs=1, iters_per_epoch=2)
    gen, disc = Recorder(False), Recorder(True)
    runner.param_schedulers = {"generator": [gen], "discriminator": [disc]}
    drive.train_epoch(runner, [ParamSchedulerHook()])
    assert len(gen.calls) == 2 and len(disc.calls) == 1
    runner.param_schedulers = None
    drive.train_epoch(runner, [ParamSchedulerHook()])  # nothing to step, no error


def test_plateau_schedulers_get_metrics_after_validation(make_runner, drive):
    runner = make_runner(max_epochs=1, iters_per_epoch=2)
    counted = Recorder(True, need_val_args=True)  # torchkiln/MMEngine protocol
    counted_iter = Recorder(False, need_val_args=True)
    plain = Recorder(True)
    runner.param_schedulers = [counted, counted_iter, plain]
    hook = ParamSchedulerHook()
    drive.train_epoch(runner, [hook])
    drive.val(runner, [hook], {"loss": 0.3})
    assert counted.calls == [None, {"loss": 0.3}]  # counted after the epoch, acts after val
    assert counted_iter.calls == [None, None, {"loss": 0.3}]  # counted after each iteration
    assert plain.calls == [None]  # plain schedulers ignore validation


def test_a_plateau_name_alone_does_not_make_a_metric_scheduler(make_runner, drive):
    """Only need_val_args decides; the name-based branch passed the whole metrics dict to
    torch's ReduceLROnPlateau.step, which needs one number (TypeError)."""

    class ReduceLROnPlateauLike(Recorder):
        pass

    runner = make_runner(max_epochs=1, iters_per_epoch=2)
    thing = ReduceLROnPlateauLike(True)
    runner.param_schedulers = [thing]
    hook = ParamSchedulerHook()
    drive.train_epoch(runner, [hook])
    drive.val(runner, [hook], {"loss": 0.3})
    assert thing.calls == [None]


def test_schedulers_are_sorted_once_and_again_when_replaced(make_runner, drive, monkeypatch):
    from torchkiln.hooks import param_scheduler_hook as module

    walks = []
    real = module.iter_schedulers
    # count the walks of the whole list (the walk recurses into each item through the same name)
    monkeypatch.setattr(module, "iter_schedulers", lambda s: (isinstance(s, list) and walks.append(1)) or real(s))
    runner = make_runner(max_epochs=2, iters_per_epoch=3)
    first = Recorder(False)
    runner.param_schedulers = [first]
    hook = ParamSchedulerHook()
    for _ in range(2):
        drive.train_epoch(runner, [hook])
    assert len(first.calls) == 6 and len(walks) == 1  # not once per iteration
    second = Recorder(False)
    runner.param_schedulers = [second]  # replaced: sorted again
    drive.train_epoch(runner, [hook])
    runner.param_schedulers.append(Recorder(True))  # grown in place: sorted again
    drive.train_epoch(runner, [hook])
    assert len(second.calls) == 6 and len(walks) == 3
    assert runner.param_schedulers[1].calls == [None]


def test_unbuilt_configs_are_skipped_and_junk_rejected(make_runner):
    runner = make_runner()
    runner.param_schedulers = [{"type": "MultiStepLR", "milestones": [1]}]
    ParamSchedulerHook().after_val_epoch(runner, {"acc": 1.0})
    runner.param_schedulers = ["MultiStepLR"]
    with pytest.raises(ConfigError, match="param_schedulers"):
        ParamSchedulerHook().after_train_epoch(runner)


def test_a_single_scheduler_outside_a_list_is_a_type_error(make_runner):
    runner = make_runner()
    runner.param_schedulers = Recorder(by_epoch=False)
    for call in (
        lambda hook: hook.after_train_iter(runner, 0),
        lambda hook: hook.after_train_epoch(runner),
    ):
        with pytest.raises(TypeError, match="should be list of ParamScheduler"):
            call(ParamSchedulerHook())
    assert runner.param_schedulers.calls == []


def test_with_torchkiln_schedulers(make_runner, drive):
    from torchkiln.registry import PARAM_SCHEDULERS

    # Any object with param_groups will do (a real torch optimizer is slow to create first).
    optimizer = types.SimpleNamespace(param_groups=[{"lr": 1.0}])
    step_lr = PARAM_SCHEDULERS.build(
        {"type": "MultiStepLR", "optimizer": optimizer, "milestones": [2], "gamma": 0.1, "by_epoch": True}
    )
    runner = make_runner(max_epochs=3, iters_per_epoch=2)
    runner.param_schedulers = [step_lr]
    hook = ParamSchedulerHook()
    lrs = []
    for _ in range(3):
        drive.train_epoch(runner, [hook])
        lrs.append(optimizer.param_groups[0]["lr"])
    assert lrs == pytest.approx([1.0, 0.1, 0.1])
