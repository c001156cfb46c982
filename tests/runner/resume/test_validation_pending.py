"""A run stopped during validation runs that validation again on resume, then trains on."""

from __future__ import annotations

import pytest
import torch
from resume_helpers import assert_bit_identical, build_runner, train, weights
from resume_support import config

from torchkiln.errors import RunInterrupted
from torchkiln.hooks.hook import Hook


class Events(Hook):
    """Records validations (by epoch) and training iterations, in order."""

    priority = "LOWEST"

    def __init__(self) -> None:
        self.events: list[tuple[str, int]] = []

    def after_val_epoch(self, runner, metrics=None) -> None:
        self.events.append(("val", runner.epoch))

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        self.events.append(("train", runner.iter))


class CrashInValidation(Hook):
    """Simulates the process dying in the middle of epoch ``epoch``'s validation."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def after_val_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if runner.epoch == self.epoch:
            raise OSError("simulated crash during validation")


class StopInValidation(Hook):
    """A stop request (as from SIGTERM) arriving during epoch ``epoch``'s validation."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def after_val_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if runner.epoch == self.epoch and batch_idx == 0:
            runner.request_stop("the test")


def _cfg(work_dir):
    cfg = config(str(work_dir), by_epoch=True, max_epochs=3, progress=False)
    # Epoch checkpoints: written at the end of each epoch, before its validation.
    cfg["default_hooks"] = dict(cfg["default_hooks"], checkpoint={"type": "CheckpointHook", "interval": 1})
    return cfg


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    return weights(train(_cfg(tmp_path_factory.mktemp("straight"))))


def test_crash_during_validation(tmp_path, straight):
    cfg = _cfg(tmp_path)
    with pytest.raises(Exception, match="simulated crash"):
        build_runner(cfg, hooks=(CrashInValidation(1),)).train()
    ckpt = torch.load(tmp_path / "epoch_1.pth", weights_only=True)
    assert (ckpt["meta"]["epoch"], ckpt["meta"]["val_pending"]) == (1, True)
    events = Events()
    resumed = train(cfg, resume=True, hooks=(events,))
    # Epoch 1's validation comes first, then training continues with iteration 23.
    assert events.events[:2] == [("val", 1), ("train", 23)]
    assert [e for e in events.events if e[0] == "val"] == [("val", 1), ("val", 2), ("val", 3)]
    assert_bit_identical(straight, weights(resumed))


def test_stop_request_during_validation(tmp_path, straight):
    cfg = _cfg(tmp_path)
    events = Events()
    runner = build_runner(cfg, hooks=(StopInValidation(2), events))
    with pytest.raises(RunInterrupted) as info:
        runner.train()
    assert info.value.exit_code == 143
    assert runner.val_loop.interrupted
    assert ("val", 2) not in events.events  # no metrics, no after_val_epoch for the cut validation
    ckpt = torch.load(tmp_path / "iter_46.pth", weights_only=True)
    assert (ckpt["meta"]["epoch"], ckpt["meta"]["epoch_iter"], ckpt["meta"]["val_pending"]) == (2, 0, True)
    assert (tmp_path / "last_checkpoint").read_text() == str(tmp_path / "iter_46.pth")
    events = Events()
    resumed = train(cfg, resume=True, hooks=(events,))
    assert events.events[:2] == [("val", 2), ("train", 46)]
    assert_bit_identical(straight, weights(resumed))
