"""Fixtures for the model tests: a minimal optimizer wrapper stand-in."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
import torch


class FakeOptimWrapper:
    """The two methods a model's ``train_step`` uses: backward, step and zero_grad in one call."""

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        self.optimizer = optimizer
        self.contexts: list[Any] = []
        self.losses: list[torch.Tensor] = []

    def optim_context(self, model: Any) -> contextlib.AbstractContextManager[None]:
        self.contexts.append(model)
        return contextlib.nullcontext()

    def update_params(self, loss: torch.Tensor) -> None:
        self.losses.append(loss)
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad()


@pytest.fixture
def make_optim_wrapper():
    """``make_optim_wrapper(params, lr=0.1, momentum=0.0)`` -> a FakeOptimWrapper around SGD."""

    def make(params: Any, lr: float = 0.1, momentum: float = 0.0) -> FakeOptimWrapper:
        return FakeOptimWrapper(torch.optim.SGD(params, lr=lr, momentum=momentum))

    return make
