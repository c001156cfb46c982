"""The Runner, its loops, checkpoints and resuming."""

from __future__ import annotations

from torchkiln.logging.log_processor import LogProcessor
from torchkiln.plugin_host.priority import Priority, get_priority
from torchkiln.runner.activation_checkpointing import turn_on_activation_checkpointing
from torchkiln.runner.amp import autocast
from torchkiln.runner.base_loop import BaseLoop
from torchkiln.runner.checkpoint import (
    CheckpointLoader,
    get_state_dict,
    load_checkpoint,
    load_state_dict,
    save_checkpoint,
    weights_to_cpu,
)
from torchkiln.runner.checkpoint_io import (
    CheckpointError,
    CheckpointWriter,
    atomic_save,
    atomic_write_text,
    find_latest_checkpoint,
    load_checkpoint_file,
)
from torchkiln.runner.checkpointer import Checkpointer
from torchkiln.runner.environment import set_random_seed
from torchkiln.runner.eval_loops import TestLoop, ValLoop
from torchkiln.runner.model_state import LoadReport, load_model_state
from torchkiln.runner.runner import Runner
from torchkiln.runner.train_loops import EpochBasedTrainLoop, IterBasedTrainLoop

__all__ = [
    "BaseLoop",
    "CheckpointError",
    "CheckpointLoader",
    "CheckpointWriter",
    "Checkpointer",
    "EpochBasedTrainLoop",
    "IterBasedTrainLoop",
    "LoadReport",
    "LogProcessor",
    "Priority",
    "Runner",
    "TestLoop",
    "ValLoop",
    "atomic_save",
    "atomic_write_text",
    "autocast",
    "find_latest_checkpoint",
    "get_priority",
    "get_state_dict",
    "load_checkpoint",
    "load_checkpoint_file",
    "load_model_state",
    "load_state_dict",
    "save_checkpoint",
    "set_random_seed",
    "turn_on_activation_checkpointing",
    "weights_to_cpu",
]
