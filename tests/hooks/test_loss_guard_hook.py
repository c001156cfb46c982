"""NonFiniteLossHook: raise at the check (not before), no host sync between checks, skip mode."""

from __future__ import annotations

import types

import pytest
import torch

from torchkiln.errors import ConfigError
from torchkiln.hooks.loss_guard_hook import NonFiniteLossError, NonFiniteLossHook
from torchkiln.registry import HOOKS


def _outputs(bad_iters, key="loss_cls"):
    def make(runner):
        value = float("nan") if runner.iter + 1 in bad_iters else 1.0
        return {"loss": torch.tensor(value) + 0.0, key: torch.tensor(value), "acc": torch.tensor(float("nan"))}

    return make


def _run_iters(runner, hook, outputs, n):
    for _ in range(n):
        hook.after_train_iter(runner, runner.iter, None, outputs(runner))
        runner.train_loop.iter += 1


def test_error_is_raised_at_the_check_not_before(make_runner):
    runner = make_runner(max_epochs=1, iters_per_epoch=10)
    hook = NonFiniteLossHook(interval=5)
    hook.before_train(runner)
    outputs = _outputs({3})
    _run_iters(runner, hook, outputs, 4)  # the NaN at iteration 3 is only recorded
    with pytest.raises(NonFiniteLossError) as info:
        _run_iters(runner, hook, outputs, 1)
    text = str(info.value)
    assert "iterations 1-5" in text
    assert "'loss'" in text and "'loss_cls'" in text and "acc" not in text.split("\n")[0]
    assert "learning rate" in text and "clip_grad" in text and "action='skip'" in text
    assert isinstance(info.value, RuntimeError)


def test_finite_losses_never_sync_between_checks(make_runner, monkeypatch):
    runner = make_runner(max_epochs=1, iters_per_epoch=12)
    hook = NonFiniteLossHook(interval=4)
    hook.before_train(runner)
    syncs = []
    for name in ("item", "tolist", "__bool__", "__float__", "__int__", "cpu", "numpy"):
        original = getattr(torch.Tensor, name)

        def counting(self, *args, _original=original, _name=name, **kwargs):
            syncs.append((runner.iter + 1, _name))
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counting)
    outputs = _outputs(set())
    _run_iters(runner, hook, outputs, 12)
    monkeypatch.undo()
    # One read per check (iterations 4, 8, 12), none in between.
    assert syncs == [(4, "tolist"), (8, "tolist"), (12, "tolist")]


def test_end_of_epoch_check(make_runner, drive):
    runner = make_runner(max_epochs=2, iters_per_epoch=4)
    hook = NonFiniteLossHook(interval=50)
    hook.before_train(runner)
    drive.train_epoch(runner, [hook], outputs=_outputs(set()))
    with pytest.raises(NonFiniteLossError, match="iterations 5-8"):
        drive.train_epoch(runner, [hook], outputs=_outputs({6}))


def test_changing_loss_keys_within_a_window(make_runner):
    runner = make_runner(max_epochs=1, iters_per_epoch=4)
    hook = NonFiniteLossHook(interval=4)
    hook.before_train(runner)
    _run_iters(runner, hook, _outputs({1}, key="loss_a"), 1)
    _run_iters(runner, hook, _outputs(set(), key="loss_b"), 2)
    with pytest.raises(NonFiniteLossError) as info:
        _run_iters(runner, hook, _outputs(set(), key="loss_b"), 1)
    assert "'loss_a'" in str(info.value) and "'loss_b'" not in str(info.value)


def test_non_scalar_losses(make_runner):
    runner = make_runner(max_epochs=1, iters_per_epoch=2)
    hook = NonFiniteLossHook(interval=2)
    hook.before_train(runner)
    out = {"loss": torch.tensor(1.0), "loss_vec": torch.tensor([1.0, float("inf")])}
    hook.after_train_iter(runner, 0, None, out)
    runner.train_loop.iter += 1
    with pytest.raises(NonFiniteLossError, match="loss_vec"):
        hook.after_train_iter(runner, 1, None, {"loss": torch.tensor(1.0), "loss_vec": torch.ones(2)})


class FakeWrapper:
    def __init__(self) -> None:
        self.skip_nonfinite = False
        self.skipped_steps = 0


def test_skip_mode_turns_skipping_on_and_reports(make_runner):
    runner = make_runner(max_epochs=1, iters_per_epoch=6)
    runner.optim_wrapper = FakeWrapper()
    hook = NonFiniteLossHook(action="skip", interval=3)
    hook.before_train(runner)
    assert runner.optim_wrapper.skip_nonfinite is True
    runner.optim_wrapper.skipped_steps = 2
    _run_iters(runner, hook, _outputs({1, 2}), 3)
    warnings = runner.logger.messages("warning")
    assert len(warnings) == 1 and "skipped 2 update(s)" in warnings[0]
    assert runner.message_hub.get_info("skipped_steps") == 2
    _run_iters(runner, hook, _outputs(set()), 3)  # no new skips, no new warning
    assert len(runner.logger.messages("warning")) == 1


def test_skip_mode_with_a_wrapper_dict_and_unsupported_wrappers(make_runner):
    runner = make_runner()
    gen, disc = FakeWrapper(), FakeWrapper()
    runner.optim_wrapper = types.SimpleNamespace(values=lambda: [gen, disc], items=lambda: [("g", gen), ("d", disc)])
    NonFiniteLossHook(action="skip").before_train(runner)
    assert gen.skip_nonfinite and disc.skip_nonfinite
    runner.optim_wrapper = types.SimpleNamespace(update_params=lambda loss: None)
    with pytest.raises(ConfigError, match="skip_nonfinite"):
        NonFiniteLossHook(action="skip").before_train(runner)


def test_mmengine_name_and_arguments():
    hook = HOOKS.build({"type": "CheckInvalidLossHook", "interval": 10})
    assert isinstance(hook, NonFiniteLossHook) and hook.interval == 10 and hook.action == "error"
    with pytest.raises(ConfigError, match="action"):
        NonFiniteLossHook(action="ignore")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_no_device_sync_on_cuda(make_runner):
    runner = make_runner(max_epochs=1, iters_per_epoch=8)
    hook = NonFiniteLossHook(interval=8)
    hook.before_train(runner)

    def outputs(_runner):
        return {"loss": torch.ones((), device="cuda"), "loss_x": torch.ones((), device="cuda")}

    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        _run_iters(runner, hook, outputs, 7)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    _run_iters(runner, hook, outputs, 1)  # the check itself reads the flag once
