"""Tiny trainings for plugin tests: a base config, a fragment merged in, what the run left.

:func:`run_training` builds a :class:`~torchkiln.runner.Runner` from :func:`tiny_config`
with a fragment merged in (dicts merge, lists and other values replace, as in config
inheritance), records every mount point call with the hooks it reached, trains, and returns
a :class:`TrainingResult`. ``stop_after=N`` stops training after iteration ``N`` the way
SIGTERM does (a resumable checkpoint, exit code 143); ``resume=True`` continues from the
work dir's last checkpoint.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from torchkiln.errors import EXIT_OK, EXIT_TERMINATED, TorchkilnError

__all__ = ["TrainingResult", "merge_config", "run_training", "tiny_config"]


def tiny_config(work_dir: str | os.PathLike[str], max_iters: int = 8) -> dict[str, Any]:
    """An iteration-based run of a small MLP on the bundled digits, with validation at the
    end, a log record every 2 iterations and a checkpoint every 4 (a second or two on a CPU)."""
    return {
        "work_dir": os.fspath(work_dir),
        "model": {"type": "DigitsMLP", "hidden": [16]},
        "train_dataloader": {
            "batch_size": 32,
            "num_workers": 0,
            "dataset": {"type": "DigitsDataset", "split": "train"},
            "sampler": {"type": "InfiniteSampler", "shuffle": True},
            "collate_fn": {"type": "default_collate"},
        },
        "val_dataloader": {
            "batch_size": 256,
            "num_workers": 0,
            "dataset": {"type": "DigitsDataset", "split": "val"},
            "sampler": {"type": "DefaultSampler", "shuffle": False},
            "collate_fn": {"type": "default_collate"},
        },
        "val_cfg": {},
        "val_evaluator": {"type": "Accuracy"},
        "train_cfg": {"by_epoch": False, "max_iters": max_iters, "val_interval": max_iters},
        "optim_wrapper": {"optimizer": {"type": "SGD", "lr": 0.1, "momentum": 0.9}},
        "default_hooks": {
            "logger": {"type": "LoggerHook", "interval": 2},
            "checkpoint": {"type": "CheckpointHook", "interval": 4, "by_epoch": False},
            "progress_bar": None,
        },
        "randomness": {"seed": 0},
        "log_level": "WARNING",
    }


def merge_config(base: Mapping[str, Any], fragment: Mapping[str, Any] | None) -> dict[str, Any]:
    """``base`` with ``fragment`` merged in: dicts merge key by key, anything else replaces;
    a ``None`` value in ``fragment`` replaces too (e.g. ``default_hooks: {checkpoint: None}``)."""
    out = copy.deepcopy(dict(base))
    for key, value in (fragment or {}).items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge_config(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@attrs.define
class TrainingResult:
    """What a tiny training left behind.

    :param work_dir: the work dir.
    :param log_dir: the run's log folder (``work_dir/<timestamp>``).
    :param scalars: the records of ``scalars.jsonl`` (``{"step", "epoch", "mode", ...}``).
    :param calls: hook name -> the mount points it was called at, in order, each once.
    :param checkpoints: checkpoint file names in the work dir, sorted.
    :param exit_code: 0, or the exit code of the :class:`~torchkiln.errors.TorchkilnError`
        that ended the run (143 after ``stop_after``).
    :param error: that error, if any.
    :param runner: the runner (after its run).
    """

    work_dir: Path
    log_dir: Path
    scalars: list[dict[str, Any]]
    calls: dict[str, list[str]]
    checkpoints: list[str]
    exit_code: int
    error: BaseException | None
    runner: Any

    def train_steps(self, key: str = "loss") -> list[int]:
        """The steps of the training records that hold ``key``."""
        return [r["step"] for r in self.scalars if r.get("mode") == "train" and key in r]


class _StopAfter:
    """Request a stop after iteration ``n``, as SIGTERM would."""

    priority = "LOWEST"

    def __init__(self, n: int) -> None:
        self.n = n

    def after_train_iter(
        self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None
    ) -> None:
        if runner.iter + 1 == self.n:
            runner.request_stop("SIGTERM", exit_code=EXIT_TERMINATED)


def _record_calls(runner: Any, calls: dict[str, list[str]]) -> None:
    """Note, per hook name, the mount points it is called at.

    Each mount point of the runner's facade is wrapped; so is ``facade.install``, through
    which the host puts in a new dispatch function whenever a registration (an entry-point
    plugin at run start, a hook added later) changes a mount point's call list.
    """
    from torchkiln.hookspecs import MOUNT_POINTS

    host = runner.hook_host
    facade = runner.dispatch
    install = facade.install

    def wrap(mount_point: str, dispatch: Any) -> Any:
        def recorded(*args: Any, **kwargs: Any) -> None:
            for record, _ in host.call_table.get(mount_point, ()):
                seen = calls.setdefault(record.name, [])
                if mount_point not in seen:
                    seen.append(mount_point)
            dispatch(*args, **kwargs)

        return recorded

    def recording_install(mount_point: str, dispatch: Any) -> None:
        install(mount_point, wrap(mount_point, dispatch))

    facade.install = recording_install
    for mount_point in MOUNT_POINTS:
        install(mount_point, wrap(mount_point, getattr(facade, mount_point)))


def _read_scalars(path: Path, offset: int = 0) -> list[dict[str, Any]]:
    """The records of a scalars file from byte ``offset`` on (two runs started in the same
    second share a log folder)."""
    if not path.is_file():
        return []
    records = []
    with open(path, "rb") as fh:
        fh.seek(offset)
        text = fh.read().decode("utf-8")
    for line in text.splitlines():
        line = line.strip()
        if line:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records


def run_training(
    fragment: Mapping[str, Any] | None = None,
    work_dir: str | os.PathLike[str] = "work_dirs/kiln_test",
    max_iters: int = 8,
    stop_after: int | None = None,
    resume: bool = False,
    hooks: tuple[Any, ...] = (),
) -> TrainingResult:
    """Train :func:`tiny_config` with ``fragment`` merged in and report what happened.

    :param fragment: config keys to merge into the base config.
    :param work_dir: the work dir (kept; pass a fresh temp folder).
    :param max_iters: training iterations.
    :param stop_after: stop after this iteration as SIGTERM would (exit code 143).
    :param resume: resume from the work dir's last checkpoint.
    :param hooks: hook objects registered beside the config's.
    :raises: errors that are not :class:`~torchkiln.errors.TorchkilnError` propagate.
    """
    from torchkiln.logging import MessageHub
    from torchkiln.runner import Runner
    from torchkiln.visualization import Visualizer

    cfg = merge_config(tiny_config(work_dir, max_iters), fragment)
    if resume:
        cfg["resume"] = True
    Visualizer.reset_instances()
    MessageHub.reset_instances()
    runner = Runner.from_cfg(cfg)
    for hook in hooks:
        runner.register_hook(hook)
    if stop_after is not None:
        runner.register_hook(_StopAfter(stop_after))
    calls: dict[str, list[str]] = {}
    _record_calls(runner, calls)
    scalars_file = Path(runner.log_dir) / "scalars.jsonl"
    offset = scalars_file.stat().st_size if scalars_file.is_file() else 0
    exit_code, error = EXIT_OK, None
    try:
        runner.train()
    except TorchkilnError as exc:
        exit_code, error = exc.exit_code, exc
    root = Path(runner.work_dir)
    checkpoints = sorted(p.name for p in root.glob("*.pth"))
    return TrainingResult(
        work_dir=root,
        log_dir=Path(runner.log_dir),
        scalars=_read_scalars(scalars_file, offset),
        calls=calls,
        checkpoints=checkpoints,
        exit_code=exit_code,
        error=error,
        runner=runner,
    )
