"""Command-line flags of ``torchkiln train|val|test`` folded into the loaded config.

This happens before validation, so the one validation pass sees exactly what will run.
"""

from __future__ import annotations

import os
from typing import Any

from torchkiln.errors import UsageError

__all__ = ["apply_run_flags"]

_TRAIN_PARTS = ("train_dataloader", "train_cfg", "optim_wrapper", "param_scheduler")


def apply_run_flags(cfg: Any, args: Any, command: str) -> Any:
    """Fold ``--work-dir``, ``--resume``, ``--amp``, ``--launcher``, ``--checkpoint`` and
    ``--dry-run`` into ``cfg`` for ``command`` (``train``, ``val`` or ``test``); return it.

    Evaluation never resumes training state and never needs the train parts: they are set
    to null. A dry run saves no checkpoints.

    :raises UsageError: ``val``/``test`` without a checkpoint; ``--amp`` without a plain
        ``OptimWrapper``.
    """
    if (
        command in ("val", "test")
        and not getattr(args, "checkpoint", None)
        and not cfg.get("load_from")
    ):
        raise UsageError(
            f"torchkiln {command} needs --checkpoint CKPT (or load_from in the config)"
        )
    cfg = _fold_flags(cfg, args)
    if command in ("val", "test"):
        cfg["resume"] = False
        for key in _TRAIN_PARTS:
            if key in cfg:
                cfg[key] = None
    elif getattr(args, "dry_run", False):
        hooks = dict(cfg.get("default_hooks") or {})
        hooks["checkpoint"] = None
        cfg["default_hooks"] = hooks
    return cfg


def _fold_flags(cfg: Any, args: Any) -> Any:
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
            raise UsageError(
                f"--amp works with OptimWrapper, the config uses {wrapper_type}",
                where="optim_wrapper.type",
            )
        cfg["optim_wrapper"] = optim
    launcher = getattr(args, "launcher", None)
    if launcher:
        cfg["launcher"] = launcher
    checkpoint = getattr(args, "checkpoint", None)
    if checkpoint:
        cfg["load_from"] = checkpoint
    return cfg
