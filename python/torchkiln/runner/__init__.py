"""The Runner, its loops, checkpoints and resuming."""

from __future__ import annotations

from torchkiln.runner.base_loop import BaseLoop
from torchkiln.runner.checkpoint_io import (
    CheckpointError,
    CheckpointWriter,
    atomic_save,
    atomic_write_text,
    find_latest_checkpoint,
    load_checkpoint_file,
)
from torchkiln.runner.checkpointer import Checkpointer
from torchkiln.runner.eval_loops import TestLoop, ValLoop
from torchkiln.runner.model_state import LoadReport, load_model_state
from torchkiln.runner.runner import Runner
from torchkiln.runner.train_loops import EpochBasedTrainLoop, IterBasedTrainLoop

__all__ = [
    "BaseLoop",
    "CheckpointError",
    "CheckpointWriter",
    "Checkpointer",
    "EpochBasedTrainLoop",
    "IterBasedTrainLoop",
    "LoadReport",
    "Runner",
    "TestLoop",
    "ValLoop",
    "atomic_save",
    "atomic_write_text",
    "find_latest_checkpoint",
    "load_checkpoint_file",
    "load_model_state",
]
