"""``ClassificationDataset``: labelled images through a ``pipeline``, as the classifiers want."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.data import Dataset

from torchkiln_vision.pipeline import build_pipeline

__all__ = ["ClassificationDataset"]


def _plain_tensor(image: Any) -> torch.Tensor:
    """The pipeline's output as a plain tensor (a tv_tensors.Image or PIL image converted)."""
    if isinstance(image, torch.Tensor):
        return image.as_subclass(torch.Tensor) if type(image) is not torch.Tensor else image
    from torchvision.transforms.v2.functional import pil_to_tensor

    return pil_to_tensor(image)


class ClassificationDataset(Dataset):
    """Base of the datasets here: item ``i`` is ``{'inputs': image, 'data_samples': label}``.

    Subclasses fill ``self.labels`` and ``self.classes`` and implement :meth:`load_image`
    (a ``uint8`` ``(C, H, W)`` tensor). The ``pipeline`` runs in the dataloader workers; it
    should leave ``uint8`` images of one size (normalisation happens on the device, in
    ``ClsDataPreprocessor``).

    :param pipeline: a list of transform configs (see :mod:`torchkiln_vision.pipeline`).
    :param where: the config key path of this dataset, for messages.
    """

    def __init__(self, pipeline: Sequence[Any] | None = None, where: str = "dataset") -> None:
        self.pipeline = build_pipeline(pipeline, f"{where}.pipeline")
        self.labels: list[int] = []
        self.classes: tuple[str, ...] = ()

    @property
    def metainfo(self) -> dict[str, Any]:
        """``{'classes': names}``, given to the metrics as ``dataset_meta``."""
        return {"classes": self.classes}

    def load_image(self, index: int) -> torch.Tensor:
        """Sample ``index``'s image, ``uint8`` ``(C, H, W)``."""
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, Any]:
        image = self.pipeline(self.load_image(index))
        return {"inputs": _plain_tensor(image), "data_samples": self.labels[index]}
