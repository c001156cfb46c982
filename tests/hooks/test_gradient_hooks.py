"""after_backward / before_optimizer_step, called by the optimizer wrapper, and GradientMonitorHook."""

from __future__ import annotations

import math

import pytest
import torch
from kiln_toys import ToyModel, make_loader
from structlog.testing import capture_logs

from torchkiln import Hook, Runner


class Recorder(Hook):
    """Notes each call and the gradient it sees at before_optimizer_step."""

    def __init__(self):
        self.calls: list[str] = []
        self.grads: list[torch.Tensor] = []

    def after_backward(self, runner, optim_wrapper):
        self.calls.append("after_backward")

    def before_optimizer_step(self, runner, optim_wrapper):
        self.calls.append("before_optimizer_step")
        self.grads.append(runner.unwrapped_model.linear.weight.grad.detach().clone())


def _runner(tmp_path, hooks=(), optim=None, iters=4, **kw):
    torch.manual_seed(0)
    return Runner(
        model=ToyModel(),
        work_dir=str(tmp_path),
        train_dataloader=make_loader(4 * iters, 4),
        train_cfg=dict(by_epoch=True, max_epochs=1),
        optim_wrapper=optim or dict(optimizer=dict(type="SGD", lr=0.1)),
        default_hooks=dict(checkpoint=None, progress_bar=None),
        custom_hooks=list(hooks),
        randomness=dict(seed=0),
        experiment_name=f"grad_{tmp_path.name}",  # a message hub of its own
        **kw,
    )


def test_called_once_per_real_step_with_accumulation(tmp_path):
    recorder = Recorder()
    optim = dict(optimizer=dict(type="SGD", lr=0.1), accumulative_counts=2)
    _runner(tmp_path, [recorder], optim).train()
    assert recorder.calls == ["after_backward", "after_backward", "before_optimizer_step"] * 2


def test_amp_float16_gradients_are_unscaled(tmp_path):
    plain = Recorder()
    _runner(tmp_path / "fp32", [plain]).train()
    amp = Recorder()
    optim = dict(type="AmpOptimWrapper", dtype="float16", optimizer=dict(type="SGD", lr=0.1))
    runner = _runner(tmp_path / "fp16", [amp], optim)
    runner.train()
    assert runner.optim_wrapper.loss_scaler.get_scale() > 1000  # the loss really was scaled
    # The first step's gradients equal full precision's to float16 accuracy, not x65536.
    assert torch.allclose(amp.grads[0], plain.grads[0], rtol=2e-2, atol=2e-3)


def test_no_observer_and_no_cost_without_such_hooks(tmp_path):
    runner = _runner(tmp_path)
    runner.train()
    assert runner.optim_wrapper._observer is None and runner.optim_wrapper._direct


class BreakGradient(Hook):
    priority = "HIGHEST"

    def after_backward(self, runner, optim_wrapper):
        if runner.iter == 2:
            runner.unwrapped_model.linear.bias.grad[0] = float("inf")


def test_gradient_monitor_logs_norms_and_names_a_non_finite_layer(tmp_path):
    runner = _runner(tmp_path, [{"type": "GradientMonitorHook", "interval": 1}, BreakGradient()])
    with capture_logs() as logs:
        runner.train()
    monitor = next(h for h in runner.hook_host.get_plugins() if type(h).__name__ == "GradientMonitorHook")
    assert monitor.steps == 4
    assert monitor.first_nonfinite == "linear.bias"
    warnings = [e["event"] for e in logs if e["log_level"] == "warning"]
    assert any("non-finite gradient at optimizer step 3: first in layer linear (parameter linear.bias)" in w for w in warnings)
    history = runner.message_hub.get_scalar("train/grad_norm/global")
    assert history is not None
    layer = runner.message_hub.get_scalar("train/grad_norm/linear")
    assert layer is not None and math.isfinite(float(layer.current()))


def test_gradient_monitor_interval_and_global_norm(tmp_path):
    recorder = Recorder()
    runner = _runner(tmp_path, [{"type": "GradientMonitorHook", "interval": 2, "per_layer": False}, recorder])
    runner.train()
    monitor = next(h for h in runner.hook_host.get_plugins() if type(h).__name__ == "GradientMonitorHook")
    assert list(monitor.last_norms) == ["global"]
    # Logged at steps 2 and 4 only: two values in the history.
    assert monitor.steps == 4 and monitor.last_norms["global"] > 0
    assert runner.message_hub.get_scalar("train/grad_norm/global").count == 2


@pytest.mark.parametrize("bad", [{"interval": 0}, {"max_layers": 0}])
def test_gradient_monitor_arguments(bad):
    from torchkiln.errors import ConfigError
    from torchkiln.hooks import GradientMonitorHook

    with pytest.raises(ConfigError):
        GradientMonitorHook(**bad)
