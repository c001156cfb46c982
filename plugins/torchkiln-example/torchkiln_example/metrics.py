"""``ExampleAccuracy``: top-1 accuracy in percent."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torchkiln.evaluation import BaseMetric

__all__ = ["ExampleAccuracy"]


class ExampleAccuracy(BaseMetric):
    """Percentage of samples whose ``pred_label`` equals their ``gt_label``.

    ``data_samples`` is what ``ExampleMLP`` returns in ``'predict'`` mode: one dict per
    sample with ``pred_label`` and ``gt_label``. Reported as ``example/accuracy``.
    """

    default_prefix = "example"

    def process(self, data_batch: Any, data_samples: Sequence[dict[str, Any]]) -> None:
        """Record, per sample, whether the prediction was right."""
        for sample in data_samples:
            self.results.append(int(sample["pred_label"]) == int(sample["gt_label"]))

    def compute_metrics(self, results: list[bool]) -> dict[str, float]:
        """``{'accuracy': percent correct}`` (0.0 for no samples)."""
        if not results:
            return {"accuracy": 0.0}
        return {"accuracy": 100.0 * sum(results) / len(results)}
