"""``CIFAR10`` and ``CIFAR100``: the standard pickled batches (``cifar-10-batches-py``) on disk.

The files are read with an unpickler that accepts only numpy arrays and plain containers,
so a tampered file cannot run code.
"""

from __future__ import annotations

import io
import os
import pickle
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torchkiln.errors import ConfigError

from torchkiln_vision.datasets.base import ClassificationDataset

__all__ = ["CIFAR10", "CIFAR100", "read_cifar_file"]

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"),
    ("copyreg", "_reconstructor"),
    ("builtins", "object"),
}


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a CIFAR file")


def read_cifar_file(path: str) -> dict[str, Any]:
    """One pickled CIFAR file as a dict with ``str`` keys."""
    with open(path, "rb") as fh:
        obj = _ArrayUnpickler(io.BytesIO(fh.read()), encoding="bytes").load()
    if not isinstance(obj, dict):
        raise ConfigError(f"{path!r} is not a CIFAR batch file (it holds a {type(obj).__name__})")
    return {(k.decode() if isinstance(k, bytes) else k): v for k, v in obj.items()}


def _names(values: Sequence[Any]) -> tuple[str, ...]:
    return tuple(v.decode() if isinstance(v, bytes) else str(v) for v in values)


class CIFAR10(ClassificationDataset):
    """CIFAR-10 from its python batches: ``data_batch_1..5`` (train), ``test_batch``, ``batches.meta``.

    Images are kept in memory as one ``uint8`` ``(N, 3, 32, 32)`` tensor.

    :param data_root: the folder holding the batch files (``cifar-10-batches-py``).
    :param split: ``'train'`` or ``'test'``.
    :param pipeline: per-sample transform configs.
    """

    train_files: tuple[str, ...] = tuple(f"data_batch_{i}" for i in range(1, 6))
    test_files: tuple[str, ...] = ("test_batch",)
    meta_file = "batches.meta"
    meta_key = "label_names"
    label_key = "labels"

    def __init__(
        self, data_root: str, split: str = "train", pipeline: Sequence[Any] | None = None
    ) -> None:
        super().__init__(pipeline)
        if split not in ("train", "test"):
            raise ConfigError(
                f"split must be 'train' or 'test', got {split!r}", where="dataset.split"
            )
        files = self.train_files if split == "train" else self.test_files
        missing = [
            f for f in (*files, self.meta_file) if not os.path.isfile(os.path.join(data_root, f))
        ]
        if missing:
            raise ConfigError(
                f"{type(self).__name__} files missing under {data_root!r}: {', '.join(missing)}",
                where="dataset.data_root",
                hint="give the extracted python-format folder (e.g. cifar-10-batches-py); runs never download",
            )
        arrays, labels = [], []
        for name in files:
            batch = read_cifar_file(os.path.join(data_root, name))
            arrays.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            labels.extend(int(v) for v in batch[self.label_key])
        self.images = torch.from_numpy(np.concatenate(arrays))
        self.labels = labels
        self.classes = _names(
            read_cifar_file(os.path.join(data_root, self.meta_file))[self.meta_key]
        )
        self.data_root = data_root
        self.split = split

    def load_image(self, index: int) -> torch.Tensor:
        """Image ``index``, ``uint8`` ``(3, 32, 32)``."""
        return self.images[index]


class CIFAR100(CIFAR10):
    """CIFAR-100 from its python files: ``train``, ``test``, ``meta`` (the 100 fine labels).

    :param data_root: the folder holding the files (``cifar-100-python``).
    :param split: ``'train'`` or ``'test'``.
    :param pipeline: per-sample transform configs.
    """

    train_files = ("train",)
    test_files = ("test",)
    meta_file = "meta"
    meta_key = "fine_label_names"
    label_key = "fine_labels"
