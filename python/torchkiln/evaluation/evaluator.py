"""Evaluator: runs several metrics over the same outputs and merges their results."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, cast

from torchkiln.data.collate import pseudo_collate
from torchkiln.errors import BuildTypeError, ConfigValueError, UsageValueError
from torchkiln.evaluation.metric import BaseMetric
from torchkiln.registry import EVALUATOR, METRICS

__all__ = ["Evaluator", "build_evaluator"]


class _LengthMismatch(UsageValueError, AssertionError):
    """Predictions and input samples of different lengths (MMEngine asserts there)."""


def _as_plain(sample: Any) -> Any:
    """Data elements with ``to_dict()`` (MMEngine's ``BaseDataElement``) become plain dicts."""
    to_dict = getattr(sample, "to_dict", None)
    return to_dict() if callable(to_dict) and not isinstance(sample, Mapping) else sample


def _chunks(seq: Sequence[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(seq), size):
        yield list(seq[start : start + size])


@EVALUATOR.register_module()
class Evaluator:
    """Runs one or several metrics.

    :param metrics: a metric object, a METRICS config dict, or a list of either.
    """

    def __init__(
        self, metrics: BaseMetric | Mapping[str, Any] | Sequence[BaseMetric | Mapping[str, Any]]
    ) -> None:
        single = isinstance(metrics, (Mapping, BaseMetric)) or not isinstance(metrics, Sequence)
        items = [metrics] if single else cast("Sequence[Any]", metrics)
        self.metrics: list[BaseMetric] = []
        for i, item in enumerate(items):
            metric: Any = METRICS.build(item) if isinstance(item, Mapping) else item
            if not (
                callable(getattr(metric, "process", None))
                and callable(getattr(metric, "evaluate", None))
            ):
                raise BuildTypeError(
                    f"evaluator metric {i} is {type(metric).__name__}, not a metric",
                    where=f"evaluator.metrics[{i}]",
                    hint="give a BaseMetric subclass instance or a config dict {type: <Metric>, ...}",
                )
            self.metrics.append(metric)
        self._dataset_meta: dict[str, Any] | None = None

    @property
    def dataset_meta(self) -> dict[str, Any] | None:
        """The dataset's ``metainfo``; setting it sets it on every metric."""
        return self._dataset_meta

    @dataset_meta.setter
    def dataset_meta(self, dataset_meta: dict[str, Any] | None) -> None:
        self._dataset_meta = dataset_meta
        for metric in self.metrics:
            metric.dataset_meta = dataset_meta

    def process(self, data_samples: Any, data_batch: Any = None) -> None:
        """Hand one batch of model outputs (and the input batch) to every metric.

        :param data_samples: the model's outputs: a dict or tuple of batched tensors, or a
            list of per-sample items (objects with ``to_dict()`` are converted to dicts).
        :param data_batch: the batch from the dataloader.
        """
        if isinstance(data_samples, list):
            data_samples = [_as_plain(s) for s in data_samples]
        for metric in self.metrics:
            metric.process(data_batch, data_samples)

    def evaluate(self, size: int) -> dict[str, Any]:
        """Evaluate every metric and merge their results into one dict.

        :param size: the length of the evaluated dataset.
        :raises ConfigError: two metrics produce the same key.
        """
        merged: dict[str, Any] = {}
        owner: dict[str, str] = {}
        for i, metric in enumerate(self.metrics):
            label = f"{type(metric).__name__} (metrics[{i}])"
            for key, value in metric.evaluate(size).items():
                if key in merged:
                    raise ConfigValueError(
                        "There are multiple evaluation results with the same metric name: "
                        f"{key!r} is produced by both {owner[key]} and {label}",
                        where="evaluator",
                        hint="give one of them another prefix, e.g. prefix: 'val_b'",
                    )
                merged[key] = value
                owner[key] = label
        return merged

    def offline_evaluate(
        self, data_samples: Sequence[Any], data: Sequence[Any] | None = None, chunk_size: int = 1
    ) -> dict[str, Any]:
        """Evaluate saved per-sample predictions without running a model.

        :param data_samples: every sample's prediction and ground truth, in dataset order.
        :param data: the matching input samples, if the metrics need them; each chunk is
            transposed with :func:`~torchkiln.data.pseudo_collate` like a batch.
        :param chunk_size: samples handed to the metrics at once.
        :raises UsageValueError: ``chunk_size`` < 1, or ``data`` and ``data_samples`` differ
            in length (also an ``AssertionError``, which MMEngine raises there).
        """
        if chunk_size < 1:
            raise UsageValueError(f"chunk_size must be >= 1, got {chunk_size}")
        if data is not None and len(data) != len(data_samples):
            raise _LengthMismatch(
                f"data has {len(data)} items but data_samples has {len(data_samples)}: "
                "data_samples and data should have the same length",
                hint="pass one input sample per prediction, in the same order, or data=None",
            )
        for start, chunk in zip(
            range(0, len(data_samples), chunk_size), _chunks(data_samples, chunk_size)
        ):
            batch = None if data is None else pseudo_collate(list(data[start : start + chunk_size]))
            self.process(chunk, batch)
        return self.evaluate(len(data_samples))

    def __repr__(self) -> str:
        return f"Evaluator({self.metrics!r})"


def build_evaluator(evaluator: Any) -> Evaluator:
    """An :class:`Evaluator` from what a config's ``val_evaluator``/``test_evaluator`` holds.

    An Evaluator (or subclass) passes through; a dict with ``metrics`` is built through
    EVALUATOR (type ``Evaluator`` by default); any other dict, a metric object or a list
    builds a default Evaluator around them.
    """
    if isinstance(evaluator, Evaluator):
        return evaluator
    if isinstance(evaluator, Mapping) and "metrics" in evaluator:
        cfg = dict(evaluator)
        cfg.setdefault("type", "Evaluator")
        return EVALUATOR.build(cfg)
    return Evaluator(evaluator)
