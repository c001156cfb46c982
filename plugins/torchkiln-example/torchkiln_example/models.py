"""``ExampleMLP``: a small multi-layer perceptron classifier."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from torchkiln.model import BaseModel

__all__ = ["ExampleMLP"]


class ExampleMLP(BaseModel):
    """A classifier ``Linear -> ReLU -> ... -> Linear`` over flat feature vectors.

    :param in_features: size of each input vector.
    :param num_classes: number of classes.
    :param hidden: widths of the hidden layers.
    :param data_preprocessor: see :class:`torchkiln.model.BaseModel`.
    :param init_cfg: see :class:`torchkiln.model.BaseModule`.
    """

    def __init__(
        self,
        in_features: int = 8,
        num_classes: int = 3,
        hidden: list[int] | tuple[int, ...] = (32,),
        data_preprocessor: Mapping[str, Any] | nn.Module | None = None,
        init_cfg: Mapping[str, Any] | list[Mapping[str, Any]] | None = None,
    ) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        layers: list[nn.Module] = []
        width = in_features
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, inputs: torch.Tensor, labels: torch.Tensor | None = None, mode: str = "tensor") -> Any:
        """``'tensor'``: logits; ``'loss'``: ``{'loss': cross entropy}``; ``'predict'``: one dict per sample.

        :param inputs: ``(N, in_features)`` float tensor.
        :param labels: ``(N,)`` class indices (needed for ``'loss'``).
        :param mode: ``'tensor'``, ``'loss'`` or ``'predict'``.
        """
        logits = self.net(inputs)
        if mode == "tensor":
            return logits
        if mode == "loss":
            if labels is None:
                raise ValueError("ExampleMLP.forward(mode='loss') needs labels")
            return {"loss": F.cross_entropy(logits, labels)}
        if mode == "predict":
            scores = logits.softmax(dim=-1)
            preds = scores.argmax(dim=-1)
            out = []
            for i in range(logits.shape[0]):
                sample = {"pred_score": scores[i], "pred_label": int(preds[i])}
                if labels is not None:
                    sample["gt_label"] = int(labels[i])
                out.append(sample)
            return out
        raise ValueError(f"ExampleMLP.forward: unknown mode {mode!r}; use 'tensor', 'loss' or 'predict'")
