"""``get_metric_value``: find one metric in an evaluator's results by name or full key."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["get_metric_value"]


def get_metric_value(indicator: str, metrics: Mapping[str, Any]) -> Any:
    """The value of ``indicator`` in ``metrics``.

    :param indicator: a full key with its prefix (``'coco/bbox_mAP'``), matched exactly, or a
        bare name (``'bbox_mAP'``), matched against the part of each key after its last ``/``.
    :raises ValueError: nothing matches, or a bare name matches several keys (the error
        lists them).
    """
    if "/" in indicator:
        if indicator in metrics:
            return metrics[indicator]
        raise ValueError(f'The indicator "{indicator}" can not match any metric in {list(metrics)}')
    matched = [key for key in metrics if key.split("/")[-1] == indicator]
    if not matched:
        raise ValueError(f"The indicator {indicator} can not match any metric in {list(metrics)}")
    if len(matched) > 1:
        raise ValueError(
            f'The indicator "{indicator}" matches multiple metrics {matched}: '
            "give the full key with its prefix"
        )
    return metrics[matched[0]]
