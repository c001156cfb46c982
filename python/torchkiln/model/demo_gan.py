"""A toy GAN on the 8x8 digits: two sub-networks, two optimizers, a custom ``train_step``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from torchkiln.model.base_model import BaseModel
from torchkiln.model.demo_models import stacked
from torchkiln.registry import MODELS

__all__ = ["DigitsGAN"]


@MODELS.register_module()
class DigitsGAN(BaseModel):
    """Generator and discriminator MLPs trained adversarially on 64-pixel digits.

    The optimizer wrapper must be an ``OptimWrapperDict`` with ``generator`` and
    ``discriminator`` entries (``constructor: MultiOptimWrapperConstructor``).

    :param noise_dim: size of the generator's input noise.
    :param hidden: width of both networks' hidden layer.
    :param data_preprocessor: preprocessor module or config.
    """

    def __init__(
        self,
        noise_dim: int = 16,
        hidden: int = 64,
        data_preprocessor: Mapping[str, Any] | nn.Module | None = None,
    ) -> None:
        super().__init__(data_preprocessor=data_preprocessor)
        self.noise_dim = noise_dim
        self.generator = nn.Sequential(
            nn.Linear(noise_dim, hidden), nn.ReLU(), nn.Linear(hidden, 64)
        )
        self.discriminator = nn.Sequential(
            nn.Linear(64, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, 1)
        )

    def _noise(self, n: int, like: torch.Tensor) -> torch.Tensor:
        return torch.randn(n, self.noise_dim, device=like.device, dtype=like.dtype)

    def forward(
        self, inputs: torch.Tensor, labels: torch.Tensor | None = None, mode: str = "tensor"
    ) -> Any:
        """'tensor' and 'predict' generate as many samples as ``inputs`` has rows."""
        inputs = stacked(inputs)
        fake = self.generator(self._noise(inputs.shape[0], inputs.float()))
        if mode == "predict":
            score = self.discriminator(inputs.flatten(1).float()).sigmoid().squeeze(1)
            return {"fake": fake.detach(), "real_score": score.detach()}
        return fake

    def train_step(self, data: Any, optim_wrapper: Any) -> dict[str, torch.Tensor]:
        """One discriminator update, then one generator update."""
        data = self.data_preprocessor(data, True)
        real = stacked(data[0]).flatten(1).float()
        d_wrapper = optim_wrapper["discriminator"]
        g_wrapper = optim_wrapper["generator"]
        # The generator's backward pass leaves gradients in the discriminator; drop them so
        # each discriminator step sees only its own loss (and a resumed run matches exactly).
        d_wrapper.zero_grad()
        with d_wrapper.optim_context(self.discriminator):
            fake = self.generator(self._noise(real.shape[0], real)).detach()
            loss_d = (
                F.softplus(-self.discriminator(real)).mean()
                + F.softplus(self.discriminator(fake)).mean()
            )
        d_wrapper.update_params(loss_d)
        with g_wrapper.optim_context(self.generator):
            loss_g = F.softplus(
                -self.discriminator(self.generator(self._noise(real.shape[0], real)))
            ).mean()
        g_wrapper.update_params(loss_g)
        return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach()}
