"""Built-in metrics."""

from __future__ import annotations

from torchkiln.evaluation.metrics.accuracy import Accuracy

__all__ = ["Accuracy"]
