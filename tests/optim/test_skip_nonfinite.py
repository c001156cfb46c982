"""OptimWrapper.skip_nonfinite: a NaN/Inf loss is not applied and is counted."""

from __future__ import annotations

import torch
from torch import nn

from torchkiln.optim import OptimWrapper


def test_nonfinite_loss_is_skipped_and_counted() -> None:
    model = nn.Linear(2, 1)
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    wrapper.skip_nonfinite = True
    before = model.weight.detach().clone()
    wrapper.update_params(model(torch.ones(1, 2)).sum() * float("nan"))
    assert torch.equal(model.weight, before)
    assert wrapper.skipped_steps == 1
    wrapper.update_params(model(torch.ones(1, 2)).sum())
    assert not torch.equal(model.weight, before)
    assert wrapper.skipped_steps == 1


def test_without_skip_a_nan_loss_reaches_the_weights() -> None:
    model = nn.Linear(2, 1)
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    wrapper.update_params(model(torch.ones(1, 2)).sum() * float("nan"))
    assert torch.isnan(model.weight).all()


def _window_run(nan_at: int | None, windows: int = 1) -> tuple[OptimWrapper, nn.Parameter]:
    """``windows`` windows of 4 iterations with loss ``w`` (a NaN loss at iteration ``nan_at``)."""
    w = nn.Parameter(torch.zeros(1))
    wrapper = OptimWrapper(torch.optim.SGD([w], lr=1.0), accumulative_counts=4)
    wrapper.skip_nonfinite = True
    for i in range(1, 4 * windows + 1):
        loss = w.sum() * float("nan") if i == nan_at else w.sum()
        wrapper.update_params(loss)
    return wrapper, w


def test_a_nonfinite_loss_drops_its_whole_window_wherever_it_falls() -> None:
    # without a NaN: one step with the full gradient (4 x 1/4)
    wrapper, w = _window_run(None)
    assert w.item() == -1.0 and wrapper.skipped_steps == 0
    for nan_at in (1, 2, 4):
        wrapper, w = _window_run(nan_at)
        assert w.item() == 0.0, nan_at  # no step with 3/4 of the gradient
        assert w.grad is None or torch.count_nonzero(w.grad) == 0, nan_at
        assert wrapper.skipped_steps == 1, nan_at  # one dropped step, not one per NaN loss


def test_the_window_after_a_dropped_one_steps_with_its_own_gradient_only() -> None:
    wrapper, w = _window_run(2, windows=2)
    assert w.item() == -1.0
    assert wrapper.skipped_steps == 1
