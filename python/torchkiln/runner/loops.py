"""MMEngine's ``mmengine.runner.loops`` import path: the train, val and test loops.

The loops are defined in :mod:`torchkiln.runner.train_loops` and
:mod:`torchkiln.runner.eval_loops`; ``_InfiniteDataloaderIterator`` is the endless iterator
``IterBasedTrainLoop.dataloader_iterator`` returns.
"""

from __future__ import annotations

from torchkiln.runner.eval_loops import TestLoop, ValLoop
from torchkiln.runner.train_loops import (
    EpochBasedTrainLoop,
    IterBasedTrainLoop,
    _InfiniteDataloaderIterator,
)

__all__ = [
    "EpochBasedTrainLoop",
    "IterBasedTrainLoop",
    "TestLoop",
    "ValLoop",
    "_InfiniteDataloaderIterator",
]
