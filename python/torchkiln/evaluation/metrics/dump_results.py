"""``DumpResults``: a metric that writes every prediction to a pickle file instead of scoring."""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from typing import Any

import torch

from torchkiln.evaluation.metric import BaseMetric
from torchkiln.logging.logger import print_log
from torchkiln.registry import METRICS
from torchkiln.runner.checkpoint_io import atomic_write_bytes

__all__ = ["DumpResults"]


def _to_cpu(value: Any) -> Any:
    """``value`` with tensors (also inside data elements, dicts, lists, tuples) on the CPU."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if hasattr(value, "cpu") and hasattr(value, "to_dict"):  # a BaseDataElement
        return value.cpu()
    if isinstance(value, dict):
        return {key: _to_cpu(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_cpu(item) for item in value)
    return value


@METRICS.register_module()
class DumpResults(BaseMetric):
    """Collect the model's predictions over the dataset and write them to ``out_file_path``.

    The file is a pickle of the list of predictions, one per sample, in dataset order (the
    same as gathering ``test_step`` outputs); it is written atomically on rank 0, and the
    metric reports no values.

    :param out_file_path: where to write; must end in ``.pkl`` or ``.pickle``.
    :raises ValueError: another suffix.
    """

    default_prefix = "dump"  # it reports no keys; a prefix keeps BaseMetric from warning

    def __init__(
        self, out_file_path: str, collect_device: str = "cpu", collect_dir: str | None = None
    ) -> None:
        super().__init__(collect_device=collect_device, collect_dir=collect_dir)
        if not out_file_path.endswith((".pkl", ".pickle")):
            raise ValueError(
                f"The output file must be a pkl file: DumpResults writes a pickle, got "
                f"{out_file_path!r} (use a .pkl or .pickle suffix)"
            )
        self.out_file_path = out_file_path

    def process(self, data_batch: Any, predictions: Sequence[Any]) -> None:
        """Keep this batch's predictions (moved to the CPU), one entry per sample."""
        self.results.extend(_to_cpu(predictions))

    def compute_metrics(self, results: list[Any]) -> dict[str, Any]:
        """Write ``results`` to the pickle file; report no metric values."""
        atomic_write_bytes(self.out_file_path, pickle.dumps(results))
        print_log(f"Results has been saved to {self.out_file_path}.", logger="current")
        return {}
