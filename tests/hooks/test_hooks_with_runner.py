"""The built-in hooks inside a real Runner: files written, and exact resume with EMA."""

from __future__ import annotations

import json
import os

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from torchkiln.evaluation import BaseMetric
from torchkiln.hooks import EMAHook
from torchkiln.model import BaseModel
from torchkiln.registry import METRICS


class _Toy(BaseModel):
    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(4, 2)

    def forward(self, x, y, mode="tensor"):
        out = self.lin(x)
        if mode == "loss":
            return {"loss": torch.nn.functional.cross_entropy(out, y)}
        if mode == "predict":
            return [(out.argmax(1) == y).float()]
        return out


@METRICS.register_module(name="HooksTestAcc", force=True)
class _Acc(BaseMetric):
    def process(self, data_batch, data_samples):
        for sample in data_samples:
            self.results.extend(sample.tolist())

    def compute_metrics(self, results):
        return {"acc": sum(results) / len(results)}


def _runner(work_dir, max_epochs, resume, ema):
    from torchkiln.runner import Runner

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(16, 4, generator=gen)
    data = TensorDataset(x, (x[:, 0] > 0).long())
    torch.manual_seed(0)
    return Runner(
        model=_Toy(),
        work_dir=work_dir,
        train_dataloader=DataLoader(data, batch_size=4),
        train_cfg={"by_epoch": True, "max_epochs": max_epochs},
        val_dataloader=DataLoader(data, batch_size=8),
        val_cfg={},
        val_evaluator={"type": "HooksTestAcc"},
        optim_wrapper={"optimizer": {"type": "SGD", "lr": 0.1}},
        default_hooks={"logger": {"interval": 2}, "checkpoint": {"interval": 1, "max_keep_ckpts": 1, "save_best": "acc"}},
        custom_hooks=[ema],
        resume=resume,
        randomness={"seed": 0},
    )


@pytest.mark.slow
def test_train_and_resume_with_builtin_hooks(tmp_path):
    work_dir = str(tmp_path / "work")
    ema = EMAHook(momentum=0.3)
    runner = _runner(work_dir, 2, False, ema)
    runner.train()
    model_state = {k: v.clone() for k, v in runner.model.state_dict().items()}
    ema_state = {k: v.clone() for k, v in ema.ema_model.state_dict().items()}

    files = sorted(os.listdir(work_dir))
    assert "epoch_2.pth" in files and "epoch_1.pth" not in files
    assert [f for f in files if f.startswith("best_acc_epoch_")]
    with open(os.path.join(work_dir, "last_checkpoint"), encoding="utf-8") as fh:
        assert fh.read() == os.path.join(work_dir, "epoch_2.pth")
    with open(os.path.join(runner.log_dir, "scalars.jsonl"), encoding="utf-8") as fh:
        records = [json.loads(line) for line in fh]
    assert [(r["mode"], r["step"]) for r in records] == [
        ("train", 2), ("train", 4), ("val", 4), ("train", 6), ("train", 8), ("val", 8)
    ]
    assert isinstance(records[0]["loss"], float) and records[0]["lr"] == pytest.approx(0.1)

    ema2 = EMAHook(momentum=0.3)
    resumed = _runner(work_dir, 2, True, ema2)
    resumed.train()  # resumes at the end: nothing left to train
    for key, value in resumed.model.state_dict().items():
        assert torch.equal(value, model_state[key])
    for key, value in ema2.ema_model.state_dict().items():
        assert torch.equal(value, ema_state[key])
