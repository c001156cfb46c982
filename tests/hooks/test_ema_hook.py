"""EMAHook: averaging, swapping for evaluation, checkpoint layout and exact restore."""

from __future__ import annotations

import pytest
import torch

from torchkiln.errors import ConfigError
from torchkiln.hooks.ema_hook import EMAHook
from torchkiln.runner.model_state import load_model_state


def _model(value: float) -> torch.nn.Module:
    model = torch.nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.fill_(value)
        model.bias.fill_(value)
    return model


def _set(model: torch.nn.Module, value: float) -> None:
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(value)


def _value(module: torch.nn.Module) -> float:
    return float(module.weight.detach()[0, 0])


def _step(runner, hook, value):
    """One 'training iteration': the optimizer set the weights to ``value``."""
    _set(runner.model, value)
    hook.after_train_iter(runner, runner.iter, None, None)
    runner.train_loop.iter += 1


def test_update_follows_the_closed_form(make_runner):
    runner = make_runner(model=_model(0.0))
    hook = EMAHook(momentum=0.5)
    hook.before_run(runner)
    hook.before_train(runner)
    _step(runner, hook, 4.0)  # first update copies
    assert _value(hook.ema_model.module) == 4.0
    _step(runner, hook, 0.0)  # 4 + 0.5 * (0 - 4)
    assert _value(hook.ema_model.module) == 2.0
    _step(runner, hook, 2.0)
    assert _value(hook.ema_model.module) == 2.0
    assert int(hook.ema_model.steps) == 3


def test_begin_iter_copies_until_it_starts(make_runner):
    runner = make_runner(model=_model(0.0))
    hook = EMAHook(momentum=0.5, begin_iter=2)
    hook.before_run(runner)
    hook.before_train(runner)
    _step(runner, hook, 8.0)  # iteration 1: before the start, copy
    assert _value(hook.ema_model.module) == 8.0 and int(hook.ema_model.steps) == 0
    _step(runner, hook, 4.0)  # iteration 2: starts (its first update copies)
    _step(runner, hook, 0.0)
    assert _value(hook.ema_model.module) == 2.0


def test_swap_for_validation_and_test_without_copies(make_runner):
    runner = make_runner(model=_model(0.0))
    hook = EMAHook(momentum=0.5)
    hook.before_run(runner)
    _step(runner, hook, 4.0)
    _step(runner, hook, 0.0)  # model 0, average 2
    model_ptr = runner.model.weight.data_ptr()
    ema_ptr = hook.ema_model.module.weight.data_ptr()
    for before, after in (("before_val_epoch", "after_val_epoch"), ("before_test_epoch", "after_test_epoch")):
        getattr(hook, before)(runner)
        assert _value(runner.model) == 2.0 and _value(hook.ema_model.module) == 0.0
        assert runner.model.weight.data_ptr() == ema_ptr  # storage exchanged, not copied
        assert isinstance(runner.model.weight, torch.nn.Parameter) and runner.model.weight.requires_grad
        getattr(hook, after)(runner, {})
        assert _value(runner.model) == 0.0 and _value(hook.ema_model.module) == 2.0
        assert runner.model.weight.data_ptr() == model_ptr
    # Averaging still works on the right tensors after the swaps.
    _step(runner, hook, 0.0)
    assert _value(hook.ema_model.module) == 1.0


def test_checkpoint_layout_and_exact_resume(make_runner):
    runner = make_runner(model=_model(0.0))
    hook = EMAHook(momentum=0.5)
    runner.hooks = [hook]
    hook.before_run(runner)
    for value in (4.0, 0.0, 1.0):
        _step(runner, hook, value)  # average: 4, 2, 1.5; model 1
    path = runner.save_checkpoint(runner.work_dir, "epoch_1.pth")
    checkpoint = torch.load(path, weights_only=True)
    assert checkpoint["state_dict"]["weight"][0, 0].item() == 1.5  # the average
    assert checkpoint["ema_state_dict"]["module.weight"][0, 0].item() == 1.0  # the source
    assert int(checkpoint["ema_state_dict"]["steps"]) == 3

    # Resume into a fresh model and hook, loading as the runner does: weights first, then hooks.
    resumed = make_runner(model=_model(9.0))
    resumed._resume = True
    hook2 = EMAHook(momentum=0.5)
    hook2.before_run(resumed)
    load_model_state(resumed.model, checkpoint["state_dict"])
    hook2.after_load_checkpoint(resumed, checkpoint)
    assert _value(resumed.model) == 1.0
    assert _value(hook2.ema_model.module) == 1.5
    assert int(hook2.ema_model.steps) == 3
    # Both continue exactly like the uninterrupted run.
    _step(runner, hook, 3.0)
    _step(resumed, hook2, 3.0)
    assert _value(hook2.ema_model.module) == _value(hook.ema_model.module) == 2.25


def test_load_from_without_resume_starts_model_and_average_from_the_published_weights(
    make_runner,
):
    runner = make_runner(model=_model(0.0))
    hook = EMAHook(momentum=0.5)
    runner.hooks = [hook]
    hook.before_run(runner)
    for value in (4.0, 0.0, 1.0):
        _step(runner, hook, value)  # average 1.5, model 1
    checkpoint = torch.load(
        runner.save_checkpoint(runner.work_dir, "epoch_1.pth"), weights_only=True
    )

    # load_from: the runner loads state_dict (the average) into the model, then the hook runs.
    loaded = make_runner(model=_model(9.0))
    hook2 = EMAHook(momentum=0.5)
    hook2.before_run(loaded)
    load_model_state(loaded.model, checkpoint["state_dict"])
    hook2.after_load_checkpoint(loaded, checkpoint)
    assert _value(loaded.model) == 1.5
    assert _value(hook2.ema_model.module) == 1.5
    # The checkpoint is left as it was (no swap back).
    assert checkpoint["state_dict"]["weight"][0, 0].item() == 1.5
    assert checkpoint["ema_state_dict"]["module.weight"][0, 0].item() == 1.0
    assert not loaded.logger.messages("warning")


def test_begin_arguments_are_checked_with_mmengine_exception_types():
    with pytest.raises(AssertionError, match="`begin_iter` must"):
        EMAHook(begin_iter=-1)
    with pytest.raises(AssertionError, match="`begin_epoch` must"):
        EMAHook(begin_epoch=-1)
    with pytest.raises(AssertionError, match="`begin_iter` and `begin_epoch`"):
        EMAHook(begin_iter=1, begin_epoch=1)
    with pytest.raises(ConfigError):
        EMAHook(begin_iter=-1)


def test_checkpoint_while_swapped_has_the_same_layout(make_runner):
    runner = make_runner(model=_model(0.0))
    hook = EMAHook(momentum=0.5)
    runner.hooks = [hook]
    hook.before_run(runner)
    _step(runner, hook, 4.0)
    _step(runner, hook, 0.0)
    hook.before_val_epoch(runner)
    runner.save_checkpoint(runner.work_dir, "during_val.pth")
    hook.after_val_epoch(runner, {})
    checkpoint = runner.saved[-1]["checkpoint"]
    assert checkpoint["state_dict"]["weight"][0, 0].item() == 2.0
    assert checkpoint["ema_state_dict"]["module.weight"][0, 0].item() == 0.0


def test_plain_checkpoint_starts_the_average_from_it(make_runner):
    runner = make_runner(model=_model(0.0))
    runner._resume = True  # resuming from a checkpoint without an average: warned
    hook = EMAHook(momentum=0.5)
    hook.before_run(runner)
    plain = {"state_dict": {k: v.clone() for k, v in _model(5.0).state_dict().items()}}
    load_model_state(runner.model, plain["state_dict"])
    hook.after_load_checkpoint(runner, plain)
    assert _value(hook.ema_model.module) == 5.0 and _value(runner.model) == 5.0
    assert any("no `ema_state_dict`" in m for m in runner.logger.messages("warning"))


def test_wrapped_model_is_unwrapped(make_runner):
    inner = _model(1.0)
    runner = make_runner(model=torch.nn.DataParallel(inner))
    hook = EMAHook()
    hook.before_run(runner)
    assert hook.src_model is inner
    assert list(hook.ema_model.module.state_dict()) == ["weight", "bias"]


def test_other_average_types(make_runner):
    runner = make_runner(model=_model(0.0))
    hook = EMAHook(ema_type="MomentumAnnealingEMA", momentum=0.01, gamma=1)
    hook.before_run(runner)
    _step(runner, hook, 4.0)
    _step(runner, hook, 0.0)  # momentum max(0.01, 1 / (1 + 1)) = 0.5
    assert _value(hook.ema_model.module) == 2.0


def test_configuration_errors(make_runner):
    with pytest.raises(ConfigError, match="not both"):
        EMAHook(begin_iter=1, begin_epoch=1)
    runner = make_runner(max_epochs=2)
    hook = EMAHook(begin_epoch=3)
    hook.before_run(runner)
    with pytest.raises(ConfigError, match="begin_epoch"):
        hook.before_train(runner)


def test_each_evaluation_mount_point_swaps_on_its_own(make_runner):
    """As in MMEngine, ``after_val_epoch`` called by itself exchanges the weights too."""
    runner = make_runner(model=_model(1.0))
    hook = EMAHook(momentum=0.5)
    hook.before_run(runner)
    _set(hook.ema_model.module, 5.0)
    hook.after_val_epoch(runner)
    assert _value(runner.model) == 5.0 and _value(hook.ema_model.module) == 1.0
    hook.before_test_epoch(runner)
    assert _value(runner.model) == 1.0 and _value(hook.ema_model.module) == 5.0


def test_before_train_reads_the_train_loop_limits(make_runner):
    """The start is checked against the train loop's own limits (built if need be)."""
    runner = make_runner(max_epochs=2, iters_per_epoch=2)
    EMAHook(begin_epoch=2).before_train(runner)
    with pytest.raises(AssertionError, match="self.begin_epoch"):
        EMAHook(begin_epoch=3).before_train(runner)
