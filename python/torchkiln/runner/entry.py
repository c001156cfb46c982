"""What ``torchkiln train|val|test`` do once the config is loaded and validated."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any

from torchkiln.errors import UsageError

__all__ = ["apply_cli_args", "test", "train", "val"]


class _LimitedLoader:
    """The first ``limit`` batches of a dataloader (for ``--dry-run``)."""

    def __init__(self, dataloader: Any, limit: int = 1) -> None:
        self._dataloader = dataloader
        self._limit = limit

    def __iter__(self) -> Iterator[Any]:
        for index, batch in enumerate(self._dataloader):
            if index >= self._limit:
                break
            yield batch

    def __len__(self) -> int:
        return min(self._limit, len(self._dataloader))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._dataloader, name)


def apply_cli_args(cfg: Any, args: Any) -> Any:
    """Fold ``--work-dir``, ``--resume``, ``--amp``, ``--launcher`` and ``--checkpoint`` into ``cfg``."""
    work_dir = getattr(args, "work_dir", None)
    if work_dir:
        cfg["work_dir"] = work_dir
    elif not cfg.get("work_dir"):
        filename = getattr(cfg, "filename", None) or "config"
        cfg["work_dir"] = os.path.join("work_dirs", os.path.splitext(os.path.basename(filename))[0])
    resume = getattr(args, "resume", None)
    if resume is not None:
        cfg["resume"] = True if resume in (True, "auto", "") else resume
    if getattr(args, "amp", False):
        optim = cfg.get("optim_wrapper")
        if optim is None:
            raise UsageError("--amp needs an optim_wrapper in the config")
        optim = dict(optim.to_dict() if hasattr(optim, "to_dict") else optim)
        wrapper_type = optim.get("type", "OptimWrapper")
        if wrapper_type == "AmpOptimWrapper":
            pass
        elif wrapper_type == "OptimWrapper":
            optim["type"] = "AmpOptimWrapper"
            optim.setdefault("loss_scale", "dynamic")
        else:
            raise UsageError(f"--amp works with OptimWrapper, the config uses {wrapper_type}", where="optim_wrapper.type")
        cfg["optim_wrapper"] = optim
    launcher = getattr(args, "launcher", None)
    if launcher:
        cfg["launcher"] = launcher
    checkpoint = getattr(args, "checkpoint", None)
    if checkpoint:
        cfg["load_from"] = checkpoint
    return cfg


def _build_runner(cfg: Any) -> Any:
    from torchkiln.runner.runner import Runner

    runner_type = cfg.get("runner_type")
    if runner_type:
        from torchkiln.registry import RUNNERS

        return RUNNERS.get(runner_type).from_cfg(cfg)
    return Runner.from_cfg(cfg)


def train(cfg: Any, args: Any) -> int:
    """Train from a loaded config; ``--dry-run`` runs one train and one val iteration."""
    cfg = apply_cli_args(cfg, args)
    dry_run = bool(getattr(args, "dry_run", False))
    if dry_run:
        hooks = dict(cfg.get("default_hooks") or {})
        hooks["checkpoint"] = None
        cfg["default_hooks"] = hooks
    runner = _build_runner(cfg)
    if dry_run:
        _limit_for_dry_run(runner)
    runner.train()
    if dry_run:
        runner.logger.info("dry run finished: one train and one val iteration ran")
    return 0


def _limit_for_dry_run(runner: Any) -> None:
    loop = runner.train_loop
    loop.dataloader = _LimitedLoader(loop.dataloader, 1)
    loop.limit_to_one_iteration()
    if runner.val_loop is not None:
        runner.val_loop.dataloader = _LimitedLoader(runner.val_loop.dataloader, 1)


def _evaluate(cfg: Any, args: Any, mode: str) -> int:
    if not getattr(args, "checkpoint", None) and not cfg.get("load_from"):
        raise UsageError(f"torchkiln {mode} needs --checkpoint CKPT (or load_from in the config)")
    cfg = apply_cli_args(cfg, args)
    # Evaluation never resumes training state and never needs the optimizer.
    cfg["resume"] = False
    for key in ("train_dataloader", "train_cfg", "optim_wrapper", "param_scheduler"):
        if key in cfg:
            cfg[key] = None
    runner = _build_runner(cfg)
    metrics = runner.val() if mode == "val" else runner.test()
    if isinstance(metrics, Mapping):
        runner.logger.info(f"{mode} metrics: " + "  ".join(f"{k}: {v:.4f}" if isinstance(v, float) else f"{k}: {v}" for k, v in metrics.items()))
    return 0


def val(cfg: Any, args: Any) -> int:
    """Validate a checkpoint on the config's val set."""
    return _evaluate(cfg, args, "val")


def test(cfg: Any, args: Any) -> int:
    """Test a checkpoint on the config's test set."""
    return _evaluate(cfg, args, "test")
