"""``wandb_tracking``: the hook side of :class:`~torchkiln_wandb.WandbVisBackend`.

Loaded at every run start through the ``torchkiln.plugins`` entry point; with no
``WandbVisBackend`` among the visualizer's backends each function returns at once, and none
runs per iteration. It connects the backend to the runner, keeps the W&B run id and folders in every
checkpoint and reopens that run when training resumes (see
:class:`torchkiln.visualization.tracking.TrackingHookPlugin`). wandb itself is imported only
when a run configures the backend.
"""

from __future__ import annotations

from typing import Any

from torchkiln.visualization.tracking import TrackingHookPlugin

__all__ = [
    "after_load_checkpoint",
    "after_run",
    "before_run",
    "before_save_checkpoint",
    "before_train",
]


def _backend_class() -> type:
    from torchkiln_wandb.backend import WandbVisBackend

    return WandbVisBackend


_HOOKS = TrackingHookPlugin(_backend_class)


def before_run(runner: Any) -> None:
    """Connect each W&B backend to the runner."""
    _HOOKS.before_run(runner)


def after_load_checkpoint(runner: Any, checkpoint: dict[str, Any]) -> None:
    """Remember the W&B run a loaded checkpoint names."""
    _HOOKS.after_load_checkpoint(runner, checkpoint)


def before_train(runner: Any) -> None:
    """Open the W&B run, or reopen the checkpoint's run on resume."""
    _HOOKS.before_train(runner)


def before_save_checkpoint(runner: Any, checkpoint: dict[str, Any]) -> None:
    """Keep the W&B run id and folders in the checkpoint."""
    _HOOKS.before_save_checkpoint(runner, checkpoint)


def after_run(runner: Any) -> None:
    """Set the status the W&B run ends with."""
    _HOOKS.after_run(runner)
