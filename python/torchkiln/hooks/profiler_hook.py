"""ProfilerHook: run ``torch.profiler`` over the first epochs or iterations of training.

The profiler starts before the run (``before_run``, as in MMEngine) and stops after
``profile_times`` training epochs (``by_epoch``) or once training iteration
``profile_times`` is done (counted from the start of training, so a resumed run past it
profiles one iteration), or at the end of the run. When it stops, the hook logs the table of
``key_averages()`` and writes a Chrome trace (open it in ``chrome://tracing`` or Perfetto)
to ``json_trace_path``, by default ``<log_dir>/profiler_trace.json`` (``..._rank<r>.json``
on ranks other than 0).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from torchkiln.errors import ConfigError, ConfigTypeError, ConfigValueError
from torchkiln.hooks.hook import Hook
from torchkiln.registry import HOOKS

__all__ = ["ProfilerHook", "check_kineto"]

_WHERE = "custom_hooks.ProfilerHook"
_TRACE_TYPES = ("log_trace", "tb_trace")


def check_kineto() -> bool:
    """Whether this torch build has the Kineto profiler backend (what ``torch.profiler``
    needs to record CPU and CUDA activity)."""
    import torch

    available = getattr(torch.autograd, "kineto_available", None)
    return bool(available()) if callable(available) else False


def _check_schedule(schedule: Any) -> None:
    """Raise unless ``schedule`` holds valid ``torch.profiler.schedule`` arguments."""
    if not isinstance(schedule, Mapping):
        raise ConfigTypeError(
            "ProfilerHook schedule must be a dict of torch.profiler.schedule arguments,"
            f" got {schedule!r}",
            where=f"{_WHERE}.schedule",
        )
    import torch

    try:
        torch.profiler.schedule(**schedule)
    except TypeError as exc:
        raise ConfigTypeError(
            f"ProfilerHook schedule {dict(schedule)!r} is not valid for torch.profiler.schedule"
            f" ({exc})",
            where=f"{_WHERE}.schedule",
            hint="give wait, warmup and active (and optionally repeat, skip_first)",
        ) from None


def _check_trace_spec(spec: Any) -> None:
    """Raise unless ``spec`` is None, a callable or ``{type: log_trace|tb_trace, ...}``."""
    if isinstance(spec, Mapping):
        if spec.get("type") not in _TRACE_TYPES:
            raise ConfigValueError(
                f"ProfilerHook on_trace_ready type must be one of {list(_TRACE_TYPES)},"
                f" got {spec.get('type')!r}",
                where=f"{_WHERE}.on_trace_ready",
            )
    elif spec is not None and not callable(spec):
        raise ConfigValueError(
            f"ProfilerHook on_trace_ready must be a callable, a dict or None, got {spec!r}",
            where=f"{_WHERE}.on_trace_ready",
        )


@HOOKS.register_module()
class ProfilerHook(Hook):
    """Profile the first ``profile_times`` epochs or iterations of training.

    :param by_epoch: count ``profile_times`` in epochs (else iterations).
    :param profile_times: how many epochs/iterations to profile.
    :param activity_with_cpu: record CPU activity.
    :param activity_with_cuda: record CUDA activity. With neither, torch's default
        activities are recorded (CPU, and CUDA when available).
    :param schedule: keyword arguments of ``torch.profiler.schedule`` (``wait``, ``warmup``,
        ``active``, ``repeat``, ``skip_first``); the profiler steps once per iteration.
    :param on_trace_ready: a callable, or ``{type: log_trace, **table kwargs}`` (log the
        table of each finished cycle), or ``{type: tb_trace, dir_name: ...}`` (TensorBoard
        trace files; ``dir_name`` relative to the log folder, default ``tf_tracing_logs``).
    :param record_shapes: record input shapes of operators.
    :param profile_memory: track tensor memory allocation and release.
    :param with_stack: record source locations.
    :param with_flops: estimate FLOPs of matrix multiplications and convolutions.
    :param json_trace_path: where to write the Chrome trace; relative paths are under the
        log folder. Default ``profiler_trace.json``.
    """

    priority = "VERY_LOW"

    def __init__(
        self,
        *,
        by_epoch: bool = True,
        profile_times: int = 1,
        activity_with_cpu: bool = True,
        activity_with_cuda: bool = False,
        schedule: Mapping[str, Any] | None = None,
        on_trace_ready: Callable[..., Any] | Mapping[str, Any] | None = None,
        record_shapes: bool = False,
        profile_memory: bool = False,
        with_stack: bool = False,
        with_flops: bool = False,
        json_trace_path: str | None = None,
    ) -> None:
        if isinstance(profile_times, bool) or not isinstance(profile_times, int):
            raise ConfigTypeError(
                f"ProfilerHook profile_times must be an int, got {profile_times!r}",
                where=f"{_WHERE}.profile_times",
            )
        if profile_times < 1:
            raise ConfigValueError(
                f"ProfilerHook profile_times must be a positive int, got {profile_times!r}",
                where=f"{_WHERE}.profile_times",
            )
        if schedule is not None:
            _check_schedule(schedule)
        _check_trace_spec(on_trace_ready)
        self.by_epoch = by_epoch
        self.profile_times = profile_times
        self.activity_with_cpu = activity_with_cpu
        self.activity_with_cuda = activity_with_cuda
        self.schedule = None if schedule is None else dict(schedule)
        self.on_trace_ready = on_trace_ready
        self.record_shapes = record_shapes
        self.profile_memory = profile_memory
        self.with_stack = with_stack
        self.with_flops = with_flops
        self.json_trace_path = json_trace_path
        self.profiler: Any = None
        self._closed = False
        self._count = 0
        self.trace_path: str | None = None

    # ------------------------------------------------------------------ setup
    def _activities(self) -> list[Any] | None:
        """The activities to record; None (torch's defaults) when neither is asked for."""
        import torch

        activities = []
        if self.activity_with_cpu:
            activities.append(torch.profiler.ProfilerActivity.CPU)
        if self.activity_with_cuda:
            if not torch.cuda.is_available():
                raise ConfigError(
                    "ProfilerHook activity_with_cuda=True but CUDA is not available",
                    where=f"{_WHERE}.activity_with_cuda",
                )
            activities.append(torch.profiler.ProfilerActivity.CUDA)
        return activities or None

    def _log_dir(self, runner: Any) -> str:
        return getattr(runner, "log_dir", None) or runner.work_dir

    def _parse_trace_config(self, runner: Any) -> Callable[..., Any] | None:
        """The ``on_trace_ready`` handler ``torch.profiler`` gets, from the hook's setting."""
        import torch

        spec = self.on_trace_ready
        _check_trace_spec(spec)
        if spec is None or callable(spec):
            return spec
        options = {k: v for k, v in spec.items() if k != "type"}
        if spec["type"] == "log_trace":

            def log_table(prof: Any) -> None:
                runner.logger.info("profiler cycle:\n" + prof.key_averages().table(**options))

            return log_table
        dir_name = options.pop("dir_name", "tf_tracing_logs")
        if not os.path.isabs(dir_name):
            dir_name = os.path.join(self._log_dir(runner), dir_name)
        return torch.profiler.tensorboard_trace_handler(dir_name, **options)

    def before_run(self, runner: Any) -> None:
        """Start the profiler (as MMEngine does, before the run)."""
        import torch

        limit = getattr(runner, "max_epochs" if self.by_epoch else "max_iters", None)
        if isinstance(limit, int) and limit and self.profile_times > limit:
            unit = "epochs" if self.by_epoch else "iterations"
            raise ConfigValueError(
                f"ProfilerHook profile_times={self.profile_times} exceeds the run's {limit} {unit}",
                where=f"{_WHERE}.profile_times",
            )
        self.profiler = torch.profiler.profile(
            activities=self._activities(),
            schedule=None if self.schedule is None else torch.profiler.schedule(**self.schedule),
            on_trace_ready=self._parse_trace_config(runner),
            record_shapes=self.record_shapes,
            profile_memory=self.profile_memory,
            with_stack=self.with_stack,
            with_flops=self.with_flops,
        )
        self.profiler.__enter__()
        self._closed = False
        self._count = 0
        unit = "epoch(s)" if self.by_epoch else "iteration(s)"
        runner.logger.info(f"profiler is recording the first {self.profile_times} {unit}")

    # ------------------------------------------------------------------ stepping
    @property
    def _recording(self) -> bool:
        """A profiler was started (or handed over) and not stopped yet."""
        return self.profiler is not None and not self._closed

    def after_train_iter(
        self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None
    ) -> None:
        """Step the profiler schedule; stop after training iteration ``profile_times``."""
        if not self._recording:
            return
        self.profiler.step()
        if not self.by_epoch and runner.iter + 1 >= self.profile_times:
            self._export_chrome_trace(runner)

    def after_train_epoch(self, runner: Any) -> None:
        """Stop after ``profile_times`` epochs."""
        if not self._recording or not self.by_epoch:
            return
        self._count += 1
        if self._count >= self.profile_times:
            self._export_chrome_trace(runner)

    def after_run(self, runner: Any) -> None:
        """Stop the profiler if the run ended (or failed) before it was done."""
        if self._recording:
            self._export_chrome_trace(runner)

    # ------------------------------------------------------------------ output
    def _default_trace_path(self, runner: Any) -> str:
        name = self.json_trace_path or "profiler_trace.json"
        if not os.path.isabs(name):
            name = os.path.join(self._log_dir(runner), name)
        rank = getattr(runner, "rank", 0)
        if rank:
            stem, ext = os.path.splitext(name)
            name = f"{stem}_rank{rank}{ext or '.json'}"
        return name

    def _export_chrome_trace(self, runner: Any) -> None:
        """Stop the profiler, log its summary table and write the Chrome trace."""
        self._closed = True
        runner.logger.info("profiler: collecting results (this may take a while)")
        self.profiler.__exit__(None, None, None)
        try:
            sort_by = "self_cuda_time_total" if self.activity_with_cuda else "self_cpu_time_total"
            table = self.profiler.key_averages().table(sort_by=sort_by, row_limit=20)
            runner.logger.info("profiler summary:\n" + table)
        except Exception as exc:  # no events recorded (e.g. the schedule never became active)
            runner.logger.warning(f"profiler: no summary ({type(exc).__name__}: {exc})")
        if self.on_trace_ready is not None and self.json_trace_path is None:
            return  # traces went to the on_trace_ready handler
        path = self.json_trace_path or "the log folder"
        try:
            path = self._default_trace_path(runner)
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            self.profiler.export_chrome_trace(path)
        except Exception as exc:
            runner.logger.warning(
                f"profiler: could not write the Chrome trace to {path} ({type(exc).__name__}: {exc})"
            )
            return
        self.trace_path = path
        runner.logger.info(f"profiler: Chrome trace written to {path}")
