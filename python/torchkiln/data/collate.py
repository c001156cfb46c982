"""Collate functions: turn a list of samples into one batch.

Both are registered in ``COLLATE_FUNCTIONS`` (the ``FUNCTIONS`` registry, as in MMEngine) and
behave as MMEngine's functions of the same names:

- :func:`pseudo_collate`, the default of a dataloader config without ``collate_fn``,
  transposes samples into one batch of the same structure and stacks nothing;
- :func:`default_collate` does the same and stacks the leaves with
  ``torch.utils.data.default_collate`` (same-shaped tensors, arrays and numbers).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from torch.utils.data import default_collate as _torch_default_collate

from torchkiln.registry import FUNCTIONS

__all__ = ["COLLATE_FUNCTIONS", "default_collate", "pseudo_collate"]

#: The registry collate functions are looked up in (``collate_fn: {type: name}``): MMEngine's
#: name for the ``FUNCTIONS`` registry.
COLLATE_FUNCTIONS = FUNCTIONS


def _kept_whole(item: Any) -> bool:
    """Leaves neither function takes apart or stacks: strings, bytes and data elements
    (MMEngine's ``BaseDataElement`` and subclasses, recognised by name so that any
    implementation of the data-element API counts)."""
    if isinstance(item, (str, bytes)):
        return True
    return any(cls.__name__ == "BaseDataElement" for cls in type(item).__mro__)


def _transpose(data_batch: Sequence[Any], leaf: Callable[[Sequence[Any]], Any]) -> Any:
    """Transpose ``data_batch`` recursively, applying ``leaf`` to each column of leaves.

    Named tuples stay named tuples, mappings keep their type, other tuples become lists (as
    in torch), other sequences keep their type when it can be built from a list.
    """
    if len(data_batch) == 0:
        return []
    first = data_batch[0]
    if _kept_whole(first):
        return data_batch
    if isinstance(first, tuple) and hasattr(first, "_fields"):
        return type(first)(*(_transpose(column, leaf) for column in zip(*data_batch)))
    if isinstance(first, Sequence):
        size = len(first)
        if any(len(sample) != size for sample in data_batch):
            raise RuntimeError(
                "each sample in the batch should have the same number of fields; got "
                f"lengths {sorted({len(sample) for sample in data_batch})}"
            )
        columns = [_transpose(column, leaf) for column in zip(*data_batch)]
        if isinstance(first, tuple):
            return columns
        try:
            return type(first)(columns)  # type: ignore[call-arg]  # a list-like type, else TypeError
        except TypeError:
            return columns
    if isinstance(first, Mapping):
        fields = {key: _transpose([sample[key] for sample in data_batch], leaf) for key in first}
        try:
            return type(first)(fields)  # type: ignore[call-arg]  # a dict-like type, else TypeError
        except TypeError:
            return fields
    return leaf(data_batch)


def _as_is(column: Sequence[Any]) -> Sequence[Any]:
    return column


def _stacked(column: Sequence[Any]) -> Any:
    return _torch_default_collate(list(column))


@FUNCTIONS.register_module()
def pseudo_collate(data_batch: Sequence[Any]) -> Any:
    """Transpose samples into one batch of the same structure, stacking nothing.

    A list of dicts becomes a dict of lists; a list of ``(a, b)`` tuples becomes
    ``[(a0, a1, ...), (b0, b1, ...)]``; nested containers are transposed recursively. The
    leaves (tensors of any shape, numbers, strings, data samples) are kept as they are, in
    sequences, so the model's data preprocessor batches them its own way. This is the
    default ``collate_fn`` of a dataloader config, as in MMEngine.

    :raises RuntimeError: samples whose sequences differ in length.
    """
    return _transpose(data_batch, _as_is)


@FUNCTIONS.register_module()
def default_collate(data_batch: Sequence[Any]) -> Any:
    """Transpose samples like :func:`pseudo_collate` and stack the leaves into tensors.

    Leaves go through ``torch.utils.data.default_collate``: same-shaped tensors, numpy arrays
    and numbers become tensors with a leading batch dimension. Strings, bytes and data
    samples stay lists, as in MMEngine.

    :raises RuntimeError: samples whose sequences differ in length, or tensors of one field
        with different shapes.
    """
    return _transpose(data_batch, _stacked)
