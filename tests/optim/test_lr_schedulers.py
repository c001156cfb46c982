"""Learning-rate schedulers against their closed forms, windows, chaining, conversion, state."""

from __future__ import annotations

import bisect
import io
import math

import pytest
import torch

from torchkiln.errors import ConfigError
from torchkiln.optim import (
    INF,
    ConstantLR,
    CosineAnnealingLR,
    CosineRestartLR,
    ExponentialLR,
    LinearLR,
    MultiStepLR,
    OneCycleLR,
    OptimWrapper,
    OptimWrapperDict,
    PolyLR,
    StepLR,
    build_param_schedulers,
)

LR = 0.05
MULT = 10
BASES = (LR, LR * MULT)
STEPS = 12


def make_optimizer() -> torch.optim.Optimizer:
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 1))
    return torch.optim.SGD(
        [{"params": model[0].parameters()}, {"params": model[1].parameters(), "lr": LR * MULT}],
        lr=LR,
        momentum=0.9,
        weight_decay=1e-4,
    )


def run(schedulers, optimizer, steps=STEPS, key="lr"):
    """Per step t: each group's value of ``key`` seen during step t, then step every scheduler."""
    if not isinstance(schedulers, (list, tuple)):
        schedulers = [schedulers]
    seen = []
    for _ in range(steps):
        seen.append([group[key] for group in optimizer.param_groups])
        for scheduler in schedulers:
            scheduler.step()
    return seen


def check(seen, formula, bases=BASES):
    for t, values in enumerate(seen):
        for base, value in zip(bases, values):
            assert value == pytest.approx(formula(t, base), rel=1e-9, abs=1e-12), f"step {t}"


def check_closed_form_alone(scheduler, optimizer):
    """A scheduler acting alone agrees with its closed form at every step."""
    for _ in range(STEPS):
        closed = scheduler._get_closed_form()
        current = [group[scheduler.param_name] for group in optimizer.param_groups]
        assert current == pytest.approx(closed, rel=1e-9, abs=1e-12)
        scheduler.step()


# ---------------------------------------------------------------------------- closed forms
def test_step_lr():
    opt = make_optimizer()
    # lr_t = base * gamma ** (t // step_size)
    check(run(StepLR(opt, step_size=3, gamma=0.1), opt), lambda t, b: b * 0.1 ** (t // 3))
    opt = make_optimizer()
    check_closed_form_alone(StepLR(opt, step_size=3, gamma=0.1), opt)


def test_multi_step_lr():
    opt = make_optimizer()
    milestones = [2, 5, 9]
    # lr_t = base * gamma ** (number of milestones <= t)
    check(run(MultiStepLR(opt, milestones=milestones, gamma=0.1), opt),
          lambda t, b: b * 0.1 ** bisect.bisect_right(milestones, t))
    opt = make_optimizer()
    check_closed_form_alone(MultiStepLR(opt, milestones=milestones), opt)


def test_multi_step_lr_repeated_milestone_counts_twice():
    opt = make_optimizer()
    check(run(MultiStepLR(opt, milestones=[3, 3], gamma=0.5), opt), lambda t, b: b * (0.25 if t >= 3 else 1.0))


def test_constant_lr_scales_until_the_last_active_step():
    opt = make_optimizer()
    # end=5 -> T = end - begin - 1 = 4: lr_t = base * factor for t < 4, base from t = 4 on
    check(run(ConstantLR(opt, factor=0.5, end=5), opt), lambda t, b: b * (0.5 if t < 4 else 1.0))
    opt = make_optimizer()
    check_closed_form_alone(ConstantLR(opt, factor=0.5, end=5), opt)


def test_exponential_lr():
    opt = make_optimizer()
    check(run(ExponentialLR(opt, gamma=0.9), opt), lambda t, b: b * 0.9**t)
    opt = make_optimizer()
    check_closed_form_alone(ExponentialLR(opt, gamma=0.9), opt)


def test_cosine_annealing_lr_through_the_bottom():
    opt = make_optimizer()
    eta_min = 1e-3
    # lr_t = eta_min + (base - eta_min) * (1 + cos(pi * t / T_max)) / 2, also past T_max
    check(run(CosineAnnealingLR(opt, T_max=10, eta_min=eta_min), opt),
          lambda t, b: eta_min + (b - eta_min) * (1 + math.cos(math.pi * t / 10)) / 2)
    opt = make_optimizer()
    check_closed_form_alone(CosineAnnealingLR(opt, T_max=10, eta_min=eta_min), opt)


def test_cosine_annealing_lr_eta_min_ratio_and_default_t_max():
    opt = make_optimizer()
    scheduler = CosineAnnealingLR(opt, eta_min_ratio=0.1, begin=0, end=12)
    assert scheduler.T_max == 12
    # per group eta_min = 0.1 * base
    check(run(scheduler, opt), lambda t, b: 0.1 * b + 0.9 * b * (1 + math.cos(math.pi * t / 12)) / 2)


def test_linear_lr():
    opt = make_optimizer()
    # T = end - 1 = 4: lr_t = base * (s + (e - s) * min(t, T) / T)
    check(run(LinearLR(opt, start_factor=0.5, end_factor=1.0, end=5), opt),
          lambda t, b: b * (0.5 + 0.5 * min(t, 4) / 4))
    opt = make_optimizer()
    check(run(LinearLR(opt, start_factor=1.0, end_factor=0.2, end=7), opt),
          lambda t, b: b * (1.0 - 0.8 * min(t, 6) / 6))


def test_linear_lr_from_zero():
    opt = make_optimizer()
    check(run(LinearLR(opt, start_factor=0.0, end=5), opt), lambda t, b: b * min(t, 4) / 4)


def test_poly_lr():
    opt = make_optimizer()
    eta_min, power = 1e-3, 0.9
    # T = 4: lr_t = (base - eta_min) * (1 - min(t, T) / T) ** power + eta_min
    check(run(PolyLR(opt, eta_min=eta_min, power=power, end=5), opt),
          lambda t, b: (b - eta_min) * (1 - min(t, 4) / 4) ** power + eta_min)
    opt = make_optimizer()
    check_closed_form_alone(PolyLR(opt, eta_min=eta_min, power=2.0, end=9), opt)


def _one_cycle(t, peak, n, pct, div=25.0, final_div=1e4, strategy="cos", three_phase=False):
    initial, low = peak / div, peak / div / final_div

    def anneal(a, b, p):
        return b + (a - b) * (1 + math.cos(math.pi * p)) / 2 if strategy == "cos" else a + (b - a) * p

    first = pct * n - 1
    if t <= first:
        return anneal(initial, peak, t / first)
    if three_phase:
        second = 2 * pct * n - 2
        if t <= second:
            return anneal(peak, initial, (t - first) / (second - first))
        return anneal(initial, low, (t - second) / (n - 1 - second))
    return anneal(peak, low, (t - first) / (n - 1 - first))


@pytest.mark.parametrize("strategy", ["cos", "linear"])
@pytest.mark.parametrize("three_phase", [False, True])
def test_one_cycle_lr(strategy, three_phase):
    opt = make_optimizer()
    peaks = [0.1, 1.0]
    scheduler = OneCycleLR(opt, eta_max=peaks, total_steps=STEPS, pct_start=0.25,
                           anneal_strategy=strategy, three_phase=three_phase)
    seen = run(scheduler, opt)
    for t, values in enumerate(seen):
        for peak, value in zip(peaks, values):
            assert value == pytest.approx(_one_cycle(t, peak, STEPS, 0.25, strategy=strategy, three_phase=three_phase))
    assert seen[0][1] == pytest.approx(1.0 / 25)
    assert seen[-1][1] == pytest.approx(1.0 / 25 / 1e4)


def test_one_cycle_total_steps_defaults_to_window():
    opt = make_optimizer()
    assert OneCycleLR(opt, eta_max=0.1, begin=2, end=12).total_steps == 10
    with pytest.raises(ConfigError, match="total_steps or a finite end"):
        OneCycleLR(make_optimizer(), eta_max=0.1)


def test_cosine_restart_lr():
    opt = make_optimizer()
    periods, weights = [4, 5], [1.0, 0.5]

    def formula(t, base):
        # period 0: steps 0-3, period 1: steps 4-8, then the value stays where it ended
        index, local = (0, t) if t < 4 else (1, min(t - 4, 4))
        return base * weights[index] * (1 + math.cos(math.pi * local / periods[index])) / 2

    check(run(CosineRestartLR(opt, periods=periods, restart_weights=weights, eta_min=0.0), opt), formula)
    opt = make_optimizer()
    check_closed_form_alone(CosineRestartLR(opt, periods=periods, restart_weights=weights), opt)


def test_cosine_restart_eta_min_ratio():
    opt = make_optimizer()
    scheduler = CosineRestartLR(opt, periods=[6, 6], eta_min_ratio=0.2)
    assert scheduler.restart_weights == [1.0, 1.0]
    check(run(scheduler, opt),
          lambda t, b: 0.2 * b + 0.8 * b * (1 + math.cos(math.pi * (t % 6) / 6)) / 2)


# ---------------------------------------------------------------------------- windows
def test_begin_end_window():
    opt = make_optimizer()
    # inactive before begin=2 and from end=7 on; T = end - begin - 1 = 4
    check(run(LinearLR(opt, start_factor=0.5, begin=2, end=7), opt),
          lambda t, b: b if t < 2 else b * (0.5 + 0.5 * min(t - 2, 4) / 4))
    opt = make_optimizer()
    scheduler = ExponentialLR(opt, gamma=0.9, begin=3, end=6)
    check(run(scheduler, opt), lambda t, b: b * 0.9 ** min(max(t - 3, 0), 2))
    assert scheduler.last_step == 2  # active steps 3, 4, 5 -> last_step 0, 1, 2


def test_last_step_counts_active_steps_only():
    opt = make_optimizer()
    scheduler = StepLR(opt, step_size=3)
    assert scheduler.last_step == 0
    counts = []
    for _ in range(5):
        scheduler.step()
        counts.append(scheduler.last_step)
    assert counts == [1, 2, 3, 4, 5]


def test_get_last_value_follows_steps():
    opt = make_optimizer()
    scheduler = StepLR(opt, step_size=2, gamma=0.5)
    values = []
    for _ in range(5):
        values.append(scheduler.get_last_value())
        scheduler.step()
    assert values == [[b * 0.5 ** (t // 2) for b in BASES] for t in range(5)]


def test_steps_that_keep_the_value_write_nothing_and_report_the_groups():
    """Most steps of a step schedule change nothing: they leave the groups alone (a later
    scheduler's change survives) and ``get_last_value`` reports the groups as they are."""
    opt = make_optimizer()
    step, exp = StepLR(opt, step_size=4, gamma=0.5), ExponentialLR(opt, gamma=0.9)
    for t in range(1, 10):
        step.step()
        exp.step()
        expected = [b * 0.5 ** (t // 4) * 0.9 ** t for b in BASES]
        assert [g["lr"] for g in opt.param_groups] == pytest.approx(expected, rel=1e-12)
        written_by_step = [value / 0.9 for value in expected]  # before exp's step
        last = expected if t % 4 else written_by_step
        assert step.get_last_value() == pytest.approx(last, rel=1e-12)
    quiet, loud = make_optimizer(), make_optimizer()
    schedules = [MultiStepLR(quiet, milestones=[2, 5]), MultiStepLR(loud, milestones=[2, 5], verbose=True)]
    assert run(schedules[0], quiet) == run(schedules[1], loud)


# ---------------------------------------------------------------------------- chaining
def test_chaining_overlapping_schedulers_multiply():
    opt = make_optimizer()
    milestones = [3, 6, 9]
    schedulers = [LinearLR(opt, start_factor=0.5, end=5), MultiStepLR(opt, milestones=milestones, gamma=0.1)]
    check(run(schedulers, opt),
          lambda t, b: b * (0.5 + 0.5 * min(t, 4) / 4) * 0.1 ** bisect.bisect_right(milestones, t))


def test_chaining_in_turn_exp_then_cosine():
    opt = make_optimizer()
    eta_min = 1e-4
    schedulers = [ExponentialLR(opt, gamma=0.9, begin=0, end=5),
                  CosineAnnealingLR(opt, T_max=6, eta_min=eta_min, begin=5, end=12)]

    def formula(t, base):
        if t < 5:
            return base * 0.9**t
        start = base * 0.9**4  # the cosine starts from the value the exponential left
        return eta_min + (start - eta_min) * (1 + math.cos(math.pi * (t - 5) / 6)) / 2

    check(run(schedulers, opt), formula)


def test_warmup_by_iter_then_multistep_by_epoch_converted():
    """LinearLR warm-up over iterations 0-4, then MultiStepLR at epoch 2 converted to iterations."""
    epoch_length = 4
    opt = make_optimizer()
    wrapper = OptimWrapper(opt)
    schedulers = build_param_schedulers(
        [
            {"type": "LinearLR", "start_factor": 0.2, "by_epoch": False, "begin": 0, "end": 5},
            {"type": "MultiStepLR", "milestones": [2], "gamma": 0.1, "by_epoch": True, "convert_to_iter_based": True},
        ],
        wrapper,
        epoch_length=epoch_length,
        max_epochs=4,
        max_iters=16,
    )
    assert schedulers[1].by_epoch is False
    assert schedulers[1].milestones == {8: 1}
    assert schedulers[1].end == 16
    # iteration t: warm-up factor 0.2 + 0.8 * min(t, 4) / 4, times 0.1 from iteration 8 on
    check(run(schedulers, opt, steps=16),
          lambda t, b: b * (0.2 + 0.8 * min(t, 4) / 4) * (0.1 if t >= 8 else 1.0))


def test_warmup_by_iter_with_epoch_scheduler_stepped_per_epoch():
    """The runner's cadence: by-iteration schedulers step every iteration, by-epoch ones per epoch."""
    epoch_length = 4
    opt = make_optimizer()
    warmup = LinearLR(opt, start_factor=0.2, by_epoch=False, end=5)
    decay = MultiStepLR(opt, milestones=[2], gamma=0.1)
    seen = []
    for _epoch in range(4):
        for _ in range(epoch_length):
            seen.append([g["lr"] for g in opt.param_groups])
            warmup.step()
        decay.step()
    check(seen, lambda t, b: b * (0.2 + 0.8 * min(t, 4) / 4) * (0.1 if t // epoch_length >= 2 else 1.0))


# ---------------------------------------------------------------------------- conversion
def test_build_iter_from_epoch_conversions():
    n = 3
    opt = make_optimizer()
    step = StepLR.build_iter_from_epoch(opt, step_size=2, gamma=0.1, epoch_length=n)
    assert (step.step_size, step.by_epoch, step.begin, step.end) == (6, False, 0, INF)
    check(run(step, opt), lambda t, b: b * 0.1 ** (t // 6))

    cosine = CosineAnnealingLR.build_iter_from_epoch(make_optimizer(), T_max=2, begin=1, end=3, epoch_length=n)
    assert (cosine.T_max, cosine.begin, cosine.end) == (6, 3, 9)
    cosine_default = CosineAnnealingLR.build_iter_from_epoch(make_optimizer(), begin=1, end=3, epoch_length=n)
    assert cosine_default.T_max == 6
    restart = CosineRestartLR.build_iter_from_epoch(make_optimizer(), periods=[1, 2], epoch_length=n)
    assert restart.periods == [3, 6]
    cycle = OneCycleLR.build_iter_from_epoch(make_optimizer(), eta_max=0.1, total_steps=2, epoch_length=n)
    assert cycle.total_steps == 6
    linear = LinearLR.build_iter_from_epoch(make_optimizer(), start_factor=0.5, begin=1, end=3, epoch_length=4)
    assert (linear.begin, linear.end, linear.total_iters) == (4, 12, 7)
    # positional schedule arguments are converted too
    positional = MultiStepLR.build_iter_from_epoch(make_optimizer(), [1, 2], epoch_length=n)
    assert positional.milestones == {3: 1, 6: 1}


def test_build_iter_from_epoch_errors():
    with pytest.raises(ConfigError, match="epoch_length"):
        StepLR.build_iter_from_epoch(make_optimizer(), step_size=2, epoch_length=-1)
    with pytest.raises(ConfigError, match="only by_epoch=True"):
        StepLR.build_iter_from_epoch(make_optimizer(), step_size=2, by_epoch=False, epoch_length=3)


# ---------------------------------------------------------------------------- state
def _roundtrip(state):
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


@pytest.mark.parametrize(
    ("build", "build_other"),
    [
        (lambda o: StepLR(o, step_size=3), lambda o: StepLR(o, step_size=1, gamma=0.5)),
        (lambda o: MultiStepLR(o, milestones=[2, 5, 9]), lambda o: MultiStepLR(o, milestones=[1])),
        (lambda o: ConstantLR(o, factor=0.5, end=8), lambda o: ConstantLR(o, factor=0.1, end=3)),
        (lambda o: CosineAnnealingLR(o, T_max=10, eta_min=1e-4), lambda o: CosineAnnealingLR(o, T_max=3)),
        (lambda o: LinearLR(o, start_factor=0.25, end=8), lambda o: LinearLR(o, start_factor=0.5, end=3)),
        (lambda o: PolyLR(o, power=0.5, eta_min=1e-3, end=10), lambda o: PolyLR(o, end=4)),
        (lambda o: OneCycleLR(o, eta_max=0.2, total_steps=12), lambda o: OneCycleLR(o, eta_max=0.9, total_steps=20)),
        (lambda o: CosineRestartLR(o, periods=[4, 5], restart_weights=[1, 0.5]),
         lambda o: CosineRestartLR(o, periods=[2, 2])),
    ],
)
def test_state_dict_roundtrip_continues_the_schedule(build, build_other):
    opt = make_optimizer()
    scheduler = build(opt)
    for _ in range(5):
        scheduler.step()
    state = _roundtrip(scheduler.state_dict())
    assert "optimizer" not in state

    # The runner's resume order: build (which steps once), then load optimizer and scheduler states.
    resumed_opt = make_optimizer()
    resumed = build_other(resumed_opt)
    resumed_opt.load_state_dict(_roundtrip(opt.state_dict()))
    resumed.load_state_dict(state)
    assert resumed.get_last_value() == scheduler.get_last_value()
    assert run(resumed, resumed_opt, steps=6) == run(scheduler, opt, steps=6)


def test_resume_with_last_step_without_state_dict():
    opt = make_optimizer()
    scheduler = ExponentialLR(opt, gamma=0.9)
    for _ in range(4):
        scheduler.step()
    resumed = ExponentialLR(opt, gamma=0.9, last_step=4)
    # constructing with last_step=4 performs step 5
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([b * 0.9**5 for b in BASES])
    assert resumed.last_step == 5
    with pytest.raises(ConfigError, match="initial_lr"):
        StepLR(make_optimizer(), step_size=2, last_step=3)


# ---------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda o: StepLR(o, step_size=3, begin=10, end=5), "end should be larger than begin"),
        (lambda o: ConstantLR(o, factor=2.0), "factor must be in"),
        (lambda o: LinearLR(o, start_factor=-1), "start_factor"),
        (lambda o: LinearLR(o, end_factor=1.5), "end_factor"),
        (lambda o: CosineAnnealingLR(o, T_max=4, eta_min=0, eta_min_ratio=0.1), "not both"),
        (lambda o: CosineRestartLR(o, periods=[4, 5], restart_weights=[1, 0.5, 0.1]), "restart_weights"),
        (lambda o: OneCycleLR(o, eta_max=[0.1], total_steps=10), "eta_max has 1 values for 2"),
        (lambda o: OneCycleLR(o, eta_max=0.1, total_steps=10, anneal_strategy="exp"), "anneal_strategy"),
        (lambda o: StepLR(o, step_size=0), "step_size"),
        (lambda o: StepLR(o, step_size=2, last_step=-2), "last_step"),
        (lambda o: StepLR("not an optimizer", step_size=2), "should be an Optimizer or an OptimWrapper"),
    ],
)
def test_invalid_arguments(build, message):
    with pytest.raises(ConfigError, match=message):
        build(make_optimizer())


def test_one_optimizer_only():
    wrappers = OptimWrapperDict(a=OptimWrapper(make_optimizer()))
    with pytest.raises(ConfigError, match="OptimWrapperDict"):
        StepLR(wrappers, step_size=2)
