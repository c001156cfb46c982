"""OptimWrapper: accumulation, the last partial window, clipping, DDP contexts, state."""

from __future__ import annotations

import contextlib
import logging
import unittest

import pytest
import torch
from torch import nn

from torchkiln.errors import ConfigError
from torchkiln.optim import OptimWrapper
from torchkiln.optim.optimizer import optim_wrapper as optim_wrapper_module

LR = 0.1


def make_model(seed=0):
    torch.manual_seed(seed)
    return nn.Linear(3, 1)


def batches(n, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return [(torch.randn(4, 3, generator=generator), torch.randn(4, 1, generator=generator)) for _ in range(n)]


def loss_of(model, batch):
    x, y = batch
    return ((model(x) - y) ** 2).mean()


def reference_params(windows, data):
    """Plain SGD where each window's update uses the mean loss of its batches."""
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    for window in windows:
        opt.zero_grad()
        loss = sum(loss_of(model, data[i]) for i in window) / len(window)
        loss.backward()
        opt.step()
    return [p.detach().clone() for p in model.parameters()]


def train(wrapper, model, data):
    updates = []
    for i, batch in enumerate(data):
        wrapper.update_params(loss_of(model, batch))
        if wrapper.should_update():
            updates.append(i)
    return updates


def test_accumulation_uses_the_window_mean():
    data = batches(4)
    model = make_model()
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=LR), accumulative_counts=2)
    updates = train(wrapper, model, data)
    assert updates == [1, 3]
    for got, want in zip(model.parameters(), reference_params([[0, 1], [2, 3]], data)):
        torch.testing.assert_close(got.detach(), want)


def test_last_partial_window_is_divided_by_the_remainder():
    data = batches(5)
    model = make_model()
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=LR), accumulative_counts=2)
    wrapper.initialize_count_status(model, init_counts=0, max_counts=5)
    updates = train(wrapper, model, data)
    assert updates == [1, 3, 4]  # the fifth iteration closes a window of one
    for got, want in zip(model.parameters(), reference_params([[0, 1], [2, 3], [4]], data)):
        torch.testing.assert_close(got.detach(), want)


def test_scale_loss_factors():
    model = make_model()
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=LR), accumulative_counts=4)
    loss = torch.tensor(8.0)
    assert wrapper.scale_loss(loss).item() == 2.0  # before initialize_count_status: full windows
    wrapper.initialize_count_status(model, init_counts=0, max_counts=10)
    factors = []
    for _ in range(10):
        factors.append(8.0 / wrapper.scale_loss(loss).item())
        wrapper.backward(torch.zeros((), requires_grad=True))
    # iterations 0-7 are in full windows of 4, iterations 8-9 in the remainder window of 2
    assert factors == [4.0] * 8 + [2.0] * 2
    assert wrapper.inner_count == 10


def test_no_accumulation_passes_the_loss_through():
    model = make_model()
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=LR))
    loss = torch.tensor(3.0)
    assert wrapper.scale_loss(loss) is loss
    assert wrapper.should_sync()


class FakeDDP(nn.Module):
    """Has ``no_sync`` like DistributedDataParallel, and records when it was entered."""

    def __init__(self):
        super().__init__()
        self.module = nn.Linear(2, 1)
        self.entered = 0

    @contextlib.contextmanager
    def no_sync(self):
        self.entered += 1
        yield


def test_optim_context_skips_all_reduce_inside_a_window():
    model = FakeDDP()
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=LR), accumulative_counts=3)
    wrapper.initialize_count_status(model, init_counts=0, max_counts=7)
    synced = []
    for _ in range(7):
        before = model.entered
        with wrapper.optim_context(model):
            loss = model.module(torch.ones(1, 2)).sum()
        wrapper.update_params(loss)
        synced.append(model.entered == before)
    # the backward passes closing windows (iterations 2, 5 and the last one, 6) all-reduce
    assert synced == [False, False, True, False, False, True, True]


def test_optim_context_without_no_sync():
    model = make_model()
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=LR), accumulative_counts=2)
    with wrapper.optim_context(model):
        pass


def test_update_params_forwards_kwargs():
    model = make_model()
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=LR))
    wrapper.update_params(loss_of(model, batches(1)[0]), zero_kwargs={"set_to_none": False})
    assert all(p.grad is not None and torch.count_nonzero(p.grad) == 0 for p in model.parameters())
    wrapper.update_params(loss_of(model, batches(1)[0]))
    assert all(p.grad is None for p in model.parameters())


# ---------------------------------------------------------------------------- clipping
def _with_grad(values):
    param = nn.Parameter(torch.zeros(len(values)))
    param.grad = torch.tensor(values)
    return param


class RecordingHub:
    def __init__(self):
        self.scalars = []

    def update_scalar(self, key, value, count=1):
        self.scalars.append((key, value))


def test_clip_by_norm_records_a_detached_norm(monkeypatch):
    hub = RecordingHub()

    class HubClass:
        @staticmethod
        def get_current_instance():
            return hub

    monkeypatch.setattr(optim_wrapper_module, "_HUB_CLASS", HubClass)
    param = _with_grad([3.0, 4.0])
    frozen = nn.Parameter(torch.zeros(2), requires_grad=False)
    wrapper = OptimWrapper(torch.optim.SGD([param, frozen], lr=1.0), clip_grad={"max_norm": 1.0})
    wrapper.step()
    # grad [3, 4] has norm 5: clipped to [0.6, 0.8], then SGD with lr 1 subtracts it
    torch.testing.assert_close(param.detach(), torch.tensor([-0.6, -0.8]), atol=1e-5, rtol=0)
    assert isinstance(wrapper.last_grad_norm, torch.Tensor)
    assert not wrapper.last_grad_norm.requires_grad
    assert wrapper.last_grad_norm.item() == pytest.approx(5.0)
    assert len(hub.scalars) == 1
    key, value = hub.scalars[0]
    assert key == "train/grad_norm" and isinstance(value, torch.Tensor) and value.item() == pytest.approx(5.0)


def test_clip_by_norm_without_message_hub(monkeypatch):
    monkeypatch.setattr(optim_wrapper_module, "_HUB_CLASS", False)
    param = _with_grad([0.0, 2.0])
    wrapper = OptimWrapper(torch.optim.SGD([param], lr=1.0), clip_grad={"type": "norm", "max_norm": 10, "norm_type": 1})
    wrapper.step()
    assert wrapper.last_grad_norm.item() == pytest.approx(2.0)
    torch.testing.assert_close(param.detach(), torch.tensor([0.0, -2.0]))


def test_clip_by_value():
    param = _with_grad([3.0, -4.0, 0.5])
    wrapper = OptimWrapper(torch.optim.SGD([param], lr=1.0), clip_grad={"type": "value", "clip_value": 1.0})
    wrapper.step()
    torch.testing.assert_close(param.detach(), torch.tensor([-1.0, 1.0, -0.5]))
    assert wrapper.last_grad_norm is None


def test_clip_with_no_gradients_is_a_no_op():
    param = nn.Parameter(torch.ones(2))
    wrapper = OptimWrapper(torch.optim.SGD([param], lr=1.0), clip_grad={"max_norm": 1.0})
    wrapper.step()
    assert wrapper.last_grad_norm is None


@pytest.mark.parametrize(
    ("clip_grad", "message"),
    [
        ({"type": "foo", "max_norm": 1}, "unknown clip_grad type 'foo'"),
        ({"norm_type": 2}, "needs 'max_norm'"),
        ({"type": "value"}, "needs 'clip_value'"),
        ({"max_nrom": 1.0}, "unexpected argument 'max_nrom'"),
        ([1.0], "should be a dict"),
    ],
)
def test_bad_clip_grad(clip_grad, message):
    param = nn.Parameter(torch.ones(2))
    with pytest.raises(ConfigError, match=message) as info:
        OptimWrapper(torch.optim.SGD([param], lr=1.0), clip_grad=clip_grad)
    if "max_nrom" in str(clip_grad):
        assert "did you mean 'max_norm'" in info.value.hint


def test_bad_arguments():
    param = nn.Parameter(torch.ones(2))
    with pytest.raises(ConfigError, match="accumulative_counts"):
        OptimWrapper(torch.optim.SGD([param], lr=1.0), accumulative_counts=0)
    with pytest.raises(ConfigError, match="needs a torch optimizer"):
        OptimWrapper({"type": "SGD"})


# ---------------------------------------------------------------------------- inspection and state
def test_lr_and_momentum():
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    sgd = torch.optim.SGD([{"params": model[0].parameters()}, {"params": model[1].parameters(), "lr": 0.5}],
                          lr=0.1, momentum=0.9)
    wrapper = OptimWrapper(sgd)
    # several groups: the optimizer's own lr is reported (and scheduled) as base_lr
    assert wrapper.get_lr() == {"base_lr": [0.1], "lr": [0.1, 0.5]}
    assert wrapper.get_momentum() == {"momentum": [0.9, 0.9]}
    assert wrapper.param_groups[:2] == sgd.param_groups
    assert wrapper.param_groups[2] is wrapper.base_param_settings
    assert wrapper.param_groups is wrapper.param_groups  # built once
    assert wrapper.base_param_settings["lr"] == 0.1 and wrapper.defaults["lr"] == 0.1
    single = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    assert single.base_param_settings is None and single.param_groups is single.optimizer.param_groups
    assert OptimWrapper(torch.optim.Adam(model.parameters(), betas=(0.8, 0.99))).get_momentum() == {"momentum": [0.8]}
    assert OptimWrapper(torch.optim.Adagrad(model.parameters())).get_momentum() == {"momentum": [0]}


def test_state_dict_roundtrip():
    model = make_model()
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9))
    train(wrapper, model, batches(2))
    state = wrapper.state_dict()
    assert set(state) == {"state", "param_groups"}
    other_model = make_model()
    other = OptimWrapper(torch.optim.SGD(other_model.parameters(), lr=1.0, momentum=0.1))
    other.load_state_dict(state)
    assert other.get_lr() == {"lr": [LR]}
    torch.testing.assert_close(other.state_dict()["state"][0]["momentum_buffer"], state["state"][0]["momentum_buffer"])


def test_initialize_count_status_warnings():
    from torchkiln.logging import MMLogger

    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=LR), accumulative_counts=2)
    with unittest.TestCase().assertLogs(MMLogger.get_current_instance(), logging.WARNING) as logs:
        wrapper.initialize_count_status(model, init_counts=0, max_counts=4)
        wrapper.initialize_count_status(make_model(), init_counts=3, max_counts=4)
    messages = [r.getMessage() for r in logs.records]
    assert any("Gradient accumulative" in m and "batch norm" in m for m in messages)
    assert any(m.startswith("Resumed iteration number 3 is not divisible") for m in messages)
    assert wrapper.inner_count == 3
    assert "accumulative_counts=2" in repr(wrapper)


def test_grad_norm_reaches_the_real_message_hub(monkeypatch):
    logging_package = pytest.importorskip("torchkiln.logging")
    hub_class = getattr(logging_package, "MessageHub", None)
    if hub_class is None or not hasattr(hub_class, "reset_instances"):
        pytest.skip("torchkiln.logging.MessageHub not available")
    monkeypatch.setattr(optim_wrapper_module, "_HUB_CLASS", None)  # resolve the import again
    hub_class.reset_instances()
    try:
        param = _with_grad([3.0, 4.0])
        OptimWrapper(torch.optim.SGD([param], lr=1.0), clip_grad={"max_norm": 1.0}).step()
        assert hub_class.get_current_instance().get_scalar("train/grad_norm").current() == pytest.approx(5.0)
    finally:
        hub_class.reset_instances()


def test_the_clip_list_is_built_once_and_follows_new_param_groups():
    a = _with_grad([3.0, 4.0])
    wrapper = OptimWrapper(torch.optim.SGD([a], lr=0.0), clip_grad={"max_norm": 100.0})
    wrapper.step()
    first = wrapper._clip_params()
    wrapper.step()
    assert wrapper._clip_params() is first  # not rebuilt per step
    assert wrapper.last_grad_norm.item() == pytest.approx(5.0)
    b = _with_grad([12.0])
    wrapper.optimizer.add_param_group({"params": [b]})
    wrapper.step()
    assert wrapper.last_grad_norm.item() == pytest.approx(13.0)  # sqrt(9 + 16 + 144)
    # a frozen parameter without a gradient is skipped; unfreezing needs no rebuild
    b.grad = None
    b.requires_grad_(False)
    wrapper.step()
    assert wrapper.last_grad_norm.item() == pytest.approx(5.0)
    b.requires_grad_(True)
    b.grad = torch.tensor([12.0])
    wrapper.step()
    assert wrapper.last_grad_norm.item() == pytest.approx(13.0)


def test_base_param_settings_are_scheduled_saved_and_loaded():
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    groups = [{"params": model[0].parameters()}, {"params": model[1].parameters(), "lr": 0.5}]
    wrapper = OptimWrapper(torch.optim.SGD(groups, lr=0.1))
    from torchkiln.optim import StepLR

    scheduler = StepLR(wrapper, step_size=1, gamma=0.5)
    wrapper.optimizer.step()
    scheduler.step()
    assert wrapper.get_lr() == {"base_lr": [0.05], "lr": [0.05, 0.25]}
    state = wrapper.state_dict()
    assert state["base_param_settings"]["lr"] == 0.05 and "params" not in state["base_param_settings"]
    fresh = OptimWrapper(torch.optim.SGD([{"params": g["params"]} for g in groups], lr=0.1))
    fresh.load_state_dict(state)
    assert fresh.get_lr()["base_lr"] == [0.05]
    assert "base_param_settings" in state  # the caller's dict is left as it was


def test_clip_grad_kwargs_and_message_hub():
    from torchkiln.logging import MessageHub

    hub = MessageHub.get_instance("optim_wrapper_hub_test")
    wrapper = OptimWrapper(torch.optim.SGD(make_model().parameters(), lr=LR))
    assert wrapper.clip_grad_kwargs is None
    assert wrapper.message_hub is hub
    clipped = OptimWrapper(torch.optim.SGD(make_model().parameters(), lr=LR), clip_grad={"max_norm": 1.0})
    assert clipped.clip_grad_kwargs == {"max_norm": 1.0}
