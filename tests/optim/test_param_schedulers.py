"""Generic and momentum schedulers, ReduceOnPlateau, and build_param_schedulers."""

from __future__ import annotations

import inspect
import math

from unittest.mock import patch

import pytest
import torch

from torchkiln.errors import BuildError, ConfigError, UsageError
from torchkiln.optim import (
    INF,
    CosineAnnealingMomentum,
    CosineAnnealingParamScheduler,
    ExponentialParamScheduler,
    LinearMomentum,
    MultiStepParamScheduler,
    OneCycleMomentum,
    OptimWrapper,
    OptimWrapperDict,
    ReduceOnPlateauLR,
    ReduceOnPlateauMomentum,
    StepLR,
    StepMomentum,
    StepParamScheduler,
    build_param_schedulers,
)
from torchkiln.registry._index import builtin_components
from torchkiln.registry import PARAM_SCHEDULERS


def make_sgd(lr=0.05, momentum=0.9, weight_decay=1e-4):
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 1))
    return torch.optim.SGD(
        [{"params": model[0].parameters()}, {"params": model[1].parameters(), "lr": lr * 10}],
        lr=lr,
        momentum=momentum,
        weight_decay=weight_decay,
    )


def make_adam():
    model = torch.nn.Linear(2, 1)
    return torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999))


def values(optimizer, key):
    return [group[key] for group in optimizer.param_groups]


# ---------------------------------------------------------------------------- generic Param
def test_param_scheduler_on_weight_decay():
    opt = make_sgd()
    scheduler = CosineAnnealingParamScheduler(opt, param_name="weight_decay", T_max=8, eta_min=0.0)
    seen = []
    for _ in range(9):
        seen.append(values(opt, "weight_decay")[0])
        scheduler.step()
    # wd_t = 1e-4 * (1 + cos(pi * t / 8)) / 2
    assert seen == pytest.approx([1e-4 * (1 + math.cos(math.pi * t / 8)) / 2 for t in range(9)], abs=1e-15)
    assert values(opt, "lr") == [0.05, 0.5]  # other hyperparameters untouched
    assert opt.param_groups[0]["initial_weight_decay"] == 1e-4


def test_param_scheduler_through_optim_wrapper():
    opt = make_sgd()
    wrapper = OptimWrapper(opt)
    scheduler = StepParamScheduler(wrapper, param_name="lr", step_size=2, gamma=0.5)
    for _ in range(4):
        scheduler.step()
    assert wrapper.get_lr() == {"base_lr": pytest.approx([0.05 * 0.25]), "lr": pytest.approx([0.05 * 0.25, 0.5 * 0.25])}


def test_unknown_param_name_is_a_config_error():
    with pytest.raises(ConfigError, match="'foo'") as info:
        ExponentialParamScheduler(make_sgd(), param_name="foo", gamma=0.9)
    assert "weight_decay" in info.value.hint


# ---------------------------------------------------------------------------- momentum
def test_momentum_scheduler_on_sgd():
    opt = make_sgd(momentum=0.9)
    scheduler = StepMomentum(opt, step_size=2, gamma=0.5)
    seen = []
    for _ in range(6):
        seen.append(values(opt, "momentum"))
        scheduler.step()
    # m_t = 0.9 * 0.5 ** (t // 2) in every group
    assert seen == [[pytest.approx(0.9 * 0.5 ** (t // 2))] * 2 for t in range(6)]


def test_momentum_scheduler_writes_adam_betas():
    opt = make_adam()
    scheduler = LinearMomentum(opt, start_factor=0.5, end=5)
    seen = []
    for _ in range(6):
        seen.append(opt.param_groups[0]["betas"])
        assert OptimWrapper(opt).get_momentum() == {"momentum": [opt.param_groups[0]["betas"][0]]}
        scheduler.step()
    # beta1_t = 0.9 * (0.5 + 0.5 * min(t, 4) / 4); beta2 kept
    for t, betas in enumerate(seen):
        assert betas[0] == pytest.approx(0.9 * (0.5 + 0.5 * min(t, 4) / 4))
        assert betas[1] == 0.999
    assert scheduler.use_betas is True


def test_chained_momentum_schedulers_keep_betas_in_sync():
    opt = make_adam()
    first = StepMomentum(opt, step_size=2, gamma=0.5)
    second = CosineAnnealingMomentum(opt, T_max=4, eta_min=0.0, begin=0, end=5)
    for _ in range(4):
        first.step()
        second.step()
        assert opt.param_groups[0]["betas"][0] == opt.param_groups[0]["momentum"]


def test_one_cycle_momentum_with_betas():
    opt = make_adam()
    OneCycleMomentum(opt, eta_max=0.95, total_steps=10)
    assert opt.param_groups[0]["betas"] == (pytest.approx(0.95 / 25), 0.999)


def test_momentum_scheduler_needs_momentum():
    model = torch.nn.Linear(2, 1)
    with pytest.raises(ConfigError, match="neither 'momentum' nor 'betas'"):
        StepMomentum(torch.optim.Adagrad(model.parameters(), lr=0.1), step_size=2)


# ---------------------------------------------------------------------------- plateau
def _plateau_run(scheduler, opt, metrics_values, key="monitored"):
    seen = []
    for value in metrics_values:
        seen.append(values(opt, scheduler.param_name)[0])
        scheduler.step()  # the training epoch
        scheduler.step({key: value})  # its validation
    return seen


@pytest.mark.parametrize(
    ("rule", "threshold_rule", "threshold", "metric_values"),
    [
        ("less", "rel", 0.01, [10, 9, 8, 7, 6, 6, 6, 6, 6, 6]),
        ("less", "abs", 0.9, [10, 9, 8, 7, 6, 6, 6, 6, 6, 6]),
        ("greater", "rel", 0.01, [1, 2, 3, 4, 5, 5, 5, 5, 5, 5]),
        ("greater", "abs", 0.9, [1, 2, 3, 4, 5, 5, 5, 5, 5, 5]),
    ],
)
def test_reduce_on_plateau(rule, threshold_rule, threshold, metric_values):
    opt = make_sgd()
    scheduler = ReduceOnPlateauLR(opt, monitor="monitored", rule=rule, threshold=threshold,
                                  threshold_rule=threshold_rule, factor=0.1, patience=2, cooldown=1)
    assert scheduler.need_val_args is True
    seen = _plateau_run(scheduler, opt, metric_values)
    # improvement until index 4; indices 5, 6, 7 are bad -> 3 > patience -> reduced for index 8 on;
    # cooldown then swallows index 8, and index 9 is the first bad one again
    assert seen == pytest.approx([0.05] * 8 + [0.005] * 2)


def test_reduce_on_plateau_threshold_blocks_small_improvements():
    opt = make_sgd()
    scheduler = ReduceOnPlateauLR(opt, monitor="loss", factor=0.5, patience=0, threshold=0.1)
    # 9.5 is not below 10 * (1 - 0.1): a plateau at once, and again at each later small step
    seen = _plateau_run(scheduler, opt, [10.0, 9.5, 9.2, 5.0, 4.9], key="loss")
    assert seen == pytest.approx([0.05, 0.05, 0.025, 0.0125, 0.0125])


def test_reduce_on_plateau_min_value_and_eps():
    opt = make_sgd()
    scheduler = ReduceOnPlateauLR(opt, monitor="loss", factor=0.1, patience=0, min_value=[0.01, 0.1])
    for value in [1.0, 1.0, 1.0, 1.0]:
        scheduler.step({"loss": value})
    assert values(opt, "lr") == pytest.approx([0.01, 0.1])
    assert scheduler.get_last_value() == pytest.approx([0.01, 0.1])


def test_reduce_on_plateau_window_and_val_prefix():
    opt = make_sgd()
    scheduler = ReduceOnPlateauLR(opt, monitor="loss", patience=0, begin=2)
    scheduler.step({"val/loss": 1.0})  # global step 0 < begin: ignored
    scheduler.step({"val/loss": 1.0})
    assert scheduler.last_step == -1 and values(opt, "lr") == [0.05, 0.5]
    scheduler.step()
    scheduler.step()  # two training steps: now at global step 2
    scheduler.step({"val/loss": 1.0})
    scheduler.step({"val/loss": 1.0})
    assert values(opt, "lr") == pytest.approx([0.005, 0.05])


def test_reduce_on_plateau_momentum_betas():
    opt = make_adam()
    scheduler = ReduceOnPlateauMomentum(opt, monitor="loss", factor=0.5, patience=0)
    scheduler.step({"loss": 1.0})
    scheduler.step({"loss": 1.0})
    assert opt.param_groups[0]["betas"] == (pytest.approx(0.45), 0.999)


def test_reduce_on_plateau_errors():
    opt = make_sgd()
    with pytest.raises(ConfigError, match="factor"):
        ReduceOnPlateauLR(opt, factor=2.0)
    with pytest.raises(ConfigError, match="rule"):
        ReduceOnPlateauLR(opt, rule="foo")
    with pytest.raises(ConfigError, match="threshold_rule"):
        ReduceOnPlateauLR(opt, threshold_rule="foo")
    with pytest.raises(ConfigError, match="threshold"):
        ReduceOnPlateauLR(opt, threshold=-1.0)
    with pytest.raises(ConfigError, match="min_value"):
        ReduceOnPlateauLR(opt, min_value=[0.1, 0.1, 0.1])
    scheduler = ReduceOnPlateauLR(opt, monitor="los")
    with pytest.raises(UsageError, match="'los'") as info:
        scheduler.step({"loss": 1.0})
    assert "did you mean 'loss'" in info.value.hint
    with pytest.raises(UsageError, match="dict of metrics"):
        scheduler.step(("loss", 1.0))
    assert scheduler.step() is None


def test_reduce_on_plateau_state_dict():
    opt = make_sgd()
    scheduler = ReduceOnPlateauLR(opt, monitor="loss", patience=3, cooldown=2)
    for value in [3.0, 2.0, 2.5, 2.5]:
        scheduler.step()
        scheduler.step({"loss": value})
    other = ReduceOnPlateauLR(make_sgd(), monitor="acc", rule="greater", patience=9)
    other.load_state_dict(scheduler.state_dict())
    assert (other.best, other.num_bad_epochs, other.monitor, other.patience) == (2.0, 2, "loss", 3)
    assert other._global_step == scheduler._global_step == 4


# ---------------------------------------------------------------------------- builder
def test_build_fills_end_from_training_length():
    wrapper = OptimWrapper(make_sgd())
    schedulers = build_param_schedulers(
        [
            {"type": "LinearLR", "by_epoch": False},
            {"type": "CosineAnnealingLR"},
            {"type": "StepLR", "step_size": 2, "end": 3},
        ],
        wrapper,
        max_epochs=7,
        max_iters=70,
        epoch_length=10,
    )
    assert [s.end for s in schedulers] == [70, 7, 3]
    assert schedulers[1].T_max == 7


def test_build_end_with_convert_is_in_iterations():
    wrapper = OptimWrapper(make_sgd())
    (scheduler,) = build_param_schedulers(
        {"type": "CosineAnnealingLR", "convert_to_iter_based": True, "begin": 1}, wrapper, max_epochs=5, epoch_length=10
    )
    assert (scheduler.begin, scheduler.end, scheduler.T_max, scheduler.by_epoch) == (10, 50, 40, False)


def test_build_without_training_length_keeps_inf():
    (scheduler,) = build_param_schedulers([{"type": "ExponentialLR", "gamma": 0.9}], OptimWrapper(make_sgd()))
    assert scheduler.end == INF


def test_build_passes_built_schedulers_through_and_none():
    opt = make_sgd()
    built = StepLR(opt, step_size=2)
    assert build_param_schedulers([built], OptimWrapper(opt)) == [built]
    assert build_param_schedulers(None, OptimWrapper(opt)) == []


def test_build_for_optim_wrapper_dict():
    wrappers = OptimWrapperDict(generator=OptimWrapper(make_sgd()), discriminator=OptimWrapper(make_sgd()))
    per_name = build_param_schedulers(
        {"generator": [{"type": "StepLR", "step_size": 2}], "discriminator": {"type": "ExponentialLR", "gamma": 0.5}},
        wrappers,
        max_epochs=4,
    )
    assert type(per_name["generator"][0]).__name__ == "StepLR"
    assert per_name["generator"][0].optimizer is wrappers["generator"]
    assert type(per_name["discriminator"][0]).__name__ == "ExponentialLR"

    shared = build_param_schedulers([{"type": "ExponentialLR", "gamma": 0.5}], wrappers, max_epochs=4)
    assert set(shared) == {"generator", "discriminator"}
    assert shared["generator"][0] is not shared["discriminator"][0]
    assert shared["discriminator"][0].optimizer is wrappers["discriminator"]

    partial = build_param_schedulers({"generator": [{"type": "StepLR", "step_size": 2}]}, wrappers)
    assert partial["discriminator"] == []


def test_build_errors():
    wrapper = OptimWrapper(make_sgd())
    with pytest.raises(BuildError, match="unknown type 'StepLr'") as info:
        build_param_schedulers([{"type": "StepLr", "step_size": 2}], wrapper)
    assert "StepLR" in info.value.hint
    assert info.value.where == "param_scheduler[0]"
    with pytest.raises(BuildError, match="unexpected argument 'step'") as info:
        build_param_schedulers([{"type": "StepLR", "step": 2}, {"type": "ExponentialLR", "gamma": 0.9}], wrapper)
    assert info.value.where == "param_scheduler[0]"
    with pytest.raises(BuildError, match="missing required argument"):
        build_param_schedulers({"type": "StepLR"}, wrapper)
    with pytest.raises(BuildError, match="unexpected argument 'milestone'"):
        build_param_schedulers({"type": "MultiStepLR", "milestone": [1], "convert_to_iter_based": True}, wrapper,
                               epoch_length=3)
    with pytest.raises(ConfigError, match="needs a 'type'"):
        build_param_schedulers([{"gamma": 0.1}], wrapper)
    with pytest.raises(ConfigError, match="factor must be in") as info:
        build_param_schedulers([{"type": "ConstantLR", "factor": 3}], wrapper)
    assert info.value.where.startswith("param_scheduler")
    # A by-epoch scheduler in iteration-based training is built (as in MMEngine) with a warning.
    with patch("torchkiln.optim.scheduler.builder.print_log") as warn:
        built = build_param_schedulers([{"type": "StepLR", "step_size": 2}], wrapper, train_by_epoch=False,
                                       max_iters=10)
    assert built[0].by_epoch and "steps only once, at the end of training" in warn.call_args[0][0]
    with pytest.raises(ConfigError, match="needs by_epoch: true"):
        build_param_schedulers([{"type": "StepLR", "step_size": 2, "by_epoch": False, "convert_to_iter_based": True}],
                               wrapper, epoch_length=3)
    with pytest.raises(ConfigError, match="epoch length"):
        build_param_schedulers([{"type": "StepLR", "step_size": 2, "convert_to_iter_based": True}], wrapper)
    with pytest.raises(ConfigError, match="only one optimizer"):
        build_param_schedulers({"generator": []}, wrapper)
    with pytest.raises(ConfigError, match="must be a dict or a list"):
        build_param_schedulers("StepLR", wrapper)
    wrappers = OptimWrapperDict(generator=OptimWrapper(make_sgd()))
    with pytest.raises(ConfigError, match="'gen'") as info:
        build_param_schedulers({"gen": []}, wrappers)
    assert "generator" in info.value.hint
    with pytest.raises(ConfigError, match="cannot be shared"):
        build_param_schedulers([StepLR(make_sgd(), step_size=1)], wrappers)


def test_iteration_based_training_accepts_converted_epoch_schedulers():
    (scheduler,) = build_param_schedulers(
        [{"type": "MultiStepLR", "milestones": [1], "convert_to_iter_based": True}],
        OptimWrapper(make_sgd()),
        train_by_epoch=False,
        epoch_length=5,
        max_iters=20,
    )
    assert scheduler.milestones == {5: 1}


# ---------------------------------------------------------------------------- registry
def test_every_component_resolves_and_variant_signatures_drop_param_name():
    table = builtin_components("torchkiln.param_schedulers")
    assert len(table) == 30
    for name, target in table.items():
        cls = PARAM_SCHEDULERS.get(name)
        assert cls.__name__ == name and target.endswith(f":{name}")
        parameters = inspect.signature(cls).parameters
        assert ("param_name" in parameters) == name.endswith("ParamScheduler")
        assert {"optimizer", "begin", "end", "last_step", "by_epoch", "verbose"} <= set(parameters)


def test_multistep_state_dict_is_plain():
    scheduler = MultiStepParamScheduler(make_sgd(), param_name="lr", milestones=[3, 1, 3])
    assert type(scheduler.state_dict()["milestones"]) is dict
    assert scheduler.milestones == {1: 1, 3: 2}


def test_plateau_min_value_per_optimizer_group_through_a_wrapper():
    """A wrapper over two groups adds its base group: min_value still lists the two groups,
    and the base group takes the last one."""
    from torchkiln.optim import ReduceOnPlateauParamScheduler

    wrapper = OptimWrapper(make_sgd())
    scheduler = ReduceOnPlateauParamScheduler(
        wrapper, "lr", monitor="loss", factor=0.1, patience=0, min_value=[0.01, 0.2]
    )
    assert scheduler.min_values == [0.01, 0.2, 0.2]
    scheduler.step({"loss": 1.0})
    scheduler.step({"loss": 1.0})  # no improvement beyond patience 0: reduce, floored
    # the base group (0.05) would go below its floor of 0.2, so it keeps its value
    assert [g["lr"] for g in wrapper.param_groups] == pytest.approx([0.01, 0.2, 0.05])
    with pytest.raises(ValueError, match="min_value has 3 values for 2 param groups"):
        ReduceOnPlateauParamScheduler(wrapper, "lr", min_value=[0.1, 0.1, 0.1])
