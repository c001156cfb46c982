"""Collate functions: turn a list of samples into one batch (registered in FUNCTIONS)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch.utils.data import default_collate as _torch_default_collate

from torchkiln.registry import FUNCTIONS

__all__ = ["default_collate", "pseudo_collate"]


@FUNCTIONS.register_module()
def default_collate(data_batch: Sequence[Any]) -> Any:
    """Stack samples into batched tensors, exactly as ``torch.utils.data.default_collate``.

    Tensors, numpy arrays and numbers become tensors with a leading batch dimension; tuples,
    lists and mappings keep their structure with each field collated. All tensors of a field
    must have the same shape.
    """
    return _torch_default_collate(data_batch)  # type: ignore[arg-type]  # torch annotates list; any sequence works


def _is_sequence(obj: Any) -> bool:
    return isinstance(obj, Sequence) and not isinstance(obj, (str, bytes))


@FUNCTIONS.register_module()
def pseudo_collate(data_batch: Sequence[Any]) -> Any:
    """Transpose samples into one batch of the same structure, without stacking anything.

    A list of ``(a, b)`` tuples becomes ``([a0, a1, ...], [b0, b1, ...])``; a list of dicts
    becomes a dict of lists; nested containers are transposed recursively. Leaves (tensors of
    varying shapes, strings, arbitrary objects) stay as they are, collected in lists, so a
    model or data preprocessor can batch them its own way.

    :raises ValueError: samples whose sequences differ in length.
    """
    if not _is_sequence(data_batch):
        raise TypeError(
            f"pseudo_collate expects a sequence of samples, got {type(data_batch).__name__}"
        )
    if len(data_batch) == 0:
        return []
    first = data_batch[0]
    if isinstance(first, Mapping):
        fields = {key: pseudo_collate([sample[key] for sample in data_batch]) for key in first}
        try:
            return type(first)(fields)  # type: ignore[call-arg]  # a concrete mapping type; TypeError is handled below
        except TypeError:  # a mapping type that cannot be built from a dict
            return fields
    if _is_sequence(first):
        length = len(first)
        if any(len(sample) != length for sample in data_batch):
            raise ValueError(
                "pseudo_collate: every sample in the batch must have the same number of fields"
            )
        columns = [pseudo_collate(list(column)) for column in zip(*data_batch)]
        if isinstance(first, tuple) and hasattr(first, "_fields"):  # namedtuple
            return type(first)(*columns)
        if isinstance(first, tuple):
            return tuple(columns)
        if isinstance(first, list):
            return columns
        try:
            return type(first)(columns)
        except TypeError:
            return columns
    return list(data_batch)
