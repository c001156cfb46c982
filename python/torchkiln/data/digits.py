"""The demo dataset: scikit-learn's bundled 8x8 handwritten digits (no download needed).

1,797 grey images, values 0..16, ten classes. Splits are a fixed function of ``seed``.
Optional augmentation draws its randomness only from ``(seed, epoch, index)``, so the same
sample in the same epoch is augmented identically whichever worker loads it and whether or
not the run was resumed.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from typing import Any, ClassVar

import numpy as np
import torch
from torch.utils.data import Dataset

from torchkiln.errors import UsageError
from torchkiln.registry import DATASETS

__all__ = ["DigitsDataset", "load_digits_arrays"]

SPLITS = ("train", "val", "test", "all")


@functools.lru_cache(maxsize=1)
def load_digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """``(images (1797, 64) float32 in 0..16, labels (1797,) int64)``, read once per process.

    Reads the CSV that ships inside scikit-learn directly (importing scikit-learn itself takes
    seconds); falls back to ``sklearn.datasets.load_digits`` if the file moved.
    """
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise UsageError(
            "DigitsDataset needs scikit-learn, which is not installed",
            where="DigitsDataset",
            hint="pip install 'torchkiln[demo]'",
        )
    path = os.path.join(
        next(iter(spec.submodule_search_locations)), "datasets", "data", "digits.csv.gz"
    )
    if os.path.exists(path):
        table = np.loadtxt(path, delimiter=",", dtype=np.float32)
        images, labels = table[:, :-1], table[:, -1].astype(np.int64)
    else:  # pragma: no cover - depends on the scikit-learn layout
        from sklearn.datasets import load_digits

        bunch = load_digits()
        images, labels = bunch.data.astype(np.float32), bunch.target.astype(np.int64)
    images = np.ascontiguousarray(images)
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels


def _split_indices(
    n: int, split: str, val_fraction: float, test_fraction: float, seed: int
) -> np.ndarray:
    if split == "all":
        return np.arange(n)
    order = np.random.default_rng(seed).permutation(n)
    n_val = round(n * val_fraction)
    n_test = round(n * test_fraction)
    if split == "val" or (split == "test" and n_test == 0):
        chosen = order[:n_val]
    elif split == "test":
        chosen = order[n_val : n_val + n_test]
    else:
        chosen = order[n_val + n_test :]
    return np.sort(chosen)


@DATASETS.register_module()
class DigitsDataset(Dataset):
    """scikit-learn's 8x8 digits as ``(inputs, label)`` pairs.

    :param split: ``'train'``, ``'val'``, ``'test'`` or ``'all'``. The held-out ``val``
        part is ``val_fraction`` of a permutation drawn from ``seed``; ``test`` is the next
        ``test_fraction`` of it, or the ``val`` part again when ``test_fraction`` is 0;
        ``train`` is the rest. Splits of one seed are disjoint.
    :param val_fraction: share of the data held out for validation.
    :param test_fraction: share held out for testing, separate from validation.
    :param seed: seed of the split and of the augmentation.
    :param augment: random shift of up to ``max_shift`` pixels (zero fill) and, if
        ``noise_std > 0``, Gaussian noise; drawn from ``(seed, epoch, index)`` only.
    :param max_shift: largest shift in pixels along each axis.
    :param noise_std: standard deviation of the added noise (in output units).
    :param normalize: scale pixel values from 0..16 to 0..1.
    :param as_image: items shaped ``(1, 8, 8)`` instead of ``(64,)``.

    Items: ``inputs`` float32, ``label`` an int64 0-d tensor. Call :meth:`set_epoch` each epoch
    (DistSamplerSeedHook does) so augmentation changes between epochs; the epoch lives in
    shared memory, so persistent DataLoader workers see it too.
    """

    METAINFO: ClassVar[dict[str, Any]] = {
        "classes": tuple(str(i) for i in range(10)),
        "num_classes": 10,
        "image_size": (8, 8),
    }

    def __init__(
        self,
        split: str = "train",
        val_fraction: float = 0.2,
        test_fraction: float = 0.0,
        seed: int = 0,
        augment: bool = False,
        max_shift: int = 1,
        noise_std: float = 0.0,
        normalize: bool = True,
        as_image: bool = False,
    ) -> None:
        if split not in SPLITS:
            raise UsageError(
                f"unknown DigitsDataset split {split!r}",
                where="DigitsDataset.split",
                hint=f"choose one of: {', '.join(SPLITS)}",
            )
        if not (
            0.0 <= val_fraction < 1.0
            and 0.0 <= test_fraction < 1.0
            and val_fraction + test_fraction < 1.0
        ):
            raise UsageError(
                f"val_fraction={val_fraction} and test_fraction={test_fraction} must be >= 0 and sum below 1",
                where="DigitsDataset",
            )
        if seed < 0:
            raise UsageError(f"seed must be >= 0, got {seed}", where="DigitsDataset.seed")
        images, labels = load_digits_arrays()
        self.split = split
        self.seed = int(seed)
        self.augment = bool(augment)
        self.max_shift = int(max_shift)
        self.noise_std = float(noise_std)
        self.normalize = bool(normalize)
        self.as_image = bool(as_image)
        self.indices = _split_indices(len(labels), split, val_fraction, test_fraction, self.seed)
        scale = 1.0 / 16.0 if normalize else 1.0
        self._images = (
            (images[self.indices] * np.float32(scale)).astype(np.float32).reshape(-1, 8, 8)
        )
        self._labels = torch.from_numpy(labels[self.indices].copy())
        self._inputs = torch.from_numpy(self._images.reshape(len(self.indices), -1).copy())
        if self.augment:
            pad = self.max_shift
            self._padded = np.pad(self._images, ((0, 0), (pad, pad), (pad, pad)))
        # Shared memory: persistent workers read the epoch the main process set.
        self._epoch = torch.zeros((), dtype=torch.int64)
        if self.augment:
            self._epoch.share_memory_()

    @property
    def metainfo(self) -> dict[str, Any]:
        """Class names and counts (``classes``, ``num_classes``, ``image_size``)."""
        return dict(self.METAINFO)

    @property
    def epoch(self) -> int:
        """The epoch augmentation draws from."""
        return int(self._epoch.item())

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation of epoch ``epoch``."""
        self._epoch.fill_(int(epoch))

    def __len__(self) -> int:
        return len(self.indices)

    def _augmented(self, index: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        pad = self.max_shift
        dy, dx = rng.integers(-pad, pad + 1, size=2) if pad > 0 else (0, 0)
        image = self._padded[index, pad + dy : pad + dy + 8, pad + dx : pad + dx + 8].copy()
        if self.noise_std > 0:
            image += rng.normal(0.0, self.noise_std, size=image.shape).astype(np.float32)
        return image

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        n = len(self.indices)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"DigitsDataset index {index} out of range for {n} samples")
        if self.augment:
            inputs = torch.from_numpy(self._augmented(index).reshape(-1))
        else:
            inputs = self._inputs[index].clone()
        if self.as_image:
            inputs = inputs.reshape(1, 8, 8)
        return inputs, self._labels[index].clone()

    def __repr__(self) -> str:
        return f"DigitsDataset(split={self.split!r}, size={len(self)}, seed={self.seed}, augment={self.augment})"
