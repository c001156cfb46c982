"""``wandb_tracking``: the hook side of :class:`~torchkiln_wandb.WandbVisBackend`.

Loaded at every run start through the ``torchkiln.plugins`` entry point, which names
:data:`hooks`; with no ``WandbVisBackend`` among the visualizer's backends each method returns
at once, and none runs per iteration. It connects the backend to the runner, keeps the W&B run
id and folders in every checkpoint and reopens that run when training resumes (see
:class:`torchkiln.visualization.tracking.TrackingHookPlugin`). wandb itself is imported only
when a run configures the backend.
"""

from __future__ import annotations

from torchkiln.visualization.tracking import TrackingHookPlugin

__all__ = ["hooks"]


def _backend_class() -> type:
    from torchkiln_wandb.backend import WandbVisBackend

    return WandbVisBackend


hooks = TrackingHookPlugin(_backend_class)
"""The plugin object: its methods are the mount-point implementations."""
