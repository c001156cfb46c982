"""Demo classifiers for the built-in 8x8 digits data: an MLP and a small CNN.

Both take ``inputs`` of shape (N, 64), (N, 8, 8) or (N, 1, 8, 8) and ``labels`` of shape (N,),
or the per-sample sequences the default collate function (``pseudo_collate``) makes, which
they stack:

- ``mode='tensor'`` returns the logits (N, num_classes);
- ``mode='loss'`` returns ``{'loss': cross_entropy}``;
- ``mode='predict'`` returns ``{'pred_scores': logits (detached), 'gt_labels': labels}`` (plus
  ``'loss'``, the per-sample cross entropy (N,), when labels are given, reported as
  ``val/loss``), the batch-level dict the built-in ``Accuracy`` metric reads (no per-sample
  Python objects).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from torchkiln.model.base_model import BaseModel
from torchkiln.registry import MODELS

__all__ = ["DigitsCNN", "DigitsMLP", "stacked"]

_MODES = ("tensor", "loss", "predict")


def stacked(batch: Any) -> Any:
    """One tensor from a pseudo-collated sequence of per-sample tensors or numbers (a tensor
    or ``None`` is returned as it is)."""
    if isinstance(batch, (list, tuple)):
        if batch and all(isinstance(item, torch.Tensor) for item in batch):
            return torch.stack(list(batch))
        return torch.as_tensor(batch)
    return batch


class _Classifier(BaseModel):
    """Shared ``forward`` tail of the demo classifiers."""

    def _logits(self, inputs: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(
        self, inputs: torch.Tensor, labels: torch.Tensor | None = None, mode: str = "tensor"
    ) -> Any:
        """Logits, losses or predictions, by ``mode``.

        :param inputs: images, (N, 64), (N, 8, 8) or (N, 1, 8, 8).
        :param labels: class indices (N,), needed for ``'loss'``.
        :param mode: ``'tensor'``, ``'loss'`` or ``'predict'``.
        """
        if mode not in _MODES:
            raise ValueError(
                f"{type(self).__name__}: unknown mode {mode!r}; expected one of {_MODES}"
            )
        inputs, labels = stacked(inputs), stacked(labels)
        weight = next(self.parameters())
        if inputs.dtype != weight.dtype:
            inputs = inputs.to(weight.dtype)
        logits = self._logits(inputs)
        if mode == "tensor":
            return logits
        if labels is not None and labels.dtype != torch.long:
            labels = labels.long()
        if mode == "loss":
            if labels is None:
                raise ValueError(f"{type(self).__name__}.forward(mode='loss') needs labels")
            return {"loss": F.cross_entropy(logits, labels)}
        outputs = {"pred_scores": logits.detach(), "gt_labels": labels}
        if labels is not None:
            # Reported as val/loss by the evaluation loops (accumulated on the device). Per
            # sample, so the loops can leave out the samples a distributed sampler repeats.
            outputs["loss"] = F.cross_entropy(logits.float(), labels, reduction="none").detach()
        return outputs


@MODELS.register_module()
class DigitsMLP(_Classifier):
    """A multi-layer perceptron for 8x8 digits.

    :param hidden: width of the hidden layer, or a list of widths for several.
    :param num_classes: number of classes.
    :param in_features: input features (64 for 8x8 images).
    :param dropout: dropout probability before the head.
    :param data_preprocessor: preprocessor module or config.
    :param init_cfg: initialisation; default: Kaiming (fan_in, relu) for the hidden layers and
        N(0, 0.01^2) for the head. ``[]`` keeps PyTorch's defaults.
    """

    def __init__(
        self,
        hidden: int | Sequence[int] = 128,
        num_classes: int = 10,
        in_features: int = 64,
        dropout: float = 0.0,
        data_preprocessor: Mapping[str, Any] | nn.Module | None = None,
        init_cfg: Mapping[str, Any] | list[Mapping[str, Any]] | None = None,
    ) -> None:
        if init_cfg is None:
            init_cfg = {
                "type": "Kaiming",
                "layer": "Linear",
                "mode": "fan_in",
                "nonlinearity": "relu",
                "override": {"name": "head", "type": "Normal", "std": 0.01},
            }
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        widths = [hidden] if isinstance(hidden, int) else list(hidden)
        layers: list[nn.Module] = []
        prev = in_features
        for width in widths:
            layers += [nn.Linear(prev, width), nn.ReLU(inplace=True)]
            prev = width
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        self.in_features = in_features
        self.backbone = nn.Sequential(*layers)
        self.head = nn.Linear(prev, num_classes)

    def _logits(self, inputs: torch.Tensor) -> torch.Tensor:
        x = inputs.reshape(inputs.shape[0], -1)
        if x.shape[1] != self.in_features:
            raise ValueError(
                f"DigitsMLP expects {self.in_features} features per sample, got inputs of shape {tuple(inputs.shape)}"
            )
        return self.head(self.backbone(x))


@MODELS.register_module()
class DigitsCNN(_Classifier):
    """A small CNN for 8x8 digits: two conv-BN-ReLU blocks, max-pool, linear head.

    :param num_classes: number of classes.
    :param channels: output channels of the two conv blocks.
    :param dropout: dropout probability before the head.
    :param data_preprocessor: preprocessor module or config.
    :param init_cfg: initialisation; default: Kaiming (fan_out, relu) for convs, ones/zeros
        for BatchNorm, N(0, 0.01^2) for the head. ``[]`` keeps PyTorch's defaults.
    """

    def __init__(
        self,
        num_classes: int = 10,
        channels: Sequence[int] = (16, 32),
        dropout: float = 0.0,
        data_preprocessor: Mapping[str, Any] | nn.Module | None = None,
        init_cfg: Mapping[str, Any] | list[Mapping[str, Any]] | None = None,
    ) -> None:
        if init_cfg is None:
            init_cfg = [
                {"type": "Kaiming", "layer": "Conv2d", "mode": "fan_out", "nonlinearity": "relu"},
                {"type": "Constant", "layer": "_BatchNorm", "val": 1, "bias": 0},
                {"type": "Normal", "layer": "Linear", "std": 0.01},
            ]
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        c1, c2 = channels
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1, bias=False),
            nn.BatchNorm2d(c1),
            nn.ReLU(inplace=True),
            nn.Conv2d(c1, c2, 3, padding=1, bias=False),
            nn.BatchNorm2d(c2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.head = nn.Linear(c2 * 4 * 4, num_classes)

    def _logits(self, inputs: torch.Tensor) -> torch.Tensor:
        if inputs.dim() == 2 and inputs.shape[1] == 64:
            x = inputs.view(-1, 1, 8, 8)
        elif inputs.dim() == 3 and tuple(inputs.shape[1:]) == (8, 8):
            x = inputs.unsqueeze(1)
        elif inputs.dim() == 4 and tuple(inputs.shape[1:]) == (1, 8, 8):
            x = inputs
        else:
            raise ValueError(
                f"DigitsCNN expects inputs of shape (N, 64), (N, 8, 8) or (N, 1, 8, 8), got {tuple(inputs.shape)}"
            )
        return self.head(self.dropout(self.features(x).flatten(1)))
