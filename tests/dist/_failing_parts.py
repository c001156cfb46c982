"""Parts the failure-report tests put in a 2-process job (``type: _failing_parts.Name``):
one rank ends itself at a given training iteration, by a signal or by raising."""

from __future__ import annotations

import os
import signal

from torchkiln.dist import get_rank
from torchkiln.hooks import Hook
from torchkiln.model import DigitsMLP


class KillSelf(Hook):
    """Rank ``rank`` sends itself SIGKILL after iteration ``at`` (no Python code runs after)."""

    def __init__(self, rank: int = 1, at: int = 2) -> None:
        self.rank = rank
        self.at = at

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if runner.rank == self.rank and runner.iter + 1 >= self.at:
            os.kill(os.getpid(), signal.SIGKILL)


class RaisingMLP(DigitsMLP):
    """The demo MLP, whose ``forward`` on rank ``fail_rank`` raises at call ``fail_at``."""

    def __init__(self, fail_rank: int = 1, fail_at: int = 3, **kwargs) -> None:
        super().__init__(**kwargs)
        self.fail_rank = fail_rank
        self.fail_at = fail_at
        self.calls = 0

    def forward(self, inputs, labels=None, mode="tensor"):
        self.calls += 1
        if get_rank() == self.fail_rank and self.calls >= self.fail_at:
            raise ValueError(f"label table missing on rank {self.fail_rank}")
        return super().forward(inputs, labels, mode)
