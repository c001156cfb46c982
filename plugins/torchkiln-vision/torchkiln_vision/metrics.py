"""Classification metrics: per-class precision, recall and F1, and the confusion matrix.

Both read what the classifiers return in ``'predict'`` mode, ``{'pred_scores' or
'pred_labels', 'gt_labels'}``, or per-sample dicts with ``pred_label`` and ``gt_label``. Top-k
accuracy is torchkiln's own ``Accuracy`` metric, which reads the same outputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torchkiln.errors import ConfigError
from torchkiln.evaluation import BaseMetric

from torchkiln_vision.confusion_image import confusion_matrix_image

__all__ = ["ConfusionMatrix", "SingleLabelMetric", "confusion_matrix", "prediction_pairs"]

_ITEMS = ("precision", "recall", "f1-score")


def prediction_pairs(data_samples: Any) -> list[tuple[int, int]]:
    """``[(predicted, true), ...]`` per sample from a classifier's ``'predict'`` output."""
    if isinstance(data_samples, Mapping):
        preds = data_samples.get("pred_labels")
        if preds is None and data_samples.get("pred_scores") is not None:
            preds = torch.as_tensor(data_samples["pred_scores"]).argmax(dim=-1)
        gts = data_samples.get("gt_labels")
        if preds is None or gts is None:
            raise ConfigError(
                f"the metric needs 'pred_labels' (or 'pred_scores') and 'gt_labels', got keys {sorted(data_samples)}",
                where="val_evaluator",
            )
        pred_list = torch.as_tensor(preds).reshape(-1).tolist()
        gt_list = torch.as_tensor(gts).reshape(-1).tolist()
        return list(zip((int(p) for p in pred_list), (int(g) for g in gt_list)))
    if isinstance(data_samples, Sequence) and all(isinstance(s, Mapping) for s in data_samples):
        return [
            (
                int(torch.as_tensor(s["pred_label"]).reshape(-1)[0]),
                int(torch.as_tensor(s["gt_label"]).reshape(-1)[0]),
            )
            for s in data_samples
        ]
    raise ConfigError(
        f"the metric cannot read model outputs of type {type(data_samples).__name__}",
        where="val_evaluator",
        hint="the model's 'predict' mode should return {'pred_labels', 'gt_labels'} tensors",
    )


def confusion_matrix(pairs: Sequence[tuple[int, int]], num_classes: int) -> np.ndarray:
    """``(K, K)`` int64 counts; row = true class, column = predicted class."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    if pairs:
        array = np.asarray(pairs, dtype=np.int64)
        np.add.at(matrix, (array[:, 1], array[:, 0]), 1)
    return matrix


class _PairMetric(BaseMetric):
    """Collects ``(predicted, true)`` per sample; knows the classes."""

    def __init__(
        self,
        num_classes: int | None = None,
        collect_device: str = "cpu",
        prefix: str | None = None,
        collect_dir: str | None = None,
    ) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix, collect_dir=collect_dir)
        self.num_classes = num_classes

    def process(self, data_batch: Any, data_samples: Any) -> None:
        """Record ``(predicted, true)`` for every sample of the batch."""
        self.results.extend(prediction_pairs(data_samples))

    def class_names(self, results: Sequence[tuple[int, int]]) -> list[str]:
        """Class names from the dataset's ``classes``, else ``num_classes``, else the labels seen."""
        classes = (self.dataset_meta or {}).get("classes")
        if classes:
            return [str(c) for c in classes]
        k = self.num_classes or (1 + max((max(p, g) for p, g in results), default=0))
        return [str(i) for i in range(k)]


class SingleLabelMetric(_PairMetric):
    """Precision, recall and F1 in percent, per class and averaged over classes (macro).

    Keys: ``precision``, ``recall``, ``f1-score`` (the macro averages) and, with
    ``per_class``, ``precision/<class>``, ``recall/<class>``, ``f1-score/<class>``, under the
    prefix ``single-label``. A class never predicted has precision 0; one absent from the
    data has recall 0 and counts in the average, as in MMPretrain.

    :param items: which of ``precision``, ``recall``, ``f1-score`` to report.
    :param per_class: also report every class's values.
    :param num_classes: the number of classes when the dataset has no ``classes``.
    """

    default_prefix = "single-label"

    def __init__(
        self,
        items: Sequence[str] = _ITEMS,
        per_class: bool = True,
        num_classes: int | None = None,
        collect_device: str = "cpu",
        prefix: str | None = None,
        collect_dir: str | None = None,
    ) -> None:
        super().__init__(
            num_classes, collect_device=collect_device, prefix=prefix, collect_dir=collect_dir
        )
        unknown = [i for i in items if i not in _ITEMS]
        if unknown or not items:
            raise ConfigError(
                f"unknown items {unknown or items!r}",
                where="SingleLabelMetric.items",
                hint=f"choose among {', '.join(_ITEMS)}",
            )
        self.items = tuple(items)
        self.per_class = per_class

    def compute_metrics(self, results: list[tuple[int, int]]) -> dict[str, float]:
        """Per-class and macro-averaged precision, recall and F1 from the counts."""
        names = self.class_names(results)
        matrix = confusion_matrix(results, len(names)).astype(np.float64)
        hits = np.diag(matrix)
        predicted = matrix.sum(axis=0)
        actual = matrix.sum(axis=1)
        precision = np.divide(hits, predicted, out=np.zeros_like(hits), where=predicted > 0) * 100
        recall = np.divide(hits, actual, out=np.zeros_like(hits), where=actual > 0) * 100
        denominator = precision + recall
        f1 = np.divide(
            2 * precision * recall, denominator, out=np.zeros_like(hits), where=denominator > 0
        )
        values = {"precision": precision, "recall": recall, "f1-score": f1}
        out: dict[str, float] = {item: float(values[item].mean()) for item in self.items}
        if self.per_class:
            for item in self.items:
                for name, value in zip(names, values[item]):
                    out[f"{item}/{name}"] = float(value)
        return out


class ConfusionMatrix(_PairMetric):
    """The confusion matrix, returned as nested lists and drawn as an image.

    The key ``confusion_matrix/matrix`` holds the ``(K, K)`` counts (row: true class, column:
    predicted); it is kept in ``metrics.json`` and left out of the scalar logs. The image
    (see :func:`~torchkiln_vision.confusion_image.confusion_matrix_image`) goes to the run's
    visualizer as ``image_name``, at the current iteration, so the local backend writes a
    PNG under ``vis_data`` and TensorBoard shows it.

    :param num_classes: the number of classes when the dataset has no ``classes``.
    :param image_name: the name of the image sent to the visualizer (``None``: no image).
    """

    default_prefix = "confusion_matrix"

    def __init__(
        self,
        num_classes: int | None = None,
        image_name: str | None = "confusion_matrix",
        collect_device: str = "cpu",
        prefix: str | None = None,
        collect_dir: str | None = None,
    ) -> None:
        super().__init__(
            num_classes, collect_device=collect_device, prefix=prefix, collect_dir=collect_dir
        )
        self.image_name = image_name

    def compute_metrics(self, results: list[tuple[int, int]]) -> dict[str, Any]:
        """``{'matrix': counts}``; sends the image to the visualizer."""
        matrix = confusion_matrix(results, len(self.class_names(results)))
        if self.image_name:
            self._send_image(matrix)
        return {"matrix": matrix.tolist()}

    def _send_image(self, matrix: np.ndarray) -> None:
        from torchkiln.logging import MessageHub
        from torchkiln.visualization import Visualizer

        step = int(MessageHub.get_current_instance().get_info("iter", 0) or 0)
        Visualizer.get_current_instance().add_image(
            self.image_name, confusion_matrix_image(matrix), step=step
        )
