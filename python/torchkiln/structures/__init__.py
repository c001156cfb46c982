"""Data structures that carry a sample's annotations and predictions through a model.

``BaseDataElement`` separates metainfo from data fields; ``InstanceData`` (per instance),
``LabelData`` (per sample) and ``PixelData`` (per pixel) add the checks and indexing of
their kind. Names resolve lazily, so importing the package does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torchkiln._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "BaseDataElement": "torchkiln.structures.base_data_element",
    "InstanceData": "torchkiln.structures.instance_data",
    "LabelData": "torchkiln.structures.label_data",
    "PixelData": "torchkiln.structures.pixel_data",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports("torchkiln.structures", _EXPORTS, globals())


if TYPE_CHECKING:  # pragma: no cover
    from torchkiln.structures.base_data_element import BaseDataElement as BaseDataElement
    from torchkiln.structures.instance_data import InstanceData as InstanceData
    from torchkiln.structures.label_data import LabelData as LabelData
    from torchkiln.structures.pixel_data import PixelData as PixelData
