"""``InstanceData``: per-instance fields of one sample (boxes, labels, scores, masks, ...).

Every data field holds one entry per instance, so all have the same length, and the element
can be indexed like a tensor: by an int, a slice, a list or array of indices, or a bool mask,
which selects the same instances from every field. ``InstanceData.cat`` joins elements.

Fields may be tensors, numpy arrays, strings, lists, tuples, or any type with ``__len__``,
``__getitem__`` and a ``cat`` classmethod (such as a boxes or masks class).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence, Sized
from typing import Any

import numpy as np
import torch

from torchkiln.structures.base_data_element import BaseDataElement

__all__ = ["IndexType", "InstanceData"]

IndexType = str | slice | int | list | torch.Tensor | np.ndarray

_CONCATENATES = (str, list, tuple)


def _join(parts: Sequence[Any]) -> Any:
    """Concatenate strings, lists or tuples (``+``), or objects with a ``cat`` classmethod."""
    if isinstance(parts[0], _CONCATENATES):
        joined = parts[0]
        for part in parts[1:]:
            joined = joined + part
        return joined
    return type(parts[0]).cat(list(parts))


class InstanceData(BaseDataElement):
    """Per-instance data fields of equal length, indexable and concatenable.

    Example::

        instances = InstanceData(metainfo=dict(img_shape=(32, 32)))
        instances.bboxes = torch.rand(4, 4)
        instances.labels = torch.tensor([0, 1, 1, 2])
        instances[instances.labels == 1]   # two instances, every field filtered
        len(instances)                     # 4
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("_metainfo_fields", "_data_fields"):
            super().__setattr__(name, value)
            return
        assert isinstance(value, Sized), (
            f"InstanceData field {name!r} must have a length (__len__), got {type(value).__name__}"
        )
        if len(self) > 0:
            assert len(value) == len(self), (
                f"InstanceData field {name!r} has length {len(value)}, but the element holds "
                f"{len(self)} instances"
            )
        super().__setattr__(name, value)

    __setitem__ = __setattr__

    def __getitem__(self, item: IndexType) -> Any:
        """Select instances (an int, slice, index list/array/tensor or bool mask), or a field
        by name (a str)."""
        if isinstance(item, list):
            item = np.array(item)
        if isinstance(item, np.ndarray):
            item = torch.from_numpy(item.astype(np.int64) if item.dtype == np.int32 else item)
        if isinstance(item, str):
            return getattr(self, item)
        if isinstance(item, torch.Tensor) and item.dtype not in (torch.bool, torch.long):
            raise AssertionError(
                f"InstanceData can be indexed by a bool or int64 tensor, got {item.dtype}"
            )
        assert isinstance(item, (slice, int, torch.Tensor)), (
            f"InstanceData cannot be indexed by a {type(item).__name__}"
        )
        if isinstance(item, int):
            if item >= len(self) or item < -len(self):
                raise IndexError(f"index {item} out of range for {len(self)} instances")
            # a one-element slice keeps the first dimension of every field
            item = slice(item, None, len(self))
        selected = type(self)(metainfo=self.metainfo)
        if isinstance(item, torch.Tensor):
            self._select_by_tensor(item, selected)
        else:
            for key, value in self.items():
                selected[key] = value[item]
        return selected

    def _select_by_tensor(self, item: torch.Tensor, selected: InstanceData) -> None:
        assert item.dim() == 1, "InstanceData is indexed along its first dimension only"
        if item.dtype == torch.bool:
            assert len(item) == len(self), (
                f"the bool mask has {len(item)} entries but the element holds {len(self)} instances"
            )
        for key, value in self.items():
            if isinstance(value, torch.Tensor):
                selected[key] = value[item]
            elif isinstance(value, np.ndarray):
                selected[key] = value[item.cpu().numpy()]
            elif isinstance(value, _CONCATENATES) or (
                hasattr(value, "__getitem__") and hasattr(value, "cat")
            ):
                positions = (
                    torch.nonzero(item).view(-1) if item.dtype == torch.bool else item
                ).tolist()
                parts = [value[slice(i, None, len(value))] for i in positions]
                selected[key] = _join(parts) if parts else value[slice(None, 0, None)]
            else:
                raise ValueError(
                    f"The type of `{key}` is `{type(value)}`, which has no attribute of `cat`, "
                    "so it does not support slice with `bool` (or an index list): give the "
                    "type a `cat` classmethod"
                )

    @staticmethod
    def cat(instances_list: list[InstanceData]) -> InstanceData:
        """Join elements with the same fields into one (the first one's metainfo)."""
        assert all(isinstance(item, InstanceData) for item in instances_list), (
            "InstanceData.cat takes a list of InstanceData"
        )
        assert len(instances_list) > 0, "InstanceData.cat needs at least one element"
        if len(instances_list) == 1:
            return instances_list[0]
        key_lists = [item.all_keys() for item in instances_list]
        same_keys = len({len(keys) for keys in key_lists}) == 1 and len(
            set(itertools.chain(*key_lists))
        ) == len(key_lists[0])
        assert same_keys, "InstanceData.cat needs elements with the same fields"
        first = instances_list[0]
        joined = type(first)(metainfo=first.metainfo)
        field_names = first.keys()
        for key in field_names:
            values = [item[key] for item in instances_list]
            head = values[0]
            if isinstance(head, torch.Tensor):
                joined[key] = torch.cat(values, dim=0)
            elif isinstance(head, np.ndarray):
                joined[key] = np.concatenate(values, axis=0)
            elif isinstance(head, _CONCATENATES) or hasattr(head, "cat"):
                joined[key] = _join(values)
            else:
                raise ValueError(
                    f"The type of `{key}` is `{type(head)}` which has no attribute of `cat`, "
                    "so InstanceData.cat cannot join it: give the type a `cat` classmethod"
                )
        return joined

    def __len__(self) -> int:
        """The number of instances (0 without data fields)."""
        values = self.values()
        return len(values[0]) if values else 0
