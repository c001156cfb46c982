"""Asynchronous checkpoint saving: same files as synchronous saving, written in the background."""

from __future__ import annotations

import os
import threading
import time

import pytest
import torch
from resume_helpers import build_runner, train
from resume_support import config
from structlog.testing import capture_logs

from torchkiln.runner import CheckpointError
from torchkiln.runner import checkpoint_io
from torchkiln.runner.checkpoint_io import CheckpointWriter


def _flat(obj, prefix=""):
    if isinstance(obj, dict):
        out = {}
        for key, value in obj.items():
            out.update(_flat(value, f"{prefix}{key}."))
        return out
    if isinstance(obj, (list, tuple)):
        out = {}
        for index, value in enumerate(obj):
            out.update(_flat(value, f"{prefix}{index}."))
        return out
    return {prefix: obj}


def test_async_checkpoints_equal_sync_ones(tmp_path):
    sync_cfg = config(str(tmp_path / "sync"), max_iters=12, interval=4, progress=False)
    async_cfg = config(str(tmp_path / "async"), max_iters=12, interval=4, progress=False)
    async_cfg["default_hooks"]["checkpoint"] = dict(async_cfg["default_hooks"]["checkpoint"], async_save=True)
    train(sync_cfg)
    runner = build_runner(async_cfg)
    with capture_logs() as logs:
        runner.train()
    assert not any(t.name == "torchkiln-checkpoint-writer" and t.is_alive() for t in threading.enumerate())
    def checkpoint_files(folder):
        return sorted(n for n in os.listdir(folder) if n.endswith(".pth") or n == "last_checkpoint")

    assert checkpoint_files(tmp_path / "async") == checkpoint_files(tmp_path / "sync")
    assert not [n for n in os.listdir(tmp_path / "async") if n.endswith(".tmp")]
    assert (tmp_path / "async" / "last_checkpoint").read_text() == str(tmp_path / "async" / "iter_12.pth")
    for name in ("iter_4.pth", "iter_8.pth", "iter_12.pth"):
        a = _flat(torch.load(tmp_path / "sync" / name, weights_only=True))
        b = _flat(torch.load(tmp_path / "async" / name, weights_only=True))
        assert set(a) == set(b)
        for key in a:
            if key.startswith(("meta.time", "meta.cfg", "meta.experiment_name", "meta.checkpointer.out_dir", "message_hub.")):
                continue
            same = torch.equal(a[key], b[key]) if isinstance(a[key], torch.Tensor) else a[key] == b[key]
            assert same, key
    stalls = [e["event"] for e in logs if "training stalled" in e["event"]]
    assert len(stalls) == 3 and all("written in the background" in s for s in stalls)
    assert isinstance(runner.message_hub.get_info("checkpoint_stall_time"), float)


@pytest.fixture
def slow_save(monkeypatch):
    """atomic_save that takes 0.3 s (and records when each write finished)."""
    finished = []
    real = checkpoint_io.atomic_save

    def slow(obj, path):
        time.sleep(0.3)
        real(obj, path)
        finished.append(path)

    monkeypatch.setattr(checkpoint_io, "atomic_save", slow)
    return finished


def test_writer_stages_a_copy_and_reports_after_the_file_is_complete(tmp_path, slow_save):
    writer = CheckpointWriter()
    tensor = torch.zeros(4)
    seen = []
    path = str(tmp_path / "a.pth")
    stall = writer.save({"w": tensor}, path, background=True, on_written=lambda p: seen.append(os.path.isfile(p)))
    assert stall < 0.3 and writer.busy and not os.path.exists(path)
    tensor.add_(1)  # training goes on changing the weights
    writer.wait()
    assert seen == [True]
    assert torch.equal(torch.load(path, weights_only=True)["w"], torch.zeros(4))


def test_writer_runs_one_write_at_a_time(tmp_path, slow_save):
    writer = CheckpointWriter()
    order = []
    writer.save({"i": 1}, str(tmp_path / "1.pth"), background=True, on_written=order.append)
    stall = writer.save({"i": 2}, str(tmp_path / "2.pth"), background=True, on_written=order.append)
    assert stall > 0.15  # waited for the first write
    writer.wait()
    assert order == [str(tmp_path / "1.pth"), str(tmp_path / "2.pth")] == slow_save


def test_a_failed_background_write_is_raised_by_the_next_wait(tmp_path, monkeypatch):
    def fail(obj, path):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint_io, "atomic_save", fail)
    writer = CheckpointWriter()
    writer.save({"i": 1}, str(tmp_path / "x.pth"), background=True)
    with pytest.raises(CheckpointError, match=r"writing checkpoint .*x.pth in the background failed: OSError"):
        writer.wait()
    writer.wait()  # reported once
