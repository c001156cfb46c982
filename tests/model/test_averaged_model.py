"""Averaged models: EMA, momentum-annealing EMA and SWA against hand-computed closed forms."""

from __future__ import annotations

import unittest

import pytest
import torch
from torch import nn
from torch.nn.parallel import DataParallel

from torchkiln.errors import ConfigError
from torchkiln.logging import MMLogger
from torchkiln.model import (
    BaseAveragedModel,
    ExponentialMovingAverage,
    MomentumAnnealingEMA,
    StochasticWeightAverage,
)
from torchkiln.registry import MODELS


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(2, 1, bias=False)
        self.bn = nn.BatchNorm1d(1)


def set_weight(model: Net, value: float) -> None:
    with torch.no_grad():
        model.fc.weight.fill_(value)


def run(avg: BaseAveragedModel, model: Net, values: list[float]) -> list[float]:
    out = []
    for v in values:
        set_weight(model, v)
        avg.update_parameters(model)
        out.append(avg.module.fc.weight[0, 0].item())
    return out


def test_ema_closed_form() -> None:
    model = Net()
    m = 0.1
    ema = ExponentialMovingAverage(model, momentum=m)
    got = run(ema, model, [1.0, 2.0, 4.0, 8.0])
    expected = [1.0]
    for v in [2.0, 4.0, 8.0]:
        expected.append((1 - m) * expected[-1] + m * v)
    assert got == pytest.approx(expected)
    assert int(ema.steps) == 4
    assert not any(p.requires_grad for p in ema.parameters())


def test_ema_interval_averages_every_k_calls_and_copies_buffers_each_call() -> None:
    model = Net()
    ema = ExponentialMovingAverage(model, momentum=0.5, interval=2)
    got = []
    for step, v in enumerate([2.0, 4.0, 6.0, 8.0, 10.0]):
        set_weight(model, v)
        model.bn.running_mean.fill_(float(step))
        ema.update_parameters(model)
        got.append(ema.module.fc.weight[0, 0].item())
        assert ema.module.bn.running_mean.item() == float(step)  # copied, not averaged
    # step 0 copies; steps 2 and 4 average; 1 and 3 skip
    assert got == pytest.approx([2.0, 2.0, 4.0, 4.0, 7.0])


def test_ema_update_buffers_averages_float_buffers_and_copies_counters() -> None:
    model = Net()
    ema = ExponentialMovingAverage(model, momentum=0.25, update_buffers=True)
    model.bn.running_var.fill_(4.0)
    model.bn.num_batches_tracked.fill_(5)
    ema.update_parameters(model)
    model.bn.running_var.fill_(8.0)
    model.bn.num_batches_tracked.fill_(6)
    ema.update_parameters(model)
    assert ema.module.bn.running_var.item() == pytest.approx(0.75 * 4.0 + 0.25 * 8.0)
    assert ema.module.bn.num_batches_tracked.item() == 6
    assert "bn.running_var" in ema.avg_parameters


def test_momentum_annealing_closed_form() -> None:
    model = Net()
    m, gamma = 0.01, 2
    ema = MomentumAnnealingEMA(model, momentum=m, gamma=gamma)
    values = [1.0, 3.0, 5.0, 7.0, 100.0]
    got = run(ema, model, values)
    expected = [values[0]]
    for steps, v in enumerate(values[1:], start=1):
        mom = max(m, gamma / (gamma + steps))
        expected.append((1 - mom) * expected[-1] + mom * v)
    assert got == pytest.approx(expected)


def test_swa_is_the_running_mean() -> None:
    model = Net()
    swa = StochasticWeightAverage(model)
    values = [1.0, 2.0, 6.0, 7.0]
    got = run(swa, model, values)
    assert got == pytest.approx([1.0, 1.5, 3.0, 4.0])


def test_swa_with_interval_means_the_averaged_snapshots() -> None:
    model = Net()
    swa = StochasticWeightAverage(model, interval=2)
    got = run(swa, model, [1.0, 50.0, 3.0, 50.0, 8.0])
    assert got[-1] == pytest.approx((1.0 + 3.0 + 8.0) / 3)


def test_fused_average_equals_per_tensor_avg_func() -> None:
    model = Net()
    ema = ExponentialMovingAverage(model, momentum=0.3)
    a1 = [torch.tensor([1.0, 2.0]), torch.tensor([3.0])]
    a2 = [t.clone() for t in a1]
    src = [torch.tensor([5.0, 0.0]), torch.tensor([-1.0])]
    ema.average(a1, src, steps=4)
    BaseAveragedModel.average(ema, a2, src, steps=4)  # the per-tensor fallback
    for x, y in zip(a1, a2):
        assert torch.allclose(x, y)


def test_state_dict_round_trip_restores_steps_without_device_reads() -> None:
    model = Net()
    ema = MomentumAnnealingEMA(model, momentum=0.01, gamma=1)
    run(ema, model, [1.0, 2.0, 3.0])
    state = ema.state_dict()
    assert int(state["steps"]) == 3 and "module.fc.weight" in state

    restored = MomentumAnnealingEMA(Net(), momentum=0.01, gamma=1)
    restored.load_state_dict(state)
    assert restored._host_steps == 3
    before = restored.module.fc.weight[0, 0].item()
    run(restored, model, [10.0])
    mom = max(0.01, 1 / (1 + 3))
    assert restored.module.fc.weight[0, 0].item() == pytest.approx((1 - mom) * before + mom * 10.0)


def test_wrapped_models_are_unwrapped() -> None:
    model = Net()
    ema = ExponentialMovingAverage(DataParallel(model), momentum=0.5)
    assert isinstance(ema.module, Net)
    set_weight(model, 3.0)
    ema.update_parameters(DataParallel(model))
    assert ema.module.fc.weight[0, 0].item() == 3.0


def test_forward_runs_the_averaged_copy() -> None:
    model = Net()
    ema = ExponentialMovingAverage(model)
    set_weight(model, 1.0)
    ema.update_parameters(model)
    set_weight(model, 100.0)
    assert ema.module.fc(torch.ones(1, 2)).item() == pytest.approx(2.0)
    assert ema.module is not model


def test_averaged_copy_on_another_device() -> None:
    model = Net()
    ema = ExponentialMovingAverage(model, momentum=0.5, device="meta")
    assert ema.module.fc.weight.device.type == "meta" and ema.steps.device.type == "meta"
    assert model.fc.weight.device.type == "cpu"


def test_structure_mismatch_is_reported() -> None:
    ema = ExponentialMovingAverage(Net())
    with pytest.raises(ValueError, match="no tensor 'fc.weight'"):
        ema.update_parameters(nn.Sequential(nn.Linear(2, 1)))


def test_momentum_checks() -> None:
    with pytest.raises(ConfigError, match=r"momentum must be in range \(0, 1\)"):
        ExponentialMovingAverage(Net(), momentum=1.5)
    case = unittest.TestCase()
    with case.assertLogs(MMLogger.get_current_instance(), "WARNING") as logs:
        ExponentialMovingAverage(Net(), momentum=0.9)  # logged on the run logger
    assert "use 0.1 for the other convention" in logs.output[0]
    with pytest.raises(ConfigError, match="gamma must be greater than 0"):
        MomentumAnnealingEMA(Net(), gamma=0)
    with pytest.raises(ConfigError, match="interval"):
        StochasticWeightAverage(Net(), interval=0)


def test_built_from_the_models_registry() -> None:
    ema = MODELS.build({"type": "ExponentialMovingAverage", "momentum": 0.001}, default_args={"model": Net()})
    assert isinstance(ema, ExponentialMovingAverage) and ema.momentum == 0.001
    assert MODELS.get("MomentumAnnealingEMA") is MomentumAnnealingEMA
    assert MODELS.get("StochasticWeightAverage") is StochasticWeightAverage


def test_updates_stay_correct_after_storage_swaps() -> None:
    """Evaluating with the average by swapping ``.data`` (and back) must not break later updates."""
    model = Net()
    ema = ExponentialMovingAverage(model, momentum=0.5)
    run(ema, model, [2.0])
    avg_w, src_w = ema.module.fc.weight, model.fc.weight
    for _ in range(2):  # swap in, swap out
        avg_w.data, src_w.data = src_w.data, avg_w.data
    got = run(ema, model, [4.0])
    assert got == pytest.approx([3.0])
    assert model.fc.weight[0, 0].item() == 4.0
    avg_w.data = avg_w.data.clone()  # new storage behind the same parameter
    assert run(ema, model, [5.0]) == pytest.approx([4.0])


def test_updates_resolve_the_tensors_once_and_never_walk_the_model(monkeypatch) -> None:
    """The per-iteration update must not call named_parameters/state_dict/buffers again."""
    model = Net()
    ema = ExponentialMovingAverage(model, momentum=0.5)
    run(ema, model, [2.0])
    ema.copy_from(model)
    for name in ("named_parameters", "parameters", "state_dict", "buffers", "named_buffers", "named_modules"):
        for m in (model, ema.module, model.fc, model.bn):
            monkeypatch.setattr(m, name, lambda *a, _n=name, **k: pytest.fail(f"{_n} walked per update"))
    assert run(ema, model, [4.0, 6.0]) == pytest.approx([3.0, 4.5])
    ema.copy_from(model)
    assert ema.module.fc.weight[0, 0].item() == 6.0


def test_updates_follow_tensors_replaced_in_the_model() -> None:
    """A ``.to()`` replaces buffers (and a cast may replace parameters): reads go through the
    owning module's dicts, so the average sees the new tensors."""
    model = Net()
    ema = ExponentialMovingAverage(model, momentum=0.5)
    run(ema, model, [2.0])
    model.bn.running_mean = torch.full((1,), 7.0)  # a new buffer object
    model.fc.weight = nn.Parameter(torch.full((1, 2), 4.0))  # a new parameter object
    ema.update_parameters(model)
    assert ema.module.fc.weight[0, 0].item() == pytest.approx(3.0)
    assert ema.module.bn.running_mean.item() == 7.0
    # the averaged copy's own buffers replaced too (a move of the inner module)
    ema.module.bn.running_mean = torch.zeros(1)
    model.bn.running_mean.fill_(9.0)
    ema.update_parameters(model)
    assert ema.module.bn.running_mean.item() == 9.0


def test_another_model_or_a_loaded_state_gets_a_fresh_plan() -> None:
    a, b = Net(), Net()
    ema = ExponentialMovingAverage(a, momentum=0.5)
    set_weight(a, 2.0)
    ema.update_parameters(a)
    set_weight(b, 4.0)
    ema.update_parameters(b)
    assert ema.module.fc.weight[0, 0].item() == pytest.approx(3.0)
    with pytest.raises(ValueError, match="no tensor 'fc.weight'"):
        ema.update_parameters(nn.Sequential(nn.Linear(2, 1)))
    with pytest.raises(ValueError, match="copy_from: the model has no tensor"):
        ema.copy_from(nn.Sequential(nn.Linear(2, 1)))
    # caches never travel with copies or pickles
    import copy
    import pickle

    clone = copy.deepcopy(ema)
    assert clone._plan is None and clone._avg_cache is None
    pickle.loads(pickle.dumps(ema))
    set_weight(a, 10.0)
    clone.update_parameters(a)
    assert clone.module.fc.weight[0, 0].item() == pytest.approx(6.5)
