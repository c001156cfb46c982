"""``torchkiln check-resume``: does an interrupted and resumed run end where a straight one does?

Three short runs of the same config, each in its own work folder, all in this process:

1. *straight*: ``2N`` iterations in one go;
2. *interrupted*: ``N`` iterations, then a stop request saves a resumable checkpoint (the
   same path a SIGTERM takes);
3. *resumed*: a fresh runner resumes from that checkpoint and trains ``N`` more.

The model weights (parameters and buffers) after 1 and 3 are compared tensor by tensor with
``torch.equal``. Periodic and best checkpoints are turned off for the check runs; everything
else in the config (hooks, schedules, EMA, data workers, augmentation) runs as configured.

Exit codes: 0 the weights are bit-identical; 4 they differ (the report names the first
tensor that differs and its largest absolute difference); 2 a config or usage error.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from typing import Any

from torchkiln.errors import RunInterrupted, UsageError
from torchkiln.hooks.hook import Hook

__all__ = [
    "EXIT_DIFFERENT",
    "EXIT_IDENTICAL",
    "CheckResult",
    "check_resume",
    "compare_states",
    "main",
]

EXIT_IDENTICAL = 0
EXIT_DIFFERENT = 4
_MISSING = object()


class _StopAt(Hook):
    """Ask the runner to stop (and save a resumable checkpoint) after iteration ``n``."""

    priority = "LOWEST"

    def __init__(self, n: int) -> None:
        self.n = n

    def after_train_iter(
        self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None
    ) -> None:
        """Stop once the finished iteration count reaches ``n``."""
        if runner.iter + 1 >= self.n:
            runner.request_stop("check-resume")


class CheckResult:
    """What :func:`check_resume` found.

    :param identical: the weights are bit-identical.
    :param lines: the report, one line per item.
    """

    def __init__(self, identical: bool, lines: list[str]) -> None:
        self.identical = identical
        self.lines = lines

    @property
    def exit_code(self) -> int:
        """0 when identical, 4 otherwise."""
        return EXIT_IDENTICAL if self.identical else EXIT_DIFFERENT

    def __str__(self) -> str:
        return "\n".join(self.lines)


def compare_states(
    a: Mapping[str, Any], b: Mapping[str, Any]
) -> tuple[int, int, str | None, float]:
    """``(tensors, differing, first differing key, its max abs diff)`` of two state dicts.

    A key present in one only counts as differing (with an infinite difference).
    """
    import torch

    differing = 0
    first: str | None = None
    first_diff = 0.0
    keys = list(a) + [k for k in b if k not in a]
    for key in keys:
        x, y = a.get(key, _MISSING), b.get(key, _MISSING)
        if isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor):
            same = x.shape == y.shape and x.dtype == y.dtype and torch.equal(x, y)
        elif isinstance(x, torch.Tensor) or isinstance(y, torch.Tensor):
            same = False
        else:
            same = x is not _MISSING and y is not _MISSING and x == y
        if same:
            continue
        differing += 1
        if first is None:
            first = key
            if isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor) and x.shape == y.shape:
                first_diff = float((x.double() - y.double()).abs().max()) if x.numel() else 0.0
            else:
                first_diff = float("inf")
    return len(keys), differing, first, first_diff


def _optimizer_tensors(state: Any, prefix: str = "") -> dict[str, Any]:
    """Flatten an optimizer state dict to ``path -> tensor or number`` (param groups included)."""
    out: dict[str, Any] = {}
    if isinstance(state, Mapping):
        for key, value in state.items():
            if key == "params":
                continue
            out.update(_optimizer_tensors(value, f"{prefix}{key}."))
    elif isinstance(state, (list, tuple)):
        for index, value in enumerate(state):
            out.update(_optimizer_tensors(value, f"{prefix}{index}."))
    else:
        out[prefix.rstrip(".")] = state
    return out


def _run_config(
    config_path: str, cfg_options: Sequence[str], work_dir: str, label: str, resume: str | bool
) -> Any:
    from torchkiln.config.loader import load

    cfg = load(config_path, list(cfg_options))
    cfg["work_dir"] = work_dir
    cfg["resume"] = resume
    cfg["experiment_name"] = f"check-resume-{label}"
    cfg["log_level"] = "ERROR"  # the report says what matters; Python warnings still show
    hooks: Any = cfg.get("default_hooks")
    hooks = dict(hooks.to_dict() if hasattr(hooks, "to_dict") else hooks or {})
    checkpoint = hooks.get("checkpoint", {"type": "CheckpointHook"})
    if checkpoint is not None:
        checkpoint = dict(checkpoint)
        for key in ("save_best", "rule", "published_keys", "max_keep_ckpts", "async_save"):
            checkpoint.pop(key, None)
        checkpoint.update(interval=-1, save_last=False)
        hooks["checkpoint"] = checkpoint
    cfg["default_hooks"] = hooks
    return cfg


def _validate(config_path: str, cfg_options: Sequence[str]) -> None:
    import warnings

    from torchkiln.config.loader import load
    from torchkiln.config.validation import ConfigValidationError, validate

    cfg = load(config_path, list(cfg_options))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        errors = validate(cfg)
    if errors:
        raise ConfigValidationError(errors)
    if not cfg.get("train_cfg") or not cfg.get("train_dataloader"):
        raise UsageError(
            f"{config_path} does not train (no train_cfg/train_dataloader): nothing to check",
            where="check-resume",
        )


def _train(cfg: Any, stop_at: int) -> tuple[Any, float, str | None]:
    """Train until iteration ``stop_at`` (or the end); ``(runner, seconds, stop checkpoint)``."""
    from torchkiln.logging import MessageHub
    from torchkiln.runner.entry import _build_runner

    MessageHub.reset_instances()  # each run starts with a fresh hub, as in its own process
    runner = _build_runner(cfg)
    runner.register_hook(_StopAt(stop_at))
    start = time.perf_counter()
    checkpoint = None
    try:
        runner.train()
    except RunInterrupted:
        checkpoint = runner.checkpointer.latest()
    return runner, time.perf_counter() - start, checkpoint


def check_resume(
    config_path: str, iters: int = 20, cfg_options: Sequence[str] = (), work_dir: str | None = None
) -> CheckResult:
    """Run the three runs (see the module docstring) and compare the final weights.

    :param config_path: the config file.
    :param iters: ``N``: iterations before the interruption, and after it.
    :param cfg_options: overrides, as for ``torchkiln train``.
    :param work_dir: where the three runs' folders go (kept); a temporary folder otherwise
        (removed afterwards).
    """
    if iters < 1:
        raise UsageError(f"--iters must be at least 1, got {iters}", where="check-resume --iters")
    _validate(config_path, cfg_options)
    root = (
        os.path.abspath(work_dir)
        if work_dir
        else tempfile.mkdtemp(prefix="torchkiln-check-resume-")
    )
    keep = work_dir is not None
    try:
        return _check(config_path, iters, cfg_options, root)
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


def _check(config_path: str, iters: int, cfg_options: Sequence[str], root: str) -> CheckResult:
    straight_dir = os.path.join(root, "straight")
    resumed_dir = os.path.join(root, "resumed")
    n = iters
    straight, t_straight, _ = _train(
        _run_config(config_path, cfg_options, straight_dir, "straight", False), 2 * n
    )
    lines = [
        f"check-resume {config_path}: {type(straight.train_loop).__name__}, {n} + {n} iterations"
    ]
    if straight.iter < 2 * n:
        lines.append(f"  note: the config trains only {straight.iter} iterations in all")
    lines.append(f"  straight run:        {straight.iter} iterations in {t_straight:.1f} s")

    first, t_first, checkpoint = _train(
        _run_config(config_path, cfg_options, resumed_dir, "resumed", False), n
    )
    if checkpoint is None:
        lines.append(
            f"  interrupted run:     training ended after {first.iter} iterations without a stop checkpoint"
        )
        lines.append("result: cannot check: the run is too short to interrupt")
        return CheckResult(False, lines)
    position = f"epoch {first.epoch}, iteration {first.iter}"
    lines.append(
        f"  interrupted run:     stopped after {first.iter} iterations ({t_first:.1f} s); saved {os.path.basename(checkpoint)} ({position})"
    )
    second, t_second, _ = _train(
        _run_config(config_path, cfg_options, resumed_dir, "resumed", checkpoint), 2 * n
    )
    lines.append(
        f"  resumed run:         {second.iter - first.iter} more iterations in {t_second:.1f} s, ends at {second.iter}"
    )

    a = {k: v.detach().cpu() for k, v in straight.unwrapped_model.state_dict().items()}
    b = {k: v.detach().cpu() for k, v in second.unwrapped_model.state_dict().items()}
    total, differing, first_key, diff = compare_states(a, b)
    if straight.iter != second.iter:
        differing = max(differing, 1)
        lines.append(f"  iterations differ:   straight {straight.iter}, resumed {second.iter}")
    if differing == 0:
        values = sum(v.numel() for v in a.values() if hasattr(v, "numel"))
        lines.append(f"  model weights:       identical ({total} tensors, {values:,} values)")
    else:
        where = f"; first: {first_key} (max abs diff {diff:.3g})" if first_key else ""
        lines.append(
            f"  model weights:       DIFFERENT: {differing} of {total} tensors differ{where}"
        )
    if straight.optim_wrapper is not None and second.optim_wrapper is not None:
        _, opt_diff, opt_first, opt_max = compare_states(
            _optimizer_tensors(straight.optim_wrapper.state_dict()),
            _optimizer_tensors(second.optim_wrapper.state_dict()),
        )
        opt_line = (
            "identical"
            if opt_diff == 0
            else f"DIFFERENT: first {opt_first} (max abs diff {opt_max:.3g})"
        )
        lines.append(f"  optimizer state:     {opt_line}")
    identical = differing == 0
    lines.append(
        "result: resume is exact (bit-identical weights)"
        if identical
        else "result: resume is NOT exact"
    )
    return CheckResult(identical, lines)


def main(
    config_path: str,
    iters: int = 20,
    cfg_options: list[str] | None = None,
    work_dir: str | None = None,
) -> int:
    """The ``torchkiln check-resume`` command: print the report, return 0 (identical) or 4.

    :param config_path: the config file.
    :param iters: iterations before the interruption, and after it.
    :param cfg_options: overrides (``a.b=1``), as for ``torchkiln train``.
    :param work_dir: keep the runs' folders here (default: a temporary folder, removed).
    """
    result = check_resume(
        config_path, iters=iters, cfg_options=cfg_options or [], work_dir=work_dir
    )
    sys.stdout.write(str(result) + "\n")
    sys.stdout.flush()
    return result.exit_code
