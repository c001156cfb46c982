"""torchkiln-mlflow: an MLflow vis backend and the hook plugin that keeps one run across resumes.

Nothing heavy is imported here: torchkiln finds ``MLflowVisBackend`` through the
``torchkiln.vis_backends`` entry point and imports it (and MLflow) only when a config uses it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["MLflowVisBackend"]

if TYPE_CHECKING:  # pragma: no cover
    from torchkiln_mlflow.backend import MLflowVisBackend


def __getattr__(name: str) -> Any:
    if name == "MLflowVisBackend":
        from torchkiln_mlflow.backend import MLflowVisBackend

        return MLflowVisBackend
    raise AttributeError(f"module 'torchkiln_mlflow' has no attribute {name!r}")
