"""LoggerHook: log lines at intervals and scalar records as JSON lines.

Every ``interval`` training iterations the log processor formats the smoothed values
(reading device values only then), the line goes to ``runner.logger``, the values are
appended as one JSON object per line to ``<log_dir>/scalars.jsonl`` and handed to
``runner.visualizer.add_scalars``::

    {"step": 50, "epoch": 1, "mode": "train", "lr": 0.1, "loss": 0.43, ...}

``step`` counts finished training iterations. Validation and test lines are logged every
``interval`` batches; their epoch results are logged and appended to ``scalars.jsonl``
(``mode`` ``val``/``test``) and the latest of each is kept in ``<log_dir>/metrics.json``.
The visualizer gets training values under their own names (``loss``, ``lr``) and
evaluation values under their mode (``val/accuracy/top1``, ``val/loss``, ``val/time``), so
a validation loss never lands on the training loss curve.

Only rank 0 writes files. ``scalars.jsonl`` is written by a background thread
(:class:`~torchkiln.logging.sinks.JsonlWriter`): records reach the file within a second,
at the end of every epoch, on ``torchkiln.logging.flush_all()`` and when the run ends. The
hook also gives ``log.jsonl`` its run context (``epoch``, ``iter``, ``mode``), read only
when a record is written. Between log intervals the hook costs two integer tests.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from typing import Any

from torchkiln.errors import ConfigError, ConfigTypeError, ConfigValueError
from torchkiln.hooks._backend_args import check_local_backend
from torchkiln.hooks._phase_length import loader_len
from torchkiln.hooks.hook import Hook
from torchkiln.logging.scalars import is_scalar
from torchkiln.logging.sinks import JsonlWriter, to_jsonable
from torchkiln.registry import HOOKS

__all__ = ["LoggerHook"]

SCALARS_FILE = "scalars.jsonl"
METRICS_FILE = "metrics.json"
_WHERE = "default_hooks.logger"


def _run_context(runner: Any) -> dict[str, Any]:
    """``epoch``, ``iter`` and ``mode`` for a log record, read when the record is written.

    In training, ``epoch`` and ``iter`` are the 1-based numbers of the epoch and iteration
    in progress (the ``step`` of ``scalars.jsonl``); in validation and test, the epochs and
    iterations finished so far (the ``epoch`` and ``step`` of their records).
    """
    mode = runner.message_hub.get_info("loop_stage")
    train = mode == "train"
    return {
        "epoch": runner.epoch + 1 if train else runner.epoch,
        "iter": runner.iter + 1 if train else runner.iter,
        "mode": mode,
    }


def _main_process(runner: Any) -> bool:
    """Whether this process writes the test results: ``runner.rank`` 0, or the process's own
    rank when the runner does not give one as an int (a stand-in runner)."""
    rank = getattr(runner, "rank", 0)
    if not isinstance(rank, int):
        from torchkiln.dist import get_rank

        rank = get_rank()
    return rank == 0


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigTypeError(
            f"LoggerHook {name} must be an int, got {value!r}", where=f"{_WHERE}.{name}"
        )
    if value < minimum:
        raise ConfigValueError(
            f"LoggerHook {name} must be >= {minimum}, got {value}", where=f"{_WHERE}.{name}"
        )


@HOOKS.register_module()
class LoggerHook(Hook):
    """Write log lines and scalar records at intervals.

    :param interval: log every this many iterations (training, validation and test).
    :param ignore_last: do not log the last iterations of an epoch that do not fill an
        interval (they are logged when the epoch is no longer than the interval).
    :param interval_exp_name: log the experiment name every this many iterations (``0``: never).
    :param out_dir: after the run, copy this run's log files (those ending in
        ``out_suffix``, subfolders such as ``vis_data`` included) to
        ``out_dir/<last folder of work_dir>/<timestamp>``.
    :param out_suffix: file name endings copied to ``out_dir``.
    :param keep_local: keep the local log files after copying them to ``out_dir``.
    :param file_client_args: accepted for MMEngine configs; only local files are supported.
    :param log_metric_by_epoch: the step given to the visualizer for validation metrics is
        the epoch (else the iteration).
    :param backend_args: accepted for MMEngine configs; only local files are supported.
    """

    priority = "BELOW_NORMAL"

    def __init__(
        self,
        interval: int = 10,
        ignore_last: bool = True,
        interval_exp_name: int = 1000,
        out_dir: str | os.PathLike[str] | None = None,
        out_suffix: str | Sequence[str] = (".json", ".jsonl", ".log", ".py", "yaml"),
        keep_local: bool = True,
        file_client_args: Mapping[str, Any] | None = None,
        log_metric_by_epoch: bool = True,
        backend_args: Mapping[str, Any] | None = None,
    ) -> None:
        _check_int("interval", interval, minimum=1)
        if not isinstance(ignore_last, bool):
            raise ConfigTypeError(
                f"LoggerHook ignore_last must be a bool, got {ignore_last!r}",
                where=f"{_WHERE}.ignore_last",
            )
        _check_int("interval_exp_name", interval_exp_name, minimum=0)
        if out_dir is not None and not isinstance(out_dir, (str, os.PathLike)):
            raise ConfigTypeError(
                f"LoggerHook out_dir must be a str, a path or None, got {out_dir!r}",
                where=f"{_WHERE}.out_dir",
            )
        if not (
            isinstance(out_suffix, str)
            or (isinstance(out_suffix, Sequence) and all(isinstance(x, str) for x in out_suffix))
        ):
            raise ConfigTypeError(
                f"LoggerHook out_suffix must be a str or a sequence of str, got {out_suffix!r}",
                where=f"{_WHERE}.out_suffix",
            )
        check_local_backend("LoggerHook", _WHERE, file_client_args, backend_args)
        if isinstance(out_suffix, str):
            out_suffix = (out_suffix,)
        if out_dir is None and not keep_local:
            raise ConfigError(
                "LoggerHook keep_local=False needs an out_dir to copy the logs to",
                where=f"{_WHERE}.keep_local",
            )
        self.interval = interval
        self.ignore_last = ignore_last
        self.interval_exp_name = interval_exp_name
        self.out_dir = None if out_dir is None else os.fspath(out_dir)
        self.out_suffix = tuple(out_suffix)
        self.keep_local = keep_local
        self.log_metric_by_epoch = log_metric_by_epoch
        self._scalars_file: JsonlWriter | None = None
        self._tail: int | None = None  # see before_train_epoch
        self.json_log_path: str | None = None
        self._train_iter = 0  # finished training iterations, see before_train
        self._latest_metrics: dict[str, Any] = {}

    # ------------------------------------------------------------------ run context
    def before_run(self, runner: Any) -> None:
        """Give ``log.jsonl`` records the run's epoch, iteration and mode."""
        from torchkiln.logging.logger import set_run_context_source

        set_run_context_source(lambda: _run_context(runner))
        self.json_log_path = f"{runner.timestamp}.json"

    # ------------------------------------------------------------------ training
    def before_train(self, runner: Any) -> None:
        """Start counting training iterations where the (possibly resumed) run stands."""
        self._train_iter = runner.iter

    def before_train_epoch(self, runner: Any) -> None:
        """Find the epoch's last batch index (logged even off the interval, see ``ignore_last``)."""
        self._tail = self._tail_index(runner)

    def after_train_iter(
        self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None
    ) -> None:
        """Log a line and a scalar record every ``interval`` iterations."""
        self._train_iter += 1  # counted here: reading runner.iter is two property calls
        if self.interval_exp_name > 0 and self._train_iter % self.interval_exp_name == 0:
            runner.logger.info(f"Exp name: {runner.experiment_name}")
        if self._tail is None:  # called outside an epoch's before_train_epoch
            self._tail = self._tail_index(runner)
        if (batch_idx + 1) % self.interval and batch_idx != self._tail:
            return
        tag, line = runner.log_processor.get_log_after_iter(runner, batch_idx, "train")
        runner.logger.info(line)
        step = runner.iter + 1
        self._write_record(runner, {"step": step, "epoch": runner.epoch + 1, "mode": "train"}, tag)
        self._visualize(runner, tag, step)

    def after_train_epoch(self, runner: Any) -> None:
        """Push the epoch's records to disk."""
        self._flush()

    def _tail_index(self, runner: Any) -> int:
        """The last batch index of an epoch when ``ignore_last`` does not hide it, else -1."""
        loader = getattr(runner, "train_dataloader", None)
        if loader is None or isinstance(loader, Mapping):  # not built (a config)
            loader = getattr(getattr(runner, "train_loop", None), "dataloader", None)
        try:
            length = len(loader)  # type: ignore[arg-type]  # TypeError is handled
        except TypeError:
            return -1
        if self.ignore_last and length > self.interval:
            return -1
        return length - 1

    # ------------------------------------------------------------------ val and test
    def after_val_iter(
        self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None
    ) -> None:
        """Log a validation progress line every ``interval`` batches."""
        if self.every_n_inner_iters(batch_idx, self.interval):
            _, line = runner.log_processor.get_log_after_iter(runner, batch_idx, "val")
            runner.logger.info(line)

    def after_test_iter(
        self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None
    ) -> None:
        """Log a test progress line every ``interval`` batches."""
        if self.every_n_inner_iters(batch_idx, self.interval):
            _, line = runner.log_processor.get_log_after_iter(runner, batch_idx, "test")
            runner.logger.info(line)

    def after_val_epoch(self, runner: Any, metrics: Mapping[str, Any] | None = None) -> None:
        """Log the validation results; record them in scalars.jsonl and metrics.json."""
        self._after_eval_epoch(runner, "val", metrics)

    def after_test_epoch(self, runner: Any, metrics: Mapping[str, Any] | None = None) -> None:
        """Log the test results; record them in scalars.jsonl and metrics.json."""
        self._after_eval_epoch(runner, "test", metrics)

    def _after_eval_epoch(self, runner: Any, mode: str, metrics: Mapping[str, Any] | None) -> None:
        tag, line = runner.log_processor.get_log_after_epoch(
            runner, loader_len(runner, mode) or 0, mode, with_non_scalar=mode == "test"
        )
        runner.logger.info(line)
        if mode == "test":
            self._dump_test_results(runner, tag)
            tag = {k: v for k, v in tag.items() if is_scalar(v)}
        head = {"step": runner.iter, "epoch": runner.epoch, "mode": mode}
        scalar_metrics = {k: v for k, v in (metrics or {}).items() if is_scalar(v)}
        self._write_record(runner, head, {**scalar_metrics, **tag})
        self._latest_metrics[mode] = {**head, **to_jsonable(dict(metrics or {}))}
        if getattr(runner, "rank", 0) == 0:
            from torchkiln.runner.checkpoint_io import atomic_write_text

            path = os.path.join(runner.log_dir, METRICS_FILE)
            atomic_write_text(
                path, json.dumps(self._latest_metrics, indent=2, sort_keys=True) + "\n"
            )
        prefix = f"{mode}/"
        vis_tag = {k if k.startswith(prefix) else prefix + k: v for k, v in tag.items()}
        self._visualize(runner, vis_tag, runner.epoch if self.log_metric_by_epoch else runner.iter)
        self._flush()

    def _dump_test_results(self, runner: Any, tag: Mapping[str, Any]) -> None:
        """Write the test results, non-scalar ones included, to ``<log_dir>/<timestamp>.json``."""
        if not _main_process(runner):
            return
        from torchkiln.runner.checkpoint_io import atomic_write_text

        name = self.json_log_path or f"{runner.timestamp}.json"
        atomic_write_text(
            os.path.join(runner.log_dir, name), json.dumps(to_jsonable(dict(tag)), indent=2) + "\n"
        )

    # ------------------------------------------------------------------ output
    def _write_record(self, runner: Any, head: Mapping[str, Any], tag: Mapping[str, Any]) -> None:
        if getattr(runner, "rank", 0) != 0:
            return
        if self._scalars_file is None or self._scalars_file.closed:
            self._scalars_file = JsonlWriter(os.path.join(runner.log_dir, SCALARS_FILE))
        self._scalars_file.write({**head, **dict(tag)})

    def _flush(self) -> None:
        if self._scalars_file is not None and not self._scalars_file.closed:
            self._scalars_file.flush()

    def _visualize(self, runner: Any, tag: Mapping[str, Any], step: int) -> None:
        """Send ``tag`` to the visualizer; its local backend also appends it to
        ``vis_data/<timestamp>.json`` (MMEngine's file)."""
        visualizer = getattr(runner, "visualizer", None)
        add_scalars = getattr(visualizer, "add_scalars", None)
        if callable(add_scalars):
            add_scalars(dict(tag), step=step, file_path=self.json_log_path)

    def after_run(self, runner: Any) -> None:
        """Close the scalars file and the visualizer; copy the logs to ``out_dir`` if set."""
        from torchkiln.logging.logger import set_run_context_source

        set_run_context_source(None)
        if self._scalars_file is not None:
            self._scalars_file.close()
            self._scalars_file = None
        close = getattr(getattr(runner, "visualizer", None), "close", None)
        if callable(close):
            close()
        if self.out_dir is not None and getattr(runner, "rank", 0) == 0:
            self._copy_logs(runner)

    def _copy_logs(self, runner: Any) -> None:
        log_dir = runner.log_dir
        base = os.path.basename(os.path.abspath(runner.work_dir).rstrip(os.sep))
        target = os.path.join(
            os.path.abspath(self.out_dir or ""), base, os.path.basename(log_dir.rstrip(os.sep))
        )
        os.makedirs(target, exist_ok=True)
        from torchkiln.logging.sinks import flush_all

        flush_all()  # log.jsonl is still open
        for folder, _dirs, files in os.walk(log_dir):
            relative = os.path.relpath(folder, log_dir)
            for name in sorted(files):
                if not name.endswith(self.out_suffix):
                    continue
                destination = os.path.normpath(os.path.join(target, relative, name))
                os.makedirs(os.path.dirname(destination), exist_ok=True)
                shutil.copy2(os.path.join(folder, name), destination)
                if not self.keep_local:
                    os.remove(os.path.join(folder, name))
        runner.logger.info(f"logs copied to {target}")
