"""torchkiln-wandb: a Weights & Biases vis backend and the hook plugin that keeps one run across resumes.

Nothing heavy is imported here: torchkiln finds ``WandbVisBackend`` through the
``torchkiln.vis_backends`` entry point and imports it (and wandb) only when a config uses it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["WandbVisBackend"]

if TYPE_CHECKING:  # pragma: no cover
    from torchkiln_wandb.backend import WandbVisBackend


def __getattr__(name: str) -> Any:
    if name == "WandbVisBackend":
        from torchkiln_wandb.backend import WandbVisBackend

        return WandbVisBackend
    raise AttributeError(f"module 'torchkiln_wandb' has no attribute {name!r}")
