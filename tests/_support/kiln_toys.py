"""Small models and data shared by the runner tests (importable as ``kiln_toys``)."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from torchkiln.model import BaseModel


class ToyModel(BaseModel):
    """A linear classifier on 4 features; 'loss' gives a dict, 'predict' a tuple."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 3)

    def forward(self, inputs, labels=None, mode="tensor"):
        logits = self.linear(inputs)
        if mode == "loss":
            return {"loss": nn.functional.cross_entropy(logits, labels)}
        if mode == "predict":
            return logits, labels
        return logits


def make_loader(n: int = 8, batch_size: int = 4, seed: int = 0, shuffle: bool = False) -> DataLoader:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = torch.randint(0, 3, (n,), generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=shuffle)



class ModelSteps:
    """The step methods the loops call, for stand-in model classes that tests only check or
    build (never train): with them a class passes the "is it a BaseModel" check."""

    def train_step(self, data, optim_wrapper):  # pragma: no cover - never trained
        raise NotImplementedError

    def val_step(self, data):  # pragma: no cover
        raise NotImplementedError

    def test_step(self, data):  # pragma: no cover
        raise NotImplementedError
