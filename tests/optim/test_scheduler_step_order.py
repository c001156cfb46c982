"""Schedulers warn when stepped before the optimizer, or after the optimizer's step was replaced."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from torchkiln.optim import ExponentialLR, OptimWrapper, StepLR, StepMomentum
from torchkiln.testing import run_training

BEFORE = "called before the optimizer's step"
REPLACED = "was replaced after"


def make_optimizer():
    model = nn.Linear(2, 1)
    return model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)


def train_step(model, optimizer):
    optimizer.zero_grad()
    model(torch.ones(1, 2)).sum().backward()
    optimizer.step()


def order_warnings(record):
    return [str(w.message) for w in record if BEFORE in str(w.message) or REPLACED in str(w.message)]


def test_stepping_the_scheduler_first_warns_once():
    model, optimizer = make_optimizer()
    scheduler = StepLR(optimizer, step_size=1, gamma=0.5)
    with pytest.warns(UserWarning, match=r"StepLR.step\(\) was called before .*how-to-adjust-learning-rate"):
        scheduler.step()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        train_step(model, optimizer)
        scheduler.step()
    assert order_warnings(record) == []


def test_the_right_order_is_silent():
    model, optimizer = make_optimizer()
    schedulers = [StepLR(optimizer, step_size=1, gamma=0.5), StepMomentum(optimizer, step_size=1)]
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        for _ in range(3):
            train_step(model, optimizer)
            for scheduler in schedulers:
                scheduler.step()
    assert order_warnings(record) == []
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5**3)


def test_resuming_with_last_step_warns_like_a_fresh_scheduler():
    model, optimizer = make_optimizer()
    for group in optimizer.param_groups:
        group["initial_lr"] = 0.1
    scheduler = StepLR(optimizer, step_size=3, gamma=0.1, last_step=10)
    with pytest.warns(UserWarning, match=BEFORE):
        scheduler.step()


def test_a_replaced_optimizer_step_warns():
    model, optimizer = make_optimizer()
    scheduler = ExponentialLR(optimizer, gamma=0.9)
    optimizer.step = lambda closure=None: None  # e.g. a profiler or a hand-made wrapper
    optimizer.step()
    with pytest.warns(UserWarning, match=rf"the step\(\) of SGD {REPLACED} ExponentialLR"):
        scheduler.step()


def test_an_accumulating_optim_wrapper_counts_as_used():
    """Gradient accumulation: the first iteration steps no optimizer, and that is fine."""
    model, optimizer = make_optimizer()
    wrapper = OptimWrapper(optimizer, accumulative_counts=2)
    scheduler = StepLR(wrapper, step_size=1, gamma=0.5)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        wrapper.update_params(model(torch.ones(1, 2)).sum())  # accumulates only
        scheduler.step()
    assert order_warnings(record) == []
    fresh = StepLR(OptimWrapper(make_optimizer()[1]), step_size=1)
    with pytest.warns(UserWarning, match=BEFORE):
        fresh.step()


def test_a_loaded_scheduler_does_not_warn_again():
    model, optimizer = make_optimizer()
    first = StepLR(optimizer, step_size=1, gamma=0.5)
    train_step(model, optimizer)
    first.step()
    _, other = make_optimizer()
    resumed = StepLR(other, step_size=1, gamma=0.5)
    resumed.load_state_dict(first.state_dict())
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        resumed.step()
    assert order_warnings(record) == []


def test_training_runs_do_not_warn(tmp_path):
    schedulers = [
        {"type": "LinearLR", "start_factor": 0.1, "by_epoch": False, "begin": 0, "end": 4},
        {"type": "StepLR", "step_size": 3, "by_epoch": False},
    ]
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        result = run_training(
            {"param_scheduler": schedulers, "optim_wrapper": {"accumulative_counts": 2}},
            work_dir=tmp_path,
            max_iters=6,
        )
    assert result.exit_code == 0
    assert order_warnings(record) == []


def test_the_step_counter_is_removed_once_every_scheduler_made_its_first_step():
    import torch

    from torchkiln.optim import MultiStepLR, StepLR

    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    first = MultiStepLR(optimizer, milestones=[5])
    second = StepLR(optimizer, step_size=3)
    assert len(optimizer._optimizer_step_post_hooks) == 1
    optimizer.step()
    first.step()
    assert len(optimizer._optimizer_step_post_hooks) == 1  # the second has not stepped yet
    second.step()
    assert len(optimizer._optimizer_step_post_hooks) == 0
    # a scheduler built later is still checked
    with pytest.warns(UserWarning, match="before the optimizer"):
        StepLR(optimizer, step_size=3).step()
