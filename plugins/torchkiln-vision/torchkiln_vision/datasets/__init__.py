"""Image classification datasets: an image folder and the CIFAR pickled-batch format."""

from __future__ import annotations

__all__ = ["CIFAR10", "CIFAR100", "ClassificationDataset", "ImageFolder"]


def __getattr__(name: str) -> object:
    if name in ("CIFAR10", "CIFAR100"):
        from torchkiln_vision.datasets import cifar

        return getattr(cifar, name)
    if name == "ImageFolder":
        from torchkiln_vision.datasets.image_folder import ImageFolder

        return ImageFolder
    if name == "ClassificationDataset":
        from torchkiln_vision.datasets.base import ClassificationDataset

        return ClassificationDataset
    raise AttributeError(f"module 'torchkiln_vision.datasets' has no attribute {name!r}")
