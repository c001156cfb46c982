"""A real run reads no device value between log intervals: counted, not timed.

Every Tensor method that copies a value to the host is counted over a Runner run (logger
interval 5, progress bars drawn on a forced terminal, TensorBoard and local vis backends,
validation each epoch). Per iteration, the calls from the end of the previous iteration to
the end of this one must be zero, except at log iterations (where the hub converts the
pending losses: on the CPU, one ``item()`` per loss; on a device it would be one
``stack().tolist()``) and the first iteration of an epoch (which also holds the previous
epoch's validation and checkpoint).
"""

from __future__ import annotations

import io
import json
import os

import pytest
import torch
from kiln_toys import ToyModel, make_loader
from rich.console import Console

from torchkiln import Runner
from torchkiln.evaluation import BaseMetric
from torchkiln.hooks import Hook
from torchkiln.hooks.progress_bar_hook import ProgressBarHook
from torchkiln.logging import MessageHub, shutdown_logging
from torchkiln.visualization import Visualizer

_SYNC_METHODS = ("item", "tolist", "__float__", "__int__", "__index__", "__bool__", "cpu", "numpy", "__format__")
INTERVAL = 5
ITERS_PER_EPOCH = 16


class Accuracy(BaseMetric):
    def process(self, data_batch, data_samples):
        logits, labels = data_samples
        self.results.append(((logits.argmax(1) == labels).sum(), len(labels)))

    def compute_metrics(self, results):
        return {"accuracy": 100.0 * float(sum(r[0] for r in results)) / sum(r[1] for r in results)}


class SyncCounter(Hook):
    """Counts host reads per training iteration window."""

    priority = "LOWEST"

    def __init__(self, counts):
        self.counts = counts
        self.per_iter = []  # (global iteration 1-based, batch_idx, calls)
        self._last = 0

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        total = sum(self.counts.values())
        self.per_iter.append((runner.iter + 1, batch_idx, total - self._last))
        self._last = total


@pytest.fixture
def sync_counts(monkeypatch):
    counts = dict.fromkeys(_SYNC_METHODS, 0)
    for name in _SYNC_METHODS:
        original = getattr(torch.Tensor, name)

        def counting(self, *args, _name=name, _original=original, **kwargs):
            counts[_name] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counting)
    return counts


def test_no_host_reads_between_log_intervals(tmp_path, sync_counts):
    MessageHub.reset_instances()
    Visualizer.reset_instances()
    screen = io.StringIO()
    counter = SyncCounter(sync_counts)
    runner = Runner(
        model=ToyModel(),
        work_dir=str(tmp_path),
        train_dataloader=make_loader(ITERS_PER_EPOCH * 2, 2, shuffle=True),
        val_dataloader=make_loader(8, 4),
        train_cfg={"by_epoch": True, "max_epochs": 2, "val_interval": 1},
        val_cfg={},
        val_evaluator=Accuracy(),
        optim_wrapper={"optimizer": {"type": "SGD", "lr": 0.1}},
        default_hooks={
            "logger": {"type": "LoggerHook", "interval": INTERVAL},
            "progress_bar": ProgressBarHook(enable=True, refresh_interval=0,
                                            console=Console(file=screen, force_terminal=True, width=120)),
            "checkpoint": None,
        },
        visualizer={"type": "Visualizer", "vis_backends": [{"type": "LocalVisBackend"}, {"type": "TensorboardVisBackend"}]},
        custom_hooks=[counter],
    )
    try:
        runner.train()
    finally:
        shutdown_logging()

    assert len(counter.per_iter) == 2 * ITERS_PER_EPOCH
    logged = {step for step, _, _ in counter.per_iter if step % ITERS_PER_EPOCH % INTERVAL == 0 and step % ITERS_PER_EPOCH}
    quiet = [(step, calls) for step, idx, calls in counter.per_iter if step not in logged and idx > 0]
    assert len(quiet) == 2 * ITERS_PER_EPOCH - len(logged) - 2
    assert quiet == [(step, 0) for step, _ in quiet]
    # the counter does see the reads of a log interval: each pending loss once
    assert [calls for step, _, calls in counter.per_iter if step in logged] == [INTERVAL] * len(logged)

    records = [json.loads(x) for x in open(os.path.join(runner.log_dir, "scalars.jsonl"), encoding="utf-8")]
    assert [r["step"] for r in records if r["mode"] == "train"] == sorted(logged)
    assert "train epoch 2/2" in screen.getvalue() and "loss: " in screen.getvalue()
    assert any(name.startswith("events.out.tfevents") for name in os.listdir(os.path.join(runner.log_dir, "vis_data")))
