"""BaseMetric: accumulate per-batch results, gather them across ranks, compute on rank 0."""

from __future__ import annotations

import copy
import logging
import warnings
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from torchkiln.dist import broadcast_object, collect_results, get_world_size, is_main_process

__all__ = ["BaseMetric"]

_warned_collect_dir = False


def _warn(message: str) -> None:
    """Log a warning on the current logger (the run logger during a run)."""
    from torchkiln.logging.mm_logger import print_log

    print_log(message, logger="current", level=logging.WARNING)


class BaseMetric(ABC):
    """Base class of metrics: :meth:`process` each batch, :meth:`evaluate` once at the end.

    Subclasses implement :meth:`process` (append one entry per *sample* to ``self.results``,
    so padding added by the sampler can be dropped; per-batch entries also work in a single
    process) and :meth:`compute_metrics` (turn the full list into ``{name: value}``).

    :param collect_device: ``'cpu'`` or ``'gpu'``; kept for MMEngine compatibility. Results
        travel through ``torch.distributed`` object collectives on whatever device the
        backend needs.
    :param prefix: prepended to every key as ``prefix/key``; the class's ``default_prefix``
        when None. A metric with neither logs a warning: its keys carry no prefix, so they
        may clash with another metric's.
    :param collect_dir: accepted for MMEngine compatibility and ignored (with one warning):
        results never pass through a shared folder.
    """

    default_prefix: str | None = None

    def __init__(
        self, collect_device: str = "cpu", prefix: str | None = None, collect_dir: str | None = None
    ) -> None:
        global _warned_collect_dir
        if collect_dir is not None and not _warned_collect_dir:
            _warned_collect_dir = True
            warnings.warn(
                "collect_dir is ignored: torchkiln gathers metric results through torch.distributed, "
                "not through a shared folder",
                stacklevel=2,
            )
        if collect_device not in ("cpu", "gpu", "cuda"):
            raise ValueError(f"collect_device must be 'cpu' or 'gpu', got {collect_device!r}")
        self.collect_device = collect_device
        self.collect_dir = None
        self.prefix = prefix or self.default_prefix
        if not self.prefix:
            _warn(
                f"The prefix is not set in metric class {type(self).__name__}: its keys carry "
                "no 'prefix/' part; set default_prefix on the class or pass prefix="
            )
        self.results: list[Any] = []
        self._dataset_meta: dict[str, Any] | None = None

    @property
    def dataset_meta(self) -> dict[str, Any] | None:
        """The evaluated dataset's ``metainfo`` (class names, ...), set by the runner."""
        return self._dataset_meta

    @dataset_meta.setter
    def dataset_meta(self, dataset_meta: dict[str, Any] | None) -> None:
        self._dataset_meta = copy.deepcopy(dataset_meta)

    @abstractmethod
    def process(self, data_batch: Any, data_samples: Sequence[Any] | Any) -> None:
        """Add this batch's results to ``self.results``.

        :param data_batch: the batch from the dataloader.
        :param data_samples: the model's outputs for it (``val_step``/``test_step``).
        """

    @abstractmethod
    def compute_metrics(self, results: list[Any]) -> dict[str, Any]:
        """Compute the metrics from every rank's results, in dataset order (runs on rank 0).

        :return: ``{name: value}`` without the prefix.
        """

    def evaluate(self, size: int) -> dict[str, Any]:
        """Gather results from all ranks, compute the metrics and clear the results.

        :param size: the length of the evaluated dataset; samples beyond it (sampler padding)
            are dropped.
        :return: ``{prefix/name: value}``, the same dict on every rank.
        """
        if not self.results:
            _warn(
                f"{type(self).__name__} got no results: does its process() append to "
                "self.results? (the evaluated dataset may also be empty)"
            )
        try:
            results = collect_results(self.results, size, self.collect_device)
            if get_world_size() == 1:
                return self._prefixed(self.compute_metrics(results))
            payload: tuple[str, Any] | None = None
            error: BaseException | None = None
            if is_main_process():
                try:
                    payload = ("ok", self._prefixed(self.compute_metrics(results)))
                except Exception as exc:  # the other ranks must not wait forever
                    error = exc
                    payload = ("error", f"{type(exc).__name__}: {exc}")
            payload = broadcast_object(payload, src=0)
            if error is not None:
                raise error
            status, value = payload
            if status == "error":
                raise RuntimeError(
                    f"{type(self).__name__}.compute_metrics failed on rank 0: {value}"
                )
            return value
        finally:
            self.results.clear()

    def _prefixed(self, metrics: dict[str, Any]) -> dict[str, Any]:
        if not self.prefix:
            return dict(metrics)
        return {f"{self.prefix}/{key}": value for key, value in metrics.items()}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(prefix={self.prefix!r})"
