"""Files around resuming: stop checkpoints, leftovers of interrupted writes, async best files."""

from __future__ import annotations

import json
import os

import torch
from resume_helpers import train
from resume_support import config


def _epoch_cfg(work_dir, **checkpoint):
    cfg = config(str(work_dir), by_epoch=True, max_epochs=2, progress=False)
    cfg["default_hooks"] = dict(cfg["default_hooks"], checkpoint={"type": "CheckpointHook", "interval": 1, **checkpoint})
    return cfg


def test_stop_checkpoint_of_an_epoch_based_run_is_removed_by_the_next_periodic_save(tmp_path):
    cfg = _epoch_cfg(tmp_path, max_keep_ckpts=2)
    train(cfg, stop_at=10)
    assert (tmp_path / "last_checkpoint").read_text() == str(tmp_path / "iter_10.pth")
    assert sorted(p.name for p in tmp_path.glob("*.pth")) == ["iter_10.pth"]
    train(cfg, resume=True, stop_at=15)  # stopped again: the newer stop checkpoint replaces the older
    assert sorted(p.name for p in tmp_path.glob("*.pth")) == ["iter_15.pth"]
    train(cfg, resume=True)
    assert sorted(p.name for p in tmp_path.glob("*.pth")) == ["epoch_1.pth", "epoch_2.pth"]


def test_stop_checkpoint_is_kept_without_max_keep_ckpts(tmp_path):
    cfg = _epoch_cfg(tmp_path)
    train(cfg, stop_at=10)
    train(cfg, resume=True)
    assert sorted(p.name for p in tmp_path.glob("*.pth")) == ["epoch_1.pth", "epoch_2.pth", "iter_10.pth"]


def test_leftovers_of_interrupted_writes_are_removed(tmp_path):
    cfg = config(str(tmp_path), by_epoch=False, max_iters=8, interval=4, progress=False)
    train(cfg, stop_at=4)
    leftovers = [".iter_8.pth.k2j3h4z_.tmp", ".last_checkpoint.abcdefgh.tmp"]
    for name in leftovers:
        (tmp_path / name).write_bytes(b"half a checkpoint")
    (tmp_path / "notes.tmp").write_text("not ours")
    train(cfg, resume=True)
    names = os.listdir(tmp_path)
    assert not set(leftovers) & set(names)
    assert "notes.tmp" in names


def test_async_best_checkpoints(tmp_path):
    cfg = _epoch_cfg(tmp_path, save_best="accuracy/top1", async_save=True)
    train(cfg)
    records = json.loads((tmp_path / "best_checkpoints.json").read_text())
    best = records["accuracy/top1"]["path"]
    assert os.path.isfile(best)
    assert len(list(tmp_path.glob("best_*.pth"))) == 1
    meta = torch.load(best, weights_only=True)["meta"]
    assert meta["val_pending"] is False
