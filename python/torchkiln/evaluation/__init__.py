"""Evaluation: the Evaluator, the BaseMetric contract and built-in metrics.

Names resolve lazily: the registry imports ``torchkiln.evaluation._components`` (and so this
package) without pulling in torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "Accuracy": "torchkiln.evaluation.metrics.accuracy",
    "BaseMetric": "torchkiln.evaluation.metric",
    "Evaluator": "torchkiln.evaluation.evaluator",
    "build_evaluator": "torchkiln.evaluation.evaluator",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'torchkiln.evaluation' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:  # pragma: no cover
    from torchkiln.evaluation.evaluator import Evaluator, build_evaluator
    from torchkiln.evaluation.metric import BaseMetric
    from torchkiln.evaluation.metrics.accuracy import Accuracy
