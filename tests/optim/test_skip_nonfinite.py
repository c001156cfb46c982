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
