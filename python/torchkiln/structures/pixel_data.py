"""``PixelData``: per-pixel fields of one sample (segmentation maps, heatmaps), all ``(C, H, W)``.

Every data field is a tensor or numpy array with the same height and width; a 2-D value is
stored as ``(1, H, W)``. Indexing with two slices or ints crops every field.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from torchkiln.structures.base_data_element import BaseDataElement

__all__ = ["PixelData"]


class PixelData(BaseDataElement):
    """Pixel-level data fields sharing one height and width.

    Example::

        pixels = PixelData(metainfo=dict(img_id=0), sem_seg=torch.zeros(1, 64, 48))
        pixels.shape            # (64, 48)
        pixels[10:20, :8].shape  # (10, 8)
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("_metainfo_fields", "_data_fields"):
            super().__setattr__(name, value)
            return
        assert isinstance(value, (torch.Tensor, np.ndarray)), (
            f"PixelData field {name!r} must be a tensor or numpy array, got {type(value).__name__}"
        )
        if self.shape:
            assert tuple(value.shape[-2:]) == self.shape, (
                f"PixelData field {name!r} has height and width {tuple(value.shape[-2:])}, "
                f"but the element's are {self.shape}"
            )
        assert value.ndim in (2, 3), (
            f"PixelData field {name!r} must have 2 or 3 dimensions, got {value.ndim}"
        )
        if value.ndim == 2:
            value = value[None]
            warnings.warn(
                f"PixelData field {name!r}: the (H, W) value is stored as (1, H, W)",
                stacklevel=2,
            )
        super().__setattr__(name, value)

    def __getitem__(self, item: Sequence[int | slice]) -> PixelData:
        """Crop every field: ``pixels[rows, cols]`` with ints or slices (an int keeps its
        dimension, as a one-long slice)."""
        if not isinstance(item, tuple):
            raise TypeError(
                f"Unsupported type {type(item)} for slicing PixelData: index it by (rows, columns)"
            )
        assert len(item) == 2, "PixelData is indexed by exactly two items: rows and columns"
        index: list[slice] = [slice(None)]
        for part in item:
            if isinstance(part, int):
                # a one-row (or one-column) slice keeps the dimension
                index.append(slice(part, part + 1 if part != -1 else None))
            elif isinstance(part, slice):
                index.append(part)
            else:
                raise TypeError(
                    f"The type of element in input must be int or slice, but got {type(part)}"
                )
        cropped = type(self)(metainfo=self.metainfo)
        for key, value in self.items():
            setattr(cropped, key, value[tuple(index)])
        return cropped

    @property
    def shape(self) -> tuple[int, ...] | None:
        """``(H, W)`` of the fields, or None without data fields."""
        values = self.values()
        return tuple(values[0].shape[-2:]) if values else None
