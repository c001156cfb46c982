"""Helpers for the resume tests; training subprocesses import it through ``custom_imports``.

- :class:`ProgressHook` appends each finished iteration to ``$RESUME_TEST_PROGRESS`` (when
  set) and sleeps ``$RESUME_TEST_SLEEP_S`` seconds per iteration, so a test can tell how far
  a subprocess got and hit it at a chosen moment.
- With ``$RESUME_TEST_SLOW_FSYNC_S`` set, every ``os.fsync`` first touches
  ``$RESUME_TEST_WRITE_MARKER`` and sleeps: a test waiting for the marker kills the process
  in the middle of an atomic write (after the data, before the rename).
- :class:`ForgetfulHook` changes the weights once, at its own 5th call, and keeps that count
  only in memory: a resumed run applies it at another iteration (resume is not exact).
- :func:`config` builds the small training configs the tests use.
"""

from __future__ import annotations

import os
import time
from typing import Any

import torch

from torchkiln.hooks.hook import Hook
from torchkiln.registry import HOOKS


@HOOKS.register_module(force=True)
class ProgressHook(Hook):
    """Record finished iterations in a file; optionally slow training down."""

    priority = "LOWEST"

    def __init__(self) -> None:
        self.path = os.environ.get("RESUME_TEST_PROGRESS")
        self.sleep = float(os.environ.get("RESUME_TEST_SLEEP_S", "0") or 0)

    def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        if self.path:
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(f"{runner.iter + 1}\n")
        if self.sleep:
            time.sleep(self.sleep)


@HOOKS.register_module(force=True)
class ForgetfulHook(Hook):
    """Nudge the weights at this hook's 5th iteration (a count lost on resume)."""

    def __init__(self) -> None:
        self.calls = 0

    def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        self.calls += 1
        if self.calls == 5:
            with torch.no_grad():
                for param in runner.model.parameters():
                    param.mul_(0.5)


def _install_slow_fsync() -> None:
    delay = float(os.environ.get("RESUME_TEST_SLOW_FSYNC_S", "0") or 0)
    marker = os.environ.get("RESUME_TEST_WRITE_MARKER")
    if delay <= 0 or getattr(os, "_resume_test_slow", False):
        return
    real_fsync = os.fsync

    def slow_fsync(fd: int) -> None:
        if marker:
            with open(marker, "a", encoding="utf-8") as fh:
                fh.write("w\n")
        time.sleep(delay)
        real_fsync(fd)

    os.fsync = slow_fsync
    os._resume_test_slow = True  # type: ignore[attr-defined]


_install_slow_fsync()


def config(
    work_dir: str,
    by_epoch: bool = False,
    workers: int = 0,
    max_iters: int = 40,
    max_epochs: int = 2,
    interval: int = 4,
    val_interval: int = 20,
    progress: bool = True,
) -> dict[str, Any]:
    """A small training config on the digits: augmentation, dropout, two schedulers, EMA."""
    sampler = {"type": "DefaultSampler", "shuffle": True} if by_epoch else {"type": "InfiniteSampler", "shuffle": True}
    train_cfg = (
        {"by_epoch": True, "max_epochs": max_epochs, "val_interval": 1}
        if by_epoch
        else {"by_epoch": False, "max_iters": max_iters, "val_interval": val_interval}
    )
    loader: dict[str, Any] = {
        "batch_size": 64,
        "num_workers": workers,
        "dataset": {"type": "DigitsDataset", "split": "train", "augment": True, "noise_std": 0.05},
        "sampler": sampler,
    }
    hooks: list[dict[str, Any]] = [{"type": "EMAHook", "momentum": 0.1}]
    if progress:
        hooks.append({"type": "ProgressHook"})
    return {
        "custom_imports": {"imports": ["resume_support"]},
        "model": {"type": "DigitsMLP", "hidden": [32], "dropout": 0.2},
        "work_dir": work_dir,
        "train_dataloader": loader,
        "val_dataloader": {
            "batch_size": 256,
            "dataset": {"type": "DigitsDataset", "split": "val"},
            "sampler": {"type": "DefaultSampler", "shuffle": False},
        },
        "val_cfg": {},
        "val_evaluator": {"type": "Accuracy"},
        "train_cfg": train_cfg,
        "optim_wrapper": {"optimizer": {"type": "SGD", "lr": 0.1, "momentum": 0.9, "weight_decay": 0.0001}},
        "param_scheduler": [
            {"type": "LinearLR", "start_factor": 0.1, "by_epoch": False, "begin": 0, "end": 10},
            {"type": "MultiStepLR", "milestones": [1, 2] if by_epoch else [15, 30], "gamma": 0.5, "by_epoch": by_epoch},
        ],
        "default_hooks": {
            "logger": {"type": "LoggerHook", "interval": 5},
            "checkpoint": {"type": "CheckpointHook", "interval": interval, "by_epoch": False, "max_keep_ckpts": 3},
        },
        "custom_hooks": hooks,
        "randomness": {"seed": 3, "deterministic": True},
    }
