"""Top-k classification accuracy, in percent."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from torchkiln.errors import UsageKeyError, UsageTypeError, UsageValueError
from torchkiln.evaluation.metric import BaseMetric
from torchkiln.registry import METRICS

__all__ = ["Accuracy"]

_SCORE_KEYS = ("pred_scores", "pred_score", "scores", "logits")
_PRED_LABEL_KEYS = ("pred_labels", "pred_label")
_GT_KEYS = ("gt_labels", "gt_label", "labels", "label", "targets", "target")

_FORMS = (
    "a dict {'pred_scores': (N, C), 'gt_labels': (N,)}, a tuple (scores (N, C), labels (N,)), "
    "or a list of per-sample dicts with 'pred_score' (C,) or 'pred_label' and 'gt_label'"
)


def _first(mapping: Mapping[str, Any], keys: Sequence[str]) -> Any:
    for key in keys:
        if key in mapping and mapping[key] is not None:
            return mapping[key]
    return None


def _label_tensor(value: Any) -> torch.Tensor:
    """Labels as a 1-D int64 tensor (accepts ints, lists, (N,) or (N, 1) tensors)."""
    labels = torch.as_tensor(value)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim == 0:
        labels = labels.reshape(1)
    return labels.long()


def _sample_label(value: Any) -> int:
    """One sample's label: an int or a tensor of one element."""
    return int(torch.as_tensor(value).reshape(-1)[0])


@METRICS.register_module()
class Accuracy(BaseMetric):
    """Top-k accuracy in percent (0..100), keyed ``top1``, ``top5``, ... (``accuracy/top1``).

    Accepted model outputs (``data_samples``):

    - a dict of batched tensors ``{'pred_scores': (N, C), 'gt_labels': (N,)}`` (``pred_labels``
      may replace ``pred_scores``);
    - a tuple ``(scores (N, C), labels (N,))``;
    - a list of per-sample dicts ``{'pred_score': (C,) or 'pred_label', 'gt_label'}``;
    - scores alone, with labels taken from ``data_batch`` (its last element, or its
      ``gt_labels``/``labels`` key).

    A sample is correct at ``k`` when its label is among the ``k`` highest scores (and, with a
    threshold, that score exceeds it). With predicted labels only, every ``k`` is top-1.

    :param topk: one ``k`` or several; values above the number of classes are clamped to it
        (with a warning).
    :param thrs: a score threshold, several, or None (no threshold). With several thresholds
        keys are ``top{k}_thr-{thr:.2f}`` (``top{k}_no-thr`` for None).
    :param collect_device: see :class:`BaseMetric`.
    :param prefix: key prefix, ``'accuracy'`` by default.
    :param collect_dir: see :class:`BaseMetric`.
    """

    default_prefix = "accuracy"

    def __init__(
        self,
        topk: int | Sequence[int] = (1,),
        thrs: float | Sequence[float | None] | None = None,
        collect_device: str = "cpu",
        prefix: str | None = None,
        collect_dir: str | None = None,
    ) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix, collect_dir=collect_dir)
        self.topk = (int(topk),) if isinstance(topk, int) else tuple(int(k) for k in topk)
        if not self.topk or any(k < 1 for k in self.topk):
            raise UsageValueError(
                f"Accuracy topk must be positive integers, got {topk!r}", where="Accuracy.topk"
            )
        self.thrs = (thrs,) if thrs is None or isinstance(thrs, (int, float)) else tuple(thrs)
        if not self.thrs:
            raise UsageValueError(
                "Accuracy thrs must not be empty (use None for no threshold)", where="Accuracy.thrs"
            )
        self.keys = [self._key(k, thr) for k in self.topk for thr in self.thrs]
        self._warned: set[str] = set()

    def _key(self, k: int, thr: float | None) -> str:
        if len(self.thrs) == 1:
            return f"top{k}"
        return f"top{k}_no-thr" if thr is None else f"top{k}_thr-{thr:.2f}"

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(message, stacklevel=3)

    # ------------------------------------------------------------------ input forms
    def _labels_from_batch(self, data_batch: Any) -> torch.Tensor:
        if isinstance(data_batch, Mapping):
            labels = _first(data_batch, _GT_KEYS)
            if labels is not None:
                return _label_tensor(labels)
        elif (
            isinstance(data_batch, (tuple, list))
            and len(data_batch) >= 2
            and isinstance(data_batch[-1], torch.Tensor)
        ):
            return _label_tensor(data_batch[-1])
        raise UsageKeyError(
            "Accuracy found no ground-truth labels in the model outputs nor in the data batch",
            where="Accuracy.process",
            hint="accepted outputs: " + _FORMS,
        )

    def _parse(
        self, data_batch: Any, data_samples: Any
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor]:
        """``(scores or None, predicted labels or None, gt labels)`` from any accepted form."""
        if isinstance(data_samples, Mapping):
            scores = _first(data_samples, _SCORE_KEYS)
            preds = _first(data_samples, _PRED_LABEL_KEYS)
            gt = _first(data_samples, _GT_KEYS)
            labels = _label_tensor(gt) if gt is not None else self._labels_from_batch(data_batch)
            if scores is None and preds is None:
                raise UsageKeyError(
                    f"Accuracy got a dict with keys {sorted(data_samples)} but no scores or predicted labels",
                    where="Accuracy.process",
                    hint="accepted outputs: " + _FORMS,
                )
            return (
                torch.as_tensor(scores) if scores is not None else None,
                _label_tensor(preds) if scores is None else None,
                labels,
            )
        if isinstance(data_samples, torch.Tensor):
            return self._from_tensor(data_samples), None, self._labels_from_batch(data_batch)
        if (
            isinstance(data_samples, Sequence)
            and data_samples
            and all(isinstance(s, Mapping) for s in data_samples)
        ):
            gts = [_first(s, _GT_KEYS) for s in data_samples]
            if any(g is None for g in gts):
                raise UsageKeyError(
                    "Accuracy: a per-sample dict has no 'gt_label'",
                    where="Accuracy.process",
                    hint="accepted outputs: " + _FORMS,
                )
            labels = torch.tensor([_sample_label(g) for g in gts], dtype=torch.long)
            scores = [_first(s, ("pred_score", "pred_scores", "scores")) for s in data_samples]
            if all(s is not None for s in scores):
                return torch.stack([torch.as_tensor(s).reshape(-1) for s in scores]), None, labels
            preds = [_first(s, _PRED_LABEL_KEYS) for s in data_samples]
            if any(p is None for p in preds):
                raise UsageKeyError(
                    "Accuracy: a per-sample dict has neither 'pred_score' nor 'pred_label'",
                    where="Accuracy.process",
                    hint="accepted outputs: " + _FORMS,
                )
            return None, torch.tensor([_sample_label(p) for p in preds], dtype=torch.long), labels
        is_pair = isinstance(data_samples, (tuple, list)) and len(data_samples) == 2
        if is_pair and isinstance(data_samples[0], torch.Tensor):
            first, labels = data_samples
            labels = _label_tensor(labels)
            if first.ndim == 1 and not first.is_floating_point():
                return None, first.long(), labels
            return self._from_tensor(first), None, labels
        raise UsageTypeError(
            f"Accuracy cannot read model outputs of type {type(data_samples).__name__}",
            where="Accuracy.process",
            hint="accepted outputs: " + _FORMS,
        )

    @staticmethod
    def _from_tensor(scores: torch.Tensor) -> torch.Tensor:
        if scores.ndim != 2:
            raise UsageValueError(
                f"Accuracy expects scores shaped (N, C), got {tuple(scores.shape)}",
                where="Accuracy.process",
                hint="accepted outputs: " + _FORMS,
            )
        return scores

    # ------------------------------------------------------------------ metric API
    def process(self, data_batch: Any, data_samples: Any) -> None:
        """Record, per sample, whether it is correct at each (k, threshold); vectorised per batch."""
        scores, preds, labels = self._parse(data_batch, data_samples)
        if scores is not None:
            scores = self._from_tensor(scores)
            if scores.shape[0] != labels.shape[0]:
                raise UsageValueError(
                    f"Accuracy got {scores.shape[0]} score rows but {labels.shape[0]} labels",
                    where="Accuracy.process",
                )
            num_classes = scores.shape[1]
            maxk = max(self.topk)
            if maxk > num_classes:
                self._warn_once(
                    "clamp",
                    f"Accuracy: topk={maxk} exceeds the {num_classes} classes; using k={num_classes}",
                )
                maxk = num_classes
            top_scores, top_idx = scores.detach().topk(maxk, dim=1)
            hits = top_idx == labels.to(top_idx.device).view(-1, 1)
            columns = []
            for k in self.topk:
                kk = min(k, num_classes)
                for thr in self.thrs:
                    hit = hits[:, :kk]
                    if thr is not None:
                        hit = hit & (top_scores[:, :kk] > thr)
                    columns.append(hit.any(dim=1))
            table = torch.stack(columns, dim=1)
        else:
            assert preds is not None
            if preds.shape[0] != labels.shape[0]:
                raise UsageValueError(
                    f"Accuracy got {preds.shape[0]} predicted labels but {labels.shape[0]} labels",
                    where="Accuracy.process",
                )
            if max(self.topk) > 1:
                self._warn_once(
                    "labels", "Accuracy: only predicted labels were given, so every top-k is top-1"
                )
            correct = preds.to(labels.device) == labels
            table = correct.view(-1, 1).expand(-1, len(self.keys))
        # One small tuple per sample: cheap to gather, and sampler padding can be dropped.
        self.results.extend(tuple(row) for row in table.cpu().tolist())

    def compute_metrics(self, results: list[Any]) -> dict[str, float]:
        """Percent of samples correct at each key; NaN for every key when there are no samples."""
        total = len(results)
        if total == 0:
            return {key: float("nan") for key in self.keys}
        counts = [0] * len(self.keys)
        for row in results:
            for j, flag in enumerate(row):
                counts[j] += flag
        return {key: counts[j] * 100.0 / total for j, key in enumerate(self.keys)}
