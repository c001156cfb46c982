"""Components of ``torchkiln.evaluation``, by registry, for lazy lookup (imports nothing heavy)."""

from __future__ import annotations

COMPONENTS: dict[str, dict[str, str]] = {
    "METRICS": {
        "Accuracy": "torchkiln.evaluation.metrics.accuracy:Accuracy",
    },
    "EVALUATOR": {
        "Evaluator": "torchkiln.evaluation.evaluator:Evaluator",
    },
}
