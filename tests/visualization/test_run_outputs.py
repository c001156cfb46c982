"""A run writes the text log, log.jsonl, scalars.jsonl, metrics.json and TensorBoard events
that agree with each other, and ``torchkiln plot`` draws them."""

from __future__ import annotations

import json
import os

import pytest
from kiln_toys import ToyModel, make_loader

from torchkiln import Runner
from torchkiln.cli import main
from torchkiln.evaluation import BaseMetric
from torchkiln.logging import MessageHub, shutdown_logging
from torchkiln.visualization import Visualizer

pytest.importorskip("tensorboard")


class Seen(BaseMetric):
    def process(self, data_batch, data_samples):
        self.results.append(len(data_samples[1]))

    def compute_metrics(self, results):
        return {"seen": float(sum(results))}


def _jsonl(path):
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def test_run_outputs_agree(tmp_path, capsys):
    MessageHub.reset_instances()
    Visualizer.reset_instances()
    runner = Runner(
        model=ToyModel(),
        work_dir=str(tmp_path),
        train_dataloader=make_loader(12, 2),
        val_dataloader=make_loader(4, 2),
        train_cfg={"by_epoch": True, "max_epochs": 2, "val_interval": 1},
        val_cfg={},
        val_evaluator=Seen(),
        optim_wrapper={"optimizer": {"type": "SGD", "lr": 0.1}},
        default_hooks={"logger": {"type": "LoggerHook", "interval": 2}, "checkpoint": None},
        visualizer={"type": "Visualizer", "vis_backends": [{"type": "LocalVisBackend"}, {"type": "TensorboardVisBackend"}]},
        cfg={"model": {"type": "ToyModel"}, "work_dir": str(tmp_path)},
    )
    try:
        runner.train()
    finally:
        shutdown_logging()
    log_dir = runner.log_dir

    text = open(os.path.join(log_dir, f"{runner.timestamp}.log"), encoding="utf-8").read()
    assert "Epoch(train) [2][6/6]" in text and "Epoch(val) [2][2/2]    seen: 4.0000" in text

    events = _jsonl(os.path.join(log_dir, "log.jsonl"))
    train_line = next(e for e in events if e["event"].startswith("Epoch(train) [2][4/6]"))
    assert (train_line["epoch"], train_line["iter"], train_line["mode"]) == (2, 10, "train")
    val_line = next(e for e in events if e["event"].startswith("Epoch(val) [1]"))
    assert (val_line["epoch"], val_line["iter"], val_line["mode"]) == (1, 6, "val")

    records = _jsonl(os.path.join(log_dir, "scalars.jsonl"))
    train = [r for r in records if r["mode"] == "train"]
    assert [r["step"] for r in train] == [2, 4, 6, 8, 10, 12]
    assert [(r["step"], r["epoch"], r["seen"]) for r in records if r["mode"] == "val"] == [(6, 1, 4.0), (12, 2, 4.0)]
    metrics = json.load(open(os.path.join(log_dir, "metrics.json"), encoding="utf-8"))
    assert metrics["val"]["seen"] == 4.0 and metrics["val"]["step"] == 12

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(os.path.join(log_dir, "vis_data"), size_guidance={"scalars": 0})
    acc.Reload()
    tb_loss = [(e.step, e.value) for e in acc.Scalars("loss")]
    assert [s for s, _ in tb_loss] == [2, 4, 6, 8, 10, 12]
    assert [v for _, v in tb_loss] == pytest.approx([r["loss"] for r in train], rel=1e-6)
    assert [(e.step, e.value) for e in acc.Scalars("val/seen")] == [(1, 4.0), (2, 4.0)]  # by epoch
    assert "val/time" in acc.Tags()["scalars"] and "time" in acc.Tags()["scalars"]
    assert os.path.isfile(os.path.join(log_dir, "vis_data", "config.yaml"))

    out = tmp_path / "curves.png"
    assert main(["plot", str(tmp_path), "--keys", "loss,lr,seen", "--out", str(out)]) == 0
    assert out.stat().st_size > 10_000
