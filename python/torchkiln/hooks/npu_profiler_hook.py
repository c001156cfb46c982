"""NPUProfilerHook: profile training iterations on Ascend NPUs with ``torch_npu``.

The ``torch_npu`` profiler records every operator's device time between training
iterations ``begin`` (included) and ``end`` (excluded) and writes its data to
``result_path`` for Ascend's ``msprof`` tool. Building the hook without ``torch_npu``
installed is a configuration error that names the package.
"""

from __future__ import annotations

import os
from typing import Any

from torchkiln.errors import ConfigValueError, MissingPackageError
from torchkiln.hooks.hook import Hook
from torchkiln.registry import HOOKS

__all__ = ["NPUProfilerHook"]

_WHERE = "custom_hooks.NPUProfilerHook"


def _import_torch_npu() -> Any:
    try:
        import torch_npu  # type: ignore[import-not-found]
    except ImportError:
        raise MissingPackageError(
            "NPUProfilerHook needs the torch_npu package, which is not installed",
            where=_WHERE,
            hint="install torch_npu (Ascend's PyTorch adapter) on an NPU machine, or remove "
            "NPUProfilerHook from custom_hooks; on CUDA or CPU use ProfilerHook",
        ) from None
    return torch_npu


def _is_main_process() -> bool:
    from torchkiln.dist import is_main_process

    return bool(is_main_process())


@HOOKS.register_module()
class NPUProfilerHook(Hook):
    """Profile training iterations ``begin`` to ``end - 1`` with ``torch_npu.npu.profile``.

    Only the main process profiles.

    :param begin: first training iteration to profile (0-based).
    :param end: profiling stops after iteration ``end - 1``; must be greater than ``begin``
        and at most the run's ``max_iters``.
    :param result_path: folder for the profiling data (created if missing).
    :param exit_after_profiling: stop training once profiling is done (the run ends
        normally: ``after_train``/``after_run`` hooks still run).
    :param use_e2e_profiler: collect end-to-end data (PyTorch and NPU level) instead of the
        detailed operator profile.
    :param ge_profiling_to_std_out: turn on GE profiling (host-side scheduling) by setting
        ``GE_PROFILING_TO_STD_OUT=1``.
    """

    priority = "VERY_LOW"

    def __init__(
        self,
        *,
        begin: int = 0,
        end: int = 1,
        result_path: str = "cann_profiling",
        exit_after_profiling: bool = True,
        use_e2e_profiler: bool = False,
        ge_profiling_to_std_out: bool = False,
    ) -> None:
        torch_npu = _import_torch_npu()
        if begin >= end:
            raise ConfigValueError(
                f"NPUProfilerHook begin ({begin}) must be less than end ({end})",
                where=f"{_WHERE}.begin",
            )
        self.begin = begin
        self.end = end
        self.result_path = result_path
        self.exit_after_profiling = exit_after_profiling
        if ge_profiling_to_std_out:
            os.environ["GE_PROFILING_TO_STD_OUT"] = "1"
        os.makedirs(result_path, exist_ok=True)
        self.profiler = torch_npu.npu.profile(result_path, use_e2e_profiler=use_e2e_profiler)

    def before_run(self, runner: Any) -> None:
        """Check that profiling ends within the run."""
        max_iters = getattr(runner, "max_iters", None)
        if isinstance(max_iters, int) and self.end > max_iters:
            raise ConfigValueError(
                f"NPUProfilerHook end ({self.end}) is after the run's last iteration ({max_iters})",
                where=f"{_WHERE}.end",
            )

    def before_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None) -> None:
        """Start profiling at iteration ``begin``."""
        if runner.iter == self.begin and _is_main_process():
            self.profiler.__enter__()
            runner.logger.info("NPUProfiler starts profiling...")

    def after_train_iter(
        self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None
    ) -> None:
        """Stop profiling after iteration ``end - 1``; stop training if asked to."""
        if runner.iter != self.end - 1:
            return
        if _is_main_process():
            runner.logger.info("NPUProfiler is saving its results (this may take a few minutes)")
            self.profiler.__exit__(None, None, None)
        if self.exit_after_profiling:  # on every rank, so that no rank waits for the others
            runner.train_loop.stop_training = True
