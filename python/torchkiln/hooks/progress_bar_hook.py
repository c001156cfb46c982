"""ProgressBarHook: rich progress bars for training, validation and test on a terminal.

One bar for training (``total = max_iters``, so its ETA is the run's) and one per
validation or test epoch, each with iterations done, it/s, elapsed time, ETA and the
smoothed loss::

    train epoch 3/15 ━━━━━━━━━━━━━━━╸━━━━━━━━━  512/1695  88.4 it/s  0:00:05 • 0:00:13  loss: 0.2140

While bars are shown, ``sys.stdout`` and ``sys.stderr`` go through rich, and the run
logger's console handler writes to the current ``sys.stdout``, so log lines appear above the
bars instead of tearing them.

Hot path: ``after_train_iter`` adds one to a counter and compares ``perf_counter()`` with
the next redraw time; the bars are redrawn at most every ``refresh_interval`` seconds (no
background thread). The loss is read only when reading it is free: right after the logger
hook read the message hub at its interval (``HistoryBuffer.ready``), so the bar never
synchronises the device. Off the terminal (``enable: auto``) the hook does nothing.
"""

from __future__ import annotations

import math
import sys
from time import perf_counter
from typing import Any

from torchkiln.errors import ConfigError
from torchkiln.hooks._phase_length import loader_len
from torchkiln.hooks.hook import Hook
from torchkiln.registry import HOOKS

__all__ = ["ProgressBarHook"]

_WHERE = "default_hooks.progress_bar"
_ENABLE = ("auto", True, False)


def _columns() -> list[Any]:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class SpeedColumn(ProgressColumn):
        """Iterations per second over the last 30 seconds."""

        def render(self, task: Any) -> Any:
            speed = task.speed
            return Text(
                "? it/s" if speed is None else f"{speed:.1f} it/s", style="progress.data.speed"
            )

    return [
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        SpeedColumn(),
        TimeElapsedColumn(),
        TextColumn("•"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[extra]}"),
    ]


@HOOKS.register_module()
class ProgressBarHook(Hook):
    """Show progress bars on a terminal.

    :param enable: ``'auto'`` (on when stdout is a terminal, on rank 0), ``True`` (always
        on rank 0) or ``False``.
    :param refresh_interval: seconds between redraws.
    :param loss_key: the training scalar shown next to the bar (``train/<loss_key>``,
        smoothed like the log line); ``None`` shows none.
    :param console: a ``rich.console.Console`` to draw on (default: stdout).
    """

    priority = "VERY_LOW"  # after the logger hook, so the loss it read is free to show

    def __init__(
        self,
        enable: bool | str = "auto",
        refresh_interval: float = 0.2,
        loss_key: str | None = "loss",
        console: Any = None,
    ) -> None:
        if enable not in _ENABLE or (isinstance(enable, int) and not isinstance(enable, bool)):
            raise ConfigError(
                f"ProgressBarHook enable must be auto, true or false, got {enable!r}",
                where=f"{_WHERE}.enable",
            )
        if (
            isinstance(refresh_interval, bool)
            or not isinstance(refresh_interval, (int, float))
            or not math.isfinite(refresh_interval)
            or refresh_interval < 0
        ):
            raise ConfigError(
                f"ProgressBarHook refresh_interval must be a number of seconds >= 0, got {refresh_interval!r}",
                where=f"{_WHERE}.refresh_interval",
            )
        self.enable = enable
        self.refresh_interval = float(refresh_interval)
        self.loss_key = loss_key
        self._console = console
        self._active = False
        self._progress: Any = None
        self._owner: str | None = None  # the stage that started the bars stops them
        self._tasks: dict[str, Any] = {}
        self._done: dict[str, int] = {}
        self._next_draw = 0.0
        self._extra = ""

    # ------------------------------------------------------------------ switching on
    def _should_show(self, runner: Any) -> bool:
        if self.enable is False or getattr(runner, "rank", 0) != 0:
            return False
        if self.enable is True:
            return True
        console = self._console
        if console is not None:
            return bool(console.is_terminal) and not console.is_dumb_terminal
        stdout = sys.stdout
        return bool(getattr(stdout, "isatty", lambda: False)())

    def before_run(self, runner: Any) -> None:
        """Decide whether bars are shown in this run."""
        self._active = self._should_show(runner)

    def _start(self, stage: str) -> None:
        if self._progress is not None:
            return
        from rich.console import Console
        from rich.progress import Progress

        console = self._console if self._console is not None else Console()
        self._progress = Progress(*_columns(), console=console, auto_refresh=False)
        self._progress.start()
        self._owner = stage
        self._next_draw = 0.0

    def _stop(self, stage: str | None = None) -> None:
        if self._progress is None or (stage is not None and stage != self._owner):
            return
        progress, self._progress = self._progress, None
        self._tasks.clear()
        self._done.clear()
        self._owner = None
        progress.refresh()
        progress.stop()

    # ------------------------------------------------------------------ drawing
    def _add_task(self, mode: str, description: str, total: int | None, done: int = 0) -> None:
        if mode in self._tasks:
            self._progress.remove_task(self._tasks.pop(mode))
        self._tasks[mode] = self._progress.add_task(
            description, total=total, completed=done, extra=self._extra_for(mode)
        )
        self._done[mode] = done
        self._progress.refresh()

    def _extra_for(self, mode: str) -> str:
        return self._extra if mode == "train" else ""

    def _draw(self, mode: str, force: bool = False) -> None:
        """Push the counter of ``mode`` to its bar and redraw (at most every refresh_interval)."""
        now = perf_counter()
        if not force and now < self._next_draw:
            return
        self._next_draw = now + self.refresh_interval
        task = self._tasks.get(mode)
        if task is not None:
            self._progress.update(task, completed=self._done[mode], extra=self._extra_for(mode))
        self._progress.refresh()

    def _read_loss(self, runner: Any) -> None:
        """Take the smoothed loss when reading it converts nothing (after a log interval)."""
        if self.loss_key is None:
            return
        buffer = runner.message_hub.log_scalars.get(f"train/{self.loss_key}")
        if buffer is None or not buffer.ready:
            return
        window = getattr(runner.log_processor, "window_size", 10)
        self._extra = f"{self.loss_key}: {buffer.mean(window):.4f}"

    # ------------------------------------------------------------------ training
    def before_train(self, runner: Any) -> None:
        """Show the training bar (a resumed run starts where it stopped)."""
        if not self._active:
            return
        self._start("train")
        self._add_task(
            "train", self._train_description(runner), runner.max_iters or None, runner.iter
        )

    def _train_description(self, runner: Any) -> str:
        if getattr(runner.log_processor, "by_epoch", True) and runner.max_epochs:
            return f"train epoch {runner.epoch + 1}/{runner.max_epochs}"
        return "train"

    def before_train_epoch(self, runner: Any) -> None:
        """Name the epoch in progress."""
        task = self._tasks.get("train")
        if task is not None:
            self._progress.update(task, description=self._train_description(runner))

    def after_train_iter(
        self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None
    ) -> None:
        """Count the iteration; redraw when due."""
        if "train" not in self._done:
            return
        self._done["train"] += 1
        self._read_loss(runner)
        self._draw("train")

    def after_train_epoch(self, runner: Any) -> None:
        """Show the finished epoch."""
        if "train" in self._done:
            self._draw("train", force=True)

    def after_train(self, runner: Any) -> None:
        """Leave the final state on screen and stop drawing."""
        if "train" in self._done:
            self._draw("train", force=True)
        self._stop("train")

    # ------------------------------------------------------------------ val and test
    def before_val_epoch(self, runner: Any) -> None:
        """Show a validation bar."""
        self._before_eval(runner, "val")

    def before_test_epoch(self, runner: Any) -> None:
        """Show a test bar."""
        self._before_eval(runner, "test")

    def _before_eval(self, runner: Any, mode: str) -> None:
        if not self._active:
            return
        self._start(mode)
        epoch = getattr(runner, "epoch", 0) if mode == "val" and self._owner == "train" else 0
        self._add_task(mode, f"{mode} epoch {epoch}" if epoch else mode, loader_len(runner, mode))

    def after_val_iter(
        self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None
    ) -> None:
        """Count the validation batch; redraw when due."""
        if "val" in self._done:
            self._done["val"] += 1
            self._draw("val")

    def after_test_iter(
        self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None
    ) -> None:
        """Count the test batch; redraw when due."""
        if "test" in self._done:
            self._done["test"] += 1
            self._draw("test")

    def after_val_epoch(self, runner: Any, metrics: Any = None) -> None:
        """Remove the validation bar inside training (the log line has the results)."""
        self._after_eval(runner, "val")

    def after_test_epoch(self, runner: Any, metrics: Any = None) -> None:
        """Finish the test bar."""
        self._after_eval(runner, "test")

    def _after_eval(self, runner: Any, mode: str) -> None:
        if mode not in self._done:
            return
        self._draw(mode, force=True)
        if self._owner != mode:  # inside training: the training bar stays
            self._progress.remove_task(self._tasks.pop(mode))
            del self._done[mode]
            self._progress.refresh()
        else:
            self._stop(mode)

    def after_run(self, runner: Any) -> None:
        """Stop drawing (also when the run ends with an error)."""
        self._stop()
