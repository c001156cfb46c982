"""``ClsDataPreprocessor``: images to the device, normalised there, mixed in training."""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torchkiln.errors import ConfigError, did_you_mean
from torchkiln.model import ImgDataPreprocessor

from torchkiln_vision.batch_augments import BatchAugment, CutMix, MixUp
from torchkiln_vision.classifier import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["BATCH_AUGMENTS", "ClsDataPreprocessor"]

#: Batch augmentations by name (a dotted import path names others).
BATCH_AUGMENTS: dict[str, type[BatchAugment]] = {"MixUp": MixUp, "CutMix": CutMix}

_WHERE = "model.data_preprocessor.batch_augments"


def _build_augment(cfg: Any, where: str) -> Any:
    if callable(cfg):
        return cfg
    if not isinstance(cfg, Mapping) or "type" not in cfg:
        raise ConfigError(
            f"a batch augment must be a config with a 'type', got {cfg!r}",
            where=where,
            hint="e.g. {type: MixUp, alpha: 0.8}",
        )
    args = dict(cfg)
    name = str(args.pop("type")).rpartition("::")[2]
    cls: Any = BATCH_AUGMENTS.get(name)
    if cls is None and "." in name:
        module, _, attr = name.rpartition(".")
        try:
            cls = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"cannot import batch augment {name!r}: {exc}", where=where) from None
    if cls is None:
        raise ConfigError(
            f"unknown batch augment {name!r}",
            where=where,
            hint=(did_you_mean(name, BATCH_AUGMENTS) or "")
            + f" known: {', '.join(BATCH_AUGMENTS)}",
        )
    try:
        return cls(**args)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"cannot build batch augment {name!r}: {exc}", where=where) from None


class ClsDataPreprocessor(ImgDataPreprocessor):
    """The classification preprocessor: move, convert, normalise, then mix (training only).

    Batches are ``{'inputs': (N, C, H, W) uint8, 'data_samples': (N,) labels}``. Images cross
    to the device as ``uint8`` (asynchronously, from pinned memory when the dataloader pins
    it) and become float and normalised there, so the workers only decode and augment.

    With ``batch_augments``, each training batch gets one of them (drawn with ``probs``; none
    when the probabilities sum to less than one and the draw falls beyond them) and its labels
    become ``(N, K)`` class probabilities. Validation and test batches are never mixed.

    :param mean: per-channel mean in the images' units (0-255 for ``uint8``); ImageNet's by
        default; ``None`` (with ``std``) skips normalisation.
    :param std: per-channel standard deviation, same units.
    :param num_classes: ``K``; needed with ``batch_augments`` (the classifiers fill it in).
    :param batch_augments: a list of ``{type: MixUp|CutMix, alpha: ...}`` configs, or
        MMPretrain's ``{augments: [...], probs: [...]}``.
    :param probs: the chance of each augment per batch (default: one of them, uniformly).
    :param to_rgb: swap the first and third channels (BGR data).
    :param pad_size_divisor: see ``ImgDataPreprocessor``.
    :param pad_value: see ``ImgDataPreprocessor``.
    :param non_blocking: asynchronous host-to-device copies (default ``True``).
    """

    def __init__(
        self,
        mean: Sequence[float] | None = IMAGENET_MEAN,
        std: Sequence[float] | None = IMAGENET_STD,
        num_classes: int | None = None,
        batch_augments: Sequence[Any] | Mapping[str, Any] | None = None,
        probs: Sequence[float] | None = None,
        to_rgb: bool = False,
        pad_size_divisor: int = 1,
        pad_value: float = 0,
        non_blocking: bool = True,
    ) -> None:
        super().__init__(
            mean=mean,
            std=std,
            pad_size_divisor=pad_size_divisor,
            pad_value=pad_value,
            bgr_to_rgb=to_rgb,
            non_blocking=non_blocking,
        )
        if isinstance(batch_augments, Mapping):
            probs = batch_augments.get("probs", probs)
            batch_augments = batch_augments.get("augments", [])
        self.augments = [
            _build_augment(c, f"{_WHERE}[{i}]") for i, c in enumerate(batch_augments or ())
        ]
        if self.augments and num_classes is None:
            raise ConfigError(
                "batch_augments need num_classes",
                where="model.data_preprocessor.num_classes",
                hint="set num_classes (the classifiers fill in their own)",
            )
        if probs is None:
            probs = [1.0 / len(self.augments)] * len(self.augments) if self.augments else []
        probs = [float(p) for p in probs]
        if len(probs) != len(self.augments) or any(p < 0 for p in probs) or sum(probs) > 1.0 + 1e-6:
            raise ConfigError(
                f"probs {probs} must give one non-negative chance per batch augment, summing to at most 1",
                where="model.data_preprocessor.probs",
            )
        self.probs = probs
        self.num_classes = num_classes

    def augment(
        self, inputs: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mix a training batch with one of the augments; labels become probabilities."""
        targets = (
            labels if labels.dim() == 2 else F.one_hot(labels.long(), self.num_classes).float()
        )
        draw = float(np.random.random_sample())
        for augment, p in zip(self.augments, self.probs):
            if draw < p:
                return augment(inputs, targets)
            draw -= p
        return inputs, targets

    def forward(self, data: Any, training: bool = False) -> Any:
        """Move and normalise the batch; in training, apply a batch augment.

        :param data: ``{'inputs': ..., 'data_samples': labels}`` (or ``(inputs, labels)``).
        :param training: whether this is a training step.
        """
        data = super().forward(data, training)
        if not (training and self.augments):
            return data
        if isinstance(data, dict):
            inputs, labels = self.augment(data["inputs"], data["data_samples"])
            return {**data, "inputs": inputs, "data_samples": labels}
        inputs, labels = self.augment(data[0], data[1])
        return type(data)([inputs, labels, *data[2:]])
