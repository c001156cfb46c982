"""What a training checkpoint holds, and that it all loads with ``torch.load(weights_only=True)``."""

from __future__ import annotations

import os

import pytest
import torch
from resume_helpers import build_runner, train
from resume_support import config

import torchkiln
from torchkiln._native import parse_yaml


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A run stopped after iteration 10 of an epoch-based run (mid-epoch), AMP with a scaler."""
    work_dir = tmp_path_factory.mktemp("contents")
    cfg = config(str(work_dir), by_epoch=True, interval=-1, progress=False)
    cfg["optim_wrapper"] = dict(cfg["optim_wrapper"], type="AmpOptimWrapper", dtype="float16", loss_scale="dynamic")
    runner = train(cfg, stop_at=10)
    path = os.path.join(str(work_dir), "iter_10.pth")
    return runner, path, torch.load(path, weights_only=True)


def test_top_level_keys(saved):
    _, _, ckpt = saved
    assert set(ckpt) == {
        "meta", "state_dict", "optimizer", "loss_scaler", "param_schedulers", "message_hub", "rng", "dataloader",
        "ema_state_dict",
    }


def test_meta(saved):
    runner, _, ckpt = saved
    meta = ckpt["meta"]
    assert (meta["epoch"], meta["iter"], meta["epoch_iter"], meta["val_pending"]) == (0, 10, 10, False)
    assert meta["seed"] == 3
    assert meta["world_size"] == 1
    assert meta["loop"] == "EpochBasedTrainLoop"
    assert meta["torchkiln_version"] == torchkiln.__version__
    assert meta["torch_version"] == str(torch.__version__)
    assert all(isinstance(meta[k], str) for k in ("torchkiln_version", "torch_version", "time", "cfg"))
    cfg = parse_yaml(meta["cfg"])
    assert cfg["train_cfg"]["max_epochs"] == 2
    assert cfg["model"]["type"] == "DigitsMLP"
    assert meta["checkpointer"]["out_dir"] == runner.work_dir


def test_model_optimizer_scaler_and_schedulers(saved):
    runner, _, ckpt = saved
    # The model's own (source) weights; EMAHook keeps the average in state_dict.
    assert set(ckpt["state_dict"]) == set(runner.unwrapped_model.state_dict())
    assert all(v.device.type == "cpu" for v in ckpt["state_dict"].values())
    assert {"steps", "module.backbone.0.weight", "module.head.weight"} <= set(ckpt["ema_state_dict"])
    assert "loss_scaler" not in ckpt["optimizer"]
    assert ckpt["loss_scaler"]["scale"] > 0
    assert len(ckpt["optimizer"]["state"]) == 4
    assert [s["last_step"] for s in ckpt["param_schedulers"]] == [9, 0]  # LinearLR per iteration, MultiStepLR per epoch


def test_rng_message_hub_and_data_position(saved):
    _, _, ckpt = saved
    assert set(ckpt["rng"]) >= {"python", "numpy", "torch"}
    assert ckpt["rng"]["torch"].dtype == torch.uint8
    assert "train/loss" in ckpt["message_hub"]["log_scalars"]
    data = ckpt["dataloader"]
    assert data["batches"] == 10
    assert data["samples_per_batch"] == 64
    assert data["sampler"]["epoch"] == 0 and data["sampler"]["seed"] == 3 and data["sampler"]["start"] == 0
    assert data["generator"].dtype == torch.uint8


def test_resume_restores_the_amp_scaler(saved, tmp_path):
    runner, path, ckpt = saved
    cfg = config(str(tmp_path), by_epoch=True, interval=-1, progress=False)
    cfg["optim_wrapper"] = dict(cfg["optim_wrapper"], type="AmpOptimWrapper", dtype="float16", loss_scale="dynamic")
    fresh = build_runner(cfg, resume=path)
    assert isinstance(fresh.optim_wrapper, dict)  # the config until something builds it
    fresh.resume(path)  # builds the optimizer wrapper and schedulers it loads into
    assert fresh.optim_wrapper.loss_scaler.state_dict() == ckpt["loss_scaler"]
    assert (fresh.train_loop.epoch, fresh.train_loop.iter) == (0, 10)


def test_iteration_checkpoints_of_an_epoch_based_run(tmp_path):
    """CheckpointHook(by_epoch=False) in an epoch-based run: files mid-epoch, positions exact."""
    cfg = config(str(tmp_path), by_epoch=True, interval=8, progress=False)
    train(cfg)
    metas = {n: torch.load(tmp_path / n, weights_only=True)["meta"] for n in ("iter_40.pth", "iter_46.pth")}
    assert (metas["iter_40.pth"]["epoch"], metas["iter_40.pth"]["epoch_iter"]) == (1, 17)
    # The last iteration of the run: the epoch's end (and its validation) still to come.
    assert (metas["iter_46.pth"]["epoch"], metas["iter_46.pth"]["epoch_iter"]) == (1, 23)
    assert (tmp_path / "last_checkpoint").read_text() == str(tmp_path / "iter_46.pth")
