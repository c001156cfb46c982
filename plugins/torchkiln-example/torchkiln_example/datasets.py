"""``ExampleDataset``: synthetic classification data, a fixed function of the seed."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

__all__ = ["ExampleDataset"]

SPLITS = ("train", "val", "test")


class ExampleDataset(Dataset):
    """Gaussian feature vectors around ``num_classes`` random centres, labelled by centre.

    The centres depend on ``seed`` only; the samples on ``seed`` and ``split``, so the
    ``train``, ``val`` and ``test`` splits of one seed share their classes but not their
    samples. The same arguments always give the same data, on every machine and in every
    worker; the classes are well separated, so a small model learns them quickly.

    :param num_samples: dataset length.
    :param in_features: size of each feature vector.
    :param num_classes: number of classes.
    :param seed: seed of the data (centres and samples).
    :param split: ``'train'``, ``'val'`` or ``'test'``: which samples of the seed's classes.
    :param noise: standard deviation of the samples around their centre.
    :param return_dict: items as ``{'inputs': x, 'labels': y}`` instead of ``(x, y)``.
    """

    def __init__(
        self,
        num_samples: int = 128,
        in_features: int = 8,
        num_classes: int = 3,
        seed: int = 0,
        split: str = "train",
        noise: float = 1.0,
        return_dict: bool = False,
    ) -> None:
        if num_samples < 1 or in_features < 1 or num_classes < 2:
            raise ValueError("ExampleDataset needs num_samples >= 1, in_features >= 1 and num_classes >= 2")
        if split not in SPLITS:
            raise ValueError(f"ExampleDataset: split must be one of {', '.join(SPLITS)}, got {split!r}")
        centres = torch.randn(num_classes, in_features, generator=torch.Generator().manual_seed(seed)) * 3.0
        generator = torch.Generator().manual_seed(seed * len(SPLITS) + SPLITS.index(split) + 1)
        labels = torch.arange(num_samples) % num_classes
        labels = labels[torch.randperm(num_samples, generator=generator)]
        self.inputs = centres[labels] + noise * torch.randn(num_samples, in_features, generator=generator)
        self.labels = labels
        self.return_dict = return_dict
        self.metainfo = {"classes": tuple(f"class_{i}" for i in range(num_classes))}

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor] | dict[str, torch.Tensor]:
        if self.return_dict:
            return {"inputs": self.inputs[index], "labels": self.labels[index]}
        return self.inputs[index], self.labels[index]
