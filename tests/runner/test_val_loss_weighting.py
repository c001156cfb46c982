"""``val/loss`` is the sample-weighted mean: an uneven last batch counts by its size."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from kiln_toys import make_loader
from torch import nn

from torchkiln import BaseModel, Runner
from torchkiln.evaluation import BaseMetric


class LossModel(BaseModel):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 3)

    def forward(self, inputs, labels=None, mode="tensor"):
        logits = self.linear(inputs)
        if mode == "loss":
            return {"loss": F.cross_entropy(logits, labels)}
        return {"loss": F.cross_entropy(logits, labels), "n": len(labels)}


class Count(BaseMetric):
    def process(self, data_batch, data_samples):
        self.results.append(data_samples["n"])

    def compute_metrics(self, results):
        return {"n": float(sum(results))}


def test_val_loss_weights_batches_by_size(tmp_path):
    model = LossModel()
    loader = make_loader(10, 4)  # batches of 4, 4 and 2
    runner = Runner(model=model, work_dir=str(tmp_path), val_dataloader=loader, val_cfg={}, val_evaluator=Count())
    metrics = runner.val()
    x, y = loader.dataset.tensors
    with torch.no_grad():
        expected = F.cross_entropy(model.linear(x), y).item()
    assert metrics["n"] == 10.0
    assert abs(metrics["loss"] - expected) < 1e-6
