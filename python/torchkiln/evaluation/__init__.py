"""Evaluation: the Evaluator, the BaseMetric contract and built-in metrics.

Names resolve lazily, so importing the package does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torchkiln._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "Accuracy": "torchkiln.evaluation.metrics.accuracy",
    "BaseMetric": "torchkiln.evaluation.metric",
    "Evaluator": "torchkiln.evaluation.evaluator",
    "build_evaluator": "torchkiln.evaluation.evaluator",
    "DumpResults": "torchkiln.evaluation.metrics.dump_results",
    "get_metric_value": "torchkiln.evaluation.metric_value",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports("torchkiln.evaluation", _EXPORTS, globals())


if TYPE_CHECKING:  # pragma: no cover
    from torchkiln.evaluation.evaluator import (
        Evaluator as Evaluator,
        build_evaluator as build_evaluator,
    )
    from torchkiln.evaluation.metric import BaseMetric as BaseMetric
    from torchkiln.evaluation.metric_value import get_metric_value as get_metric_value
    from torchkiln.evaluation.metrics.accuracy import Accuracy as Accuracy
    from torchkiln.evaluation.metrics.dump_results import DumpResults as DumpResults
