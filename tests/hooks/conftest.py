"""Fakes for hook tests: a runner with the attributes hooks use, a message hub, a logger."""

from __future__ import annotations

import os
from typing import Any

import pytest
import torch

from torchkiln.runner.checkpointer import Checkpointer


class FakeHub:
    """Records what hooks hand to the message hub (values kept exactly as given)."""

    def __init__(self) -> None:
        self.scalars: dict[str, list[Any]] = {}
        self.runtime_info: dict[str, Any] = {}

    def update_scalar(self, key: str, value: Any, count: int = 1) -> None:
        self.scalars.setdefault(key, []).append(value)

    def update_scalars(self, values: dict[str, Any]) -> None:
        for key, value in values.items():
            self.update_scalar(key, value)

    def update_info(self, key: str, value: Any) -> None:
        self.runtime_info[key] = value

    def get_info(self, key: str, default: Any = None) -> Any:
        return self.runtime_info.get(key, default)

    def state_dict(self) -> dict[str, Any]:
        return {"runtime_info": dict(self.runtime_info)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.runtime_info = dict(state["runtime_info"])


class FakeLogger:
    """Collects ``(level, message)`` pairs."""

    def __init__(self) -> None:
        self.records: list[tuple[str, str]] = []

    def _log(self, level: str, msg: str, **_: Any) -> None:
        self.records.append((level, str(msg)))

    def info(self, msg: str, **kw: Any) -> None:
        self._log("info", msg, **kw)

    def warning(self, msg: str, **kw: Any) -> None:
        self._log("warning", msg, **kw)

    def error(self, msg: str, **kw: Any) -> None:
        self._log("error", msg, **kw)

    def debug(self, msg: str, **kw: Any) -> None:
        self._log("debug", msg, **kw)

    def messages(self, level: str | None = None) -> list[str]:
        return [m for lvl, m in self.records if level is None or lvl == level]


class FakeLogProcessor:
    """Returns a tag with the mode and position, and a line naming them."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, str]] = []

    def get_log_after_iter(self, runner: Any, batch_idx: int, mode: str) -> tuple[dict[str, Any], str]:
        self.calls.append(("iter", batch_idx, mode))
        return {"loss": 0.5, "lr": 0.1}, f"{mode} iter {batch_idx}"

    def get_log_after_epoch(
        self, runner: Any, batch_idx: int, mode: str, with_non_scalar: bool = False
    ) -> tuple[dict[str, Any], str]:
        self.calls.append(("epoch", batch_idx, mode))
        tag: dict[str, Any] = {"accuracy/top1": 90.0}
        if with_non_scalar:
            tag["confusion"] = [[1, 0], [0, 1]]
        return tag, f"{mode} epoch done ({batch_idx} batches)"


class FakeLoop:
    """Counters and a dataloader, like the train loops (epoch/iter count finished ones)."""

    def __init__(self, max_epochs: int = 3, iters_per_epoch: int = 4, max_iters: int | None = None) -> None:
        self.epoch = 0
        self.iter = 0
        self.max_epochs = max_epochs
        self.max_iters = max_iters if max_iters is not None else max_epochs * iters_per_epoch
        self.dataloader = list(range(iters_per_epoch))
        self.stop_training = False


class FakeRunner:
    """The attributes of the Runner API that hooks touch; its Checkpointer writes real files."""

    def __init__(self, work_dir: str, model: torch.nn.Module | None = None, **loop_kw: Any) -> None:
        self.work_dir = work_dir
        self.log_dir = os.path.join(work_dir, "20240101_000000")
        os.makedirs(self.log_dir, exist_ok=True)
        self.timestamp = "20240101_000000"
        self.experiment_name = "exp"
        self.seed = 7
        self.rank = 0
        self.world_size = 1
        self.message_hub = FakeHub()
        self.logger = FakeLogger()
        self.log_processor = FakeLogProcessor()
        self.visualizer = None
        self.model = model if model is not None else torch.nn.Linear(2, 1)
        self.optim_wrapper: Any = None
        self.param_schedulers: Any = None
        self.train_loop = FakeLoop(**loop_kw)
        self.train_dataloader = self.train_loop.dataloader
        self.val_loop = None
        self.test_loop = None
        self.hooks: list[Any] = []
        self.saved: list[dict[str, Any]] = []
        self.checkpointer = RecordingCheckpointer(self)

    @property
    def epoch(self) -> int:
        return self.train_loop.epoch

    @property
    def iter(self) -> int:
        return self.train_loop.iter

    @property
    def max_epochs(self) -> int:
        return self.train_loop.max_epochs

    @property
    def max_iters(self) -> int:
        return self.train_loop.max_iters

    def save_checkpoint(self, out_dir: str, filename: str, **options: Any) -> str:
        """As Runner.save_checkpoint: through the Checkpointer, in the foreground."""
        return self.checkpointer.save(filename, out_dir, async_save=False, **options)

    def use_rank(self, rank: int) -> None:
        """Act as process ``rank`` (its Checkpointer writes only on rank 0)."""
        self.rank = rank
        self.checkpointer = RecordingCheckpointer(self, rank)


class FakeState:
    """Captures a small checkpoint of a FakeRunner (the Checkpointer's state source)."""

    def __init__(self, runner: FakeRunner) -> None:
        self.runner = runner

    def capture(self, save_optimizer: bool, save_param_scheduler: bool, meta: Any, by_epoch: bool) -> dict[str, Any]:
        runner = self.runner
        checkpoint: dict[str, Any] = {
            "meta": {"epoch": runner.epoch, "iter": runner.iter, **(meta or {})},
            "state_dict": {k: v.detach().clone() for k, v in runner.model.state_dict().items()},
            "message_hub": runner.message_hub.state_dict(),
        }
        if save_optimizer:
            checkpoint["optimizer"] = {"state": "opt"}
        if save_param_scheduler:
            checkpoint["param_schedulers"] = [{"last_step": 1}]
        for hook in runner.hooks:
            hook.before_save_checkpoint(runner, checkpoint)
        runner.saved.append({"save_optimizer": save_optimizer, "save_param_scheduler": save_param_scheduler,
                             "meta": meta, "by_epoch": by_epoch, "checkpoint": checkpoint})
        return checkpoint

    def restore(self, checkpoint: dict[str, Any], filename: str, resume_optimizer: bool, resume_param_scheduler: bool) -> None:
        """Nothing to restore: tests position the fake loop themselves."""

    def load_weights(self, checkpoint: dict[str, Any], filename: str, strict: bool, revise_keys: Any) -> None:
        self.runner.model.load_state_dict(checkpoint["state_dict"])


class RecordingCheckpointer(Checkpointer):
    """A real Checkpointer over a FakeState that also notes each file name in ``runner.saved``."""

    def __init__(self, runner: FakeRunner, rank: int = 0) -> None:
        super().__init__(runner.work_dir, FakeState(runner), rank=rank, logger=runner.logger, message_hub=runner.message_hub)
        self._fake_runner = runner

    def save(self, filename: str, out_dir: str | None = None, **options: Any) -> str:
        path = super().save(filename, out_dir, **options)
        self._fake_runner.saved[-1]["filename"] = filename
        return path


@pytest.fixture
def make_runner(tmp_path: Any) -> Any:
    """``make_runner(**loop_kw)`` → a FakeRunner working in a fresh folder."""
    counter = iter(range(1000))

    def factory(model: torch.nn.Module | None = None, work_dir: str | None = None, **loop_kw: Any) -> FakeRunner:
        folder = work_dir or str(tmp_path / f"run{next(counter)}")
        os.makedirs(folder, exist_ok=True)
        return FakeRunner(folder, model=model, **loop_kw)

    return factory


def run_train_epoch(runner: FakeRunner, hooks: list[Any], outputs: Any = None) -> None:
    """Drive one epoch of the epoch-based loop's hook calls, then count the epoch."""
    loop = runner.train_loop
    for hook in hooks:
        hook.before_train_epoch(runner)
    for idx, batch in enumerate(loop.dataloader):
        for hook in hooks:
            hook.before_train_iter(runner, idx, batch)
        out = outputs(runner) if callable(outputs) else outputs
        for hook in hooks:
            hook.after_train_iter(runner, idx, batch, out)
        loop.iter += 1
    for hook in hooks:
        hook.after_train_epoch(runner)
    loop.epoch += 1


def run_val(runner: FakeRunner, hooks: list[Any], metrics: dict[str, Any]) -> None:
    """Drive a validation epoch's hook calls (no batches)."""
    for hook in hooks:
        hook.before_val(runner)
        hook.before_val_epoch(runner)
    for hook in hooks:
        hook.after_val_epoch(runner, metrics)
        hook.after_val(runner)


@pytest.fixture
def drive() -> Any:
    """The loop drivers: ``drive.train_epoch(runner, hooks, outputs)`` and ``drive.val(...)``."""

    class Drive:
        train_epoch = staticmethod(run_train_epoch)
        val = staticmethod(run_val)

    return Drive
