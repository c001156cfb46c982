"""Resuming a run that already trained to its end says so instead of validating again."""

from __future__ import annotations

import os

from kiln_toys import ToyModel, make_loader
from structlog.testing import capture_logs

from torchkiln import BaseMetric, Runner


class CountingMetric(BaseMetric):
    """Counts validations (one ``compute_metrics`` per validation)."""

    validations = 0

    def process(self, data_batch, data_samples):
        self.results.append(1)

    def compute_metrics(self, results):
        CountingMetric.validations += 1
        return {"acc": float(CountingMetric.validations)}


def _runner(work_dir, max_epochs=2, resume=False):
    return Runner(
        model=ToyModel(),
        work_dir=str(work_dir),
        train_dataloader=make_loader(8, 4),
        val_dataloader=make_loader(4, 2),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        val_cfg=dict(),
        val_evaluator=CountingMetric(),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1)),
        default_hooks=dict(checkpoint=dict(type="CheckpointHook", interval=1), progress_bar=None),
        resume=resume,
        experiment_name=f"finished_{os.path.basename(str(work_dir))}_{max_epochs}_{resume}",
    )


def test_resuming_a_finished_run_trains_and_validates_nothing(tmp_path):
    _runner(tmp_path).train()
    assert (tmp_path / "run_complete").read_text() == str(tmp_path / "epoch_2.pth")
    before = CountingMetric.validations
    runner = _runner(tmp_path, resume=True)
    with capture_logs() as logs:
        runner.train()
    assert CountingMetric.validations == before  # the final validation is not run again
    assert any("the run is complete: epoch_2.pth is its last checkpoint" in e["event"] for e in logs)
    assert runner.iter == 4


def test_a_longer_schedule_trains_on_from_the_finished_run(tmp_path):
    _runner(tmp_path).train()
    runner = _runner(tmp_path, max_epochs=3, resume=True)
    runner.train()
    assert runner.epoch == 3
    assert (tmp_path / "run_complete").read_text() == str(tmp_path / "epoch_3.pth")
