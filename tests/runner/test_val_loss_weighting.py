"""``val/loss`` is the mean over the dataset's samples: an uneven last batch counts by its size,
and the samples a distributed sampler repeats (``round_up``) are left out like the metrics do."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from kiln_toys import make_loader
from torch import nn
from torch.utils.data import DataLoader

import torchkiln.dist.collectives as collectives
from torchkiln import BaseModel, Runner
from torchkiln.evaluation import BaseMetric


class LossModel(BaseModel):
    """Reports its validation loss as a batch mean, or per sample with ``per_sample``."""

    def __init__(self, per_sample: bool = False):
        super().__init__()
        self.linear = nn.Linear(4, 3)
        self.per_sample = per_sample

    def forward(self, inputs, labels=None, mode="tensor"):
        logits = self.linear(inputs)
        if mode == "loss":
            return {"loss": F.cross_entropy(logits, labels)}
        reduction = "none" if self.per_sample else "mean"
        return {"loss": F.cross_entropy(logits, labels, reduction=reduction), "n": len(labels)}


class Count(BaseMetric):
    def process(self, data_batch, data_samples):
        self.results.append(data_samples["n"])

    def compute_metrics(self, results):
        return {"n": float(sum(results))}


def _sample_losses(model: LossModel, loader: DataLoader) -> torch.Tensor:
    x, y = loader.dataset.tensors
    with torch.no_grad():
        return F.cross_entropy(model.linear(x), y, reduction="none")


def _val_loss(tmp_path, model: LossModel, loader: DataLoader) -> float:
    runner = Runner(model=model, work_dir=str(tmp_path), val_dataloader=loader, val_cfg={}, val_evaluator=Count())
    return runner.val()["loss"]


def test_val_loss_weights_batches_by_size(tmp_path):
    model = LossModel()
    loader = make_loader(10, 4)  # batches of 4, 4 and 2
    runner = Runner(model=model, work_dir=str(tmp_path), val_dataloader=loader, val_cfg={}, val_evaluator=Count())
    metrics = runner.val()
    assert metrics["n"] == 10.0
    assert abs(metrics["loss"] - _sample_losses(model, loader).mean().item()) < 1e-6


@pytest.mark.parametrize("size", [0, 1, 2, 5, 7, 8, 13])
@pytest.mark.parametrize("world", [1, 2, 3, 4])
@pytest.mark.parametrize("round_up", [True, False])
def test_kept_sample_count_matches_what_collect_results_keeps(size, world, round_up):
    """A rank's first ``kept_sample_count`` samples are exactly the ones the gathered list keeps."""
    import math

    share = math.ceil(size / world) if round_up else None
    positions = []  # (rank, k) of each sample in gathered order, as collect_results interleaves
    shares = [share if round_up else max(0, math.ceil((size - r) / world)) for r in range(world)]
    for k in range(max(shares, default=0)):
        positions.extend((r, k) for r in range(world) if k < shares[r])
    kept = positions[:size]
    for rank in range(world):
        expected = sum(1 for r, _ in kept if r == rank)
        assert collectives.kept_sample_count(size, rank, world) == expected
        assert all(k < expected for r, k in kept if r == rank)  # the kept ones come first


def test_kept_sample_count_defaults_to_this_process_and_checks_the_rank():
    assert collectives.kept_sample_count(5) == 5
    with pytest.raises(ValueError, match="rank 2 is not in a world of 2"):
        collectives.kept_sample_count(5, 2, 2)


def _rank1_share(monkeypatch, batch_size: int) -> DataLoader:
    """Rank 1 of 2 on 9 samples with round_up: samples 1, 3, 5, 7, then sample 0 repeated."""
    monkeypatch.setattr(collectives, "get_rank", lambda: 1)
    monkeypatch.setattr(collectives, "get_world_size", lambda: 2)
    full = make_loader(9, batch_size)
    return DataLoader(full.dataset, batch_size=batch_size, sampler=[1, 3, 5, 7, 0])


@pytest.mark.parametrize("batch_size", [2, 3, 5])
def test_per_sample_losses_leave_out_the_padded_sample(tmp_path, monkeypatch, batch_size):
    loader = _rank1_share(monkeypatch, batch_size)
    model = LossModel(per_sample=True)
    expected = _sample_losses(model, loader)[[1, 3, 5, 7]].mean().item()
    assert _val_loss(tmp_path, model, loader) == pytest.approx(expected, abs=1e-6)


def test_a_batch_mean_counts_only_the_batch_real_samples(tmp_path, monkeypatch):
    model = LossModel()
    losses = _sample_losses(model, make_loader(9, 2))
    # Batches [1, 3], [5, 7], [0]: the last one is all padding and weighs nothing.
    assert _val_loss(tmp_path, model, _rank1_share(monkeypatch, 2)) == pytest.approx(
        losses[[1, 3, 5, 7]].mean().item(), abs=1e-6
    )
    # Batches [1, 3, 5], [7, 0]: a batch mean cannot be split, so [7, 0] weighs one sample.
    mixed = (3 * losses[[1, 3, 5]].mean() + losses[[7, 0]].mean()) / 4
    assert _val_loss(tmp_path, model, _rank1_share(monkeypatch, 3)) == pytest.approx(mixed.item(), abs=1e-6)
