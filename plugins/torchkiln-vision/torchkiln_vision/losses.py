"""The classification loss: cross entropy over hard labels or soft targets, with smoothing."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["classification_loss"]


def classification_loss(
    logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0
) -> torch.Tensor:
    """Mean cross entropy of ``logits`` against ``targets``.

    :param logits: ``(N, K)`` raw class scores.
    :param targets: ``(N,)`` class indices, or ``(N, K)`` class probabilities (soft targets,
        as MixUp and CutMix make them).
    :param label_smoothing: in ``[0, 1)``; mixes each target with the uniform distribution.
    """
    if targets.dim() == 2:
        if targets.shape != logits.shape:
            raise ValueError(
                f"soft targets of shape {tuple(targets.shape)} do not match logits {tuple(logits.shape)}"
            )
        return F.cross_entropy(logits, targets.to(logits.dtype), label_smoothing=label_smoothing)
    return F.cross_entropy(logits, targets.long(), label_smoothing=label_smoothing)
