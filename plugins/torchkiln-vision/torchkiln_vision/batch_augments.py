"""Batch augmentations on the device: ``MixUp`` and ``CutMix``.

Each takes a float image batch ``(N, C, H, W)`` and ``(N, K)`` class-probability targets and
returns the mixed pair: every image is blended with another of the same batch (a random
permutation), and its target with that image's target, in the same proportion. The mixing
proportion is drawn from ``Beta(alpha, alpha)`` with numpy's global generator, which the
runner seeds and checkpoints, so a resumed run draws the same values.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["BatchAugment", "CutMix", "MixUp"]


class BatchAugment:
    """Base of batch augmentations: draws the proportion and the pairing.

    :param alpha: the Beta distribution's parameter (both of them); larger mixes more evenly.
    """

    def __init__(self, alpha: float = 1.0) -> None:
        if not float(alpha) > 0:
            raise ValueError(f"{type(self).__name__}: alpha must be positive, got {alpha!r}")
        self.alpha = float(alpha)

    def draw(self, batch_size: int, device: torch.device) -> tuple[float, torch.Tensor]:
        """``(lam, perm)``: the share of each image that stays, and whom it is mixed with."""
        lam = float(np.random.beta(self.alpha, self.alpha))
        return lam, torch.randperm(batch_size, device=device)

    def __call__(
        self, inputs: torch.Tensor, targets: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the mixed ``(inputs, targets)``."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(alpha={self.alpha})"


class MixUp(BatchAugment):
    """``lam * x + (1 - lam) * x[perm]``, targets alike (Zhang et al., mixup)."""

    def __call__(
        self, inputs: torch.Tensor, targets: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Blend every image and target with a partner's."""
        lam, perm = self.draw(inputs.shape[0], inputs.device)
        mixed = inputs.mul(lam).add_(inputs[perm], alpha=1.0 - lam)
        return mixed, targets.mul(lam).add_(targets[perm], alpha=1.0 - lam)


class CutMix(BatchAugment):
    """Paste a box of the partner image into each image (Yun et al., CutMix).

    The box covers about ``1 - lam`` of the image, centred uniformly at random and clipped
    at the borders; targets mix by the share of pixels actually pasted.
    """

    def box(self, lam: float, height: int, width: int) -> tuple[int, int, int, int]:
        """``(y1, y2, x1, x2)`` of a box covering about ``1 - lam`` of an image."""
        ratio = math.sqrt(1.0 - lam)
        cut_h, cut_w = int(height * ratio), int(width * ratio)
        cy, cx = int(np.random.randint(height)), int(np.random.randint(width))
        y1, y2 = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, height)
        x1, x2 = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, width)
        return y1, y2, x1, x2

    def __call__(
        self, inputs: torch.Tensor, targets: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Paste a partner's box into every image; mix targets by pasted area."""
        lam, perm = self.draw(inputs.shape[0], inputs.device)
        height, width = inputs.shape[-2:]
        y1, y2, x1, x2 = self.box(lam, height, width)
        mixed = inputs.clone()
        mixed[..., y1:y2, x1:x2] = inputs[perm][..., y1:y2, x1:x2]
        kept = 1.0 - (y2 - y1) * (x2 - x1) / float(height * width)
        return mixed, targets.mul(kept).add_(targets[perm], alpha=1.0 - kept)
