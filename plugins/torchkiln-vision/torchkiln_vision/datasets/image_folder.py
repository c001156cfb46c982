"""``ImageFolder``: ``root/<class name>/<image files>``, one sub-folder per class."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch
from torchkiln.errors import ConfigError

from torchkiln_vision.datasets.base import ClassificationDataset

__all__ = ["IMAGE_EXTENSIONS", "ImageFolder"]

IMAGE_EXTENSIONS = (
    ".jpg",
    ".jpeg",
    ".png",
    ".bmp",
    ".gif",
    ".webp",
    ".tif",
    ".tiff",
    ".ppm",
    ".pgm",
)
_COLOR_TYPES = ("color", "grayscale", "unchanged")


class ImageFolder(ClassificationDataset):
    """Images in class sub-folders, decoded to ``uint8`` tensors in the workers.

    JPEG, PNG, WebP and GIF decode with ``torchvision.io`` (libjpeg-turbo, libpng); other
    formats through Pillow. Class indices follow ``classes`` when given (so a validation
    folder missing a class keeps the training indices), else the sorted sub-folder names.

    :param data_root: the folder holding one sub-folder per class.
    :param pipeline: per-sample transform configs.
    :param classes: class names in index order (default: sorted sub-folders).
    :param extensions: file endings that count as images (case-insensitive).
    :param color_type: ``'color'`` (3 channels), ``'grayscale'`` (1) or ``'unchanged'``.
    """

    def __init__(
        self,
        data_root: str,
        pipeline: Sequence[Any] | None = None,
        classes: Sequence[str] | None = None,
        extensions: Sequence[str] = IMAGE_EXTENSIONS,
        color_type: str = "color",
    ) -> None:
        super().__init__(pipeline)
        if color_type not in _COLOR_TYPES:
            raise ConfigError(
                f"color_type must be one of {_COLOR_TYPES}, got {color_type!r}",
                where="dataset.color_type",
            )
        if not os.path.isdir(data_root):
            raise ConfigError(
                f"image folder {data_root!r} does not exist",
                where="dataset.data_root",
                hint="give a folder with one sub-folder of images per class "
                "(python -m torchkiln_vision.shapes data/shapes makes an example)",
            )
        folders = sorted(
            e.name for e in os.scandir(data_root) if e.is_dir() and not e.name.startswith(".")
        )
        self.classes = tuple(classes) if classes is not None else tuple(folders)
        if not self.classes:
            raise ConfigError(
                f"image folder {data_root!r} has no class sub-folders", where="dataset.data_root"
            )
        unknown = sorted(set(folders) - set(self.classes))
        if unknown:
            raise ConfigError(
                f"sub-folders {unknown} of {data_root!r} are not in classes",
                where="dataset.classes",
            )
        endings = tuple(e.lower() for e in extensions)
        self.paths: list[str] = []
        for index, name in enumerate(self.classes):
            folder = os.path.join(data_root, name)
            if not os.path.isdir(folder):
                continue
            for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
                dirnames.sort()
                for filename in sorted(filenames):
                    if filename.lower().endswith(endings):
                        self.paths.append(os.path.join(dirpath, filename))
                        self.labels.append(index)
        if not self.paths:
            raise ConfigError(
                f"image folder {data_root!r} holds no images ({', '.join(endings)})",
                where="dataset.data_root",
            )
        self.data_root = data_root
        self.color_type = color_type

    def load_image(self, index: int) -> torch.Tensor:
        """Decode image ``index`` to ``uint8`` ``(C, H, W)``."""
        from torchvision.io import ImageReadMode, decode_image

        mode = {
            "color": ImageReadMode.RGB,
            "grayscale": ImageReadMode.GRAY,
            "unchanged": ImageReadMode.UNCHANGED,
        }
        path = self.paths[index]
        try:
            return decode_image(path, mode=mode[self.color_type])
        except RuntimeError:  # a format torchvision.io does not decode
            return self._load_with_pillow(path)

    def _load_with_pillow(self, path: str) -> torch.Tensor:
        from PIL import Image
        from torchvision.transforms.v2.functional import pil_to_tensor

        with Image.open(path) as image:
            if self.color_type != "unchanged":
                image = image.convert("RGB" if self.color_type == "color" else "L")
            return pil_to_tensor(image)
