"""CheckpointHook: periodic, last and best checkpoints, the ``last_checkpoint`` pointer,
and pruning of old checkpoints.

Files: ``<out_dir>/epoch_{n}.pth`` (or ``iter_{n}.pth``, or ``filename_tmpl``), best
checkpoints ``<out_dir>/best_{metric}_{epoch|iter}_{n}.pth`` (``/`` in the metric name
becomes ``_``), and ``<out_dir>/last_checkpoint`` holding the absolute path of the latest
periodic checkpoint. The runner writes checkpoint files atomically; the pointer is rewritten
atomically after each periodic save.

Best checkpoints keep optimizer and scheduler state (``save_optimizer`` and
``save_param_scheduler`` apply to them too), so a run can resume from them. ``max_keep_ckpts``
prunes periodic checkpoints only, and never a file that is a current best or that
``last_checkpoint`` points to. The hook's state (best scores and files, the periodic files
it still tracks) is stored in the message hub (``best_score``/``best_ckpt`` or
``best_score_<key>``/``best_ckpt_<key>`` with several keys, and ``keep_ckpt_ids``) and in
each checkpoint's ``meta['checkpoint_hook']``, so a resumed run carries on with it.

Stop checkpoints: when training stops on a signal the runner asks this hook
(:meth:`CheckpointHook.save_checkpoint_now`) for a resumable checkpoint of the current state;
it is ``filename_tmpl`` of the iteration for an iteration-based hook (pruned like the
periodic ones) and ``iter_{n}.pth`` otherwise (removed by the next periodic save when
``max_keep_ckpts`` is set). Either way ``last_checkpoint`` points to it.

Asynchronous saving (``async_save=True``): the state is staged as CPU copies and written by a
background thread, one checkpoint at a time; ``last_checkpoint`` (and
``best_checkpoints.json``) are updated only once the file is complete, and the time training
stalled for each save is logged and kept in the message hub as ``checkpoint_stall_time``.
Pending writes are waited for after training and before a stop checkpoint.

A periodic checkpoint is written before that epoch's validation, so its copy of the best
scores can be one validation old. ``<out_dir>/best_checkpoints.json`` (rewritten atomically
with each new best) records the best files actually on disk; a resumed run adopts it, so a
best checkpoint written after the resumed one is neither forgotten nor outranked by a worse
score.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

from torchkiln.errors import ConfigError, did_you_mean
from torchkiln.hooks._rules import (
    DEFAULT_GREATER_KEYS,
    DEFAULT_LESS_KEYS,
    check_rule,
    improves,
    infer_rule,
    normalise_keys,
)
from torchkiln.hooks.hook import Hook
from torchkiln.registry import HOOKS

__all__ = ["CheckpointHook"]

LAST_CHECKPOINT = "last_checkpoint"
BEST_STATE_FILE = "best_checkpoints.json"
STOP_CKPT_KEY = "stop_checkpoint"
META_KEY = "checkpoint_hook"
_WHERE = "default_hooks.checkpoint"


def _is_main(runner: Any) -> bool:
    return getattr(runner, "rank", 0) == 0


def _real(path: str) -> str:
    return os.path.realpath(path)


def _to_float(value: Any) -> float:
    item = getattr(value, "item", None)
    return float(item() if callable(item) else value)


def _atomic_write_text(path: str, text: str) -> None:
    from torchkiln.runner.checkpoint_io import atomic_write_text

    atomic_write_text(path, text)


@HOOKS.register_module()
class CheckpointHook(Hook):
    """Save checkpoints periodically, at the end, and whenever a metric reaches its best.

    :param interval: save every ``interval`` epochs (``by_epoch``) or iterations; ``-1``:
        never periodically.
    :param by_epoch: count ``interval`` and ``save_begin`` in epochs (else iterations).
    :param save_optimizer: keep the optimizer state in the checkpoints (needed to resume).
    :param save_param_scheduler: keep the schedulers' state in the checkpoints.
    :param out_dir: root folder; checkpoints go to ``out_dir/<last folder of work_dir>``.
        Default: ``runner.work_dir``.
    :param max_keep_ckpts: keep at most this many periodic checkpoints (``-1``: all). Best
        checkpoints and the one ``last_checkpoint`` points to are never deleted.
    :param save_last: also save after the last epoch/iteration, whatever the interval.
    :param save_best: a metric key, a list of keys, or ``'auto'`` (the first metric).
    :param rule: ``'greater'`` or ``'less'`` (or one per key); inferred from the key name
        when omitted.
    :param greater_keys: name parts meaning larger is better (replaces the defaults).
    :param less_keys: name parts meaning smaller is better (replaces the defaults).
    :param filename_tmpl: periodic file name with one ``{}`` for the epoch/iteration;
        default ``epoch_{}.pth`` or ``iter_{}.pth``.
    :param save_begin: no periodic checkpoint before this epoch/iteration.
    :param published_keys: after training, also write a copy of the best (else the last)
        checkpoint with only these keys, named ``<name>-<sha256[:8]>.pth``.
    :param file_client_args: accepted for MMEngine configs; only local files are supported.
    :param backend_args: accepted for MMEngine configs; only local files are supported.
    :param async_save: write checkpoints in a background thread (state staged on the CPU
        first); training stalls only for the staging.
    """

    priority = "VERY_LOW"

    def __init__(
        self,
        interval: int = -1,
        by_epoch: bool = True,
        save_optimizer: bool = True,
        save_param_scheduler: bool = True,
        out_dir: str | os.PathLike[str] | None = None,
        max_keep_ckpts: int = -1,
        save_last: bool = True,
        save_best: str | Sequence[str] | None = None,
        rule: str | Sequence[str] | None = None,
        greater_keys: str | Sequence[str] | None = None,
        less_keys: str | Sequence[str] | None = None,
        filename_tmpl: str | None = None,
        save_begin: int = 0,
        published_keys: str | Sequence[str] | None = None,
        file_client_args: Mapping[str, Any] | None = None,
        backend_args: Mapping[str, Any] | None = None,
        async_save: bool = False,
    ) -> None:
        for name, value in (("interval", interval), ("max_keep_ckpts", max_keep_ckpts), ("save_begin", save_begin)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"CheckpointHook {name} must be an int, got {value!r}", where=f"{_WHERE}.{name}")
        if save_begin < 0:
            raise ConfigError(f"CheckpointHook save_begin must be >= 0, got {save_begin}", where=f"{_WHERE}.save_begin")
        if file_client_args or backend_args:
            raise ConfigError(
                "CheckpointHook writes to the local file system only",
                where=f"{_WHERE}.backend_args",
                hint="remove file_client_args/backend_args and mount remote storage as a folder if needed",
            )
        self.interval = interval
        self.by_epoch = bool(by_epoch)
        self.save_optimizer = save_optimizer
        self.save_param_scheduler = save_param_scheduler
        self._out_dir_arg = None if out_dir is None else os.fspath(out_dir)
        self.out_dir: str | None = self._out_dir_arg
        self.max_keep_ckpts = max_keep_ckpts
        self.save_last = save_last
        self.save_begin = save_begin
        if not isinstance(async_save, bool):
            raise ConfigError(f"CheckpointHook async_save must be true or false, got {async_save!r}", where=f"{_WHERE}.async_save")
        self.async_save = async_save

        if filename_tmpl is None:
            filename_tmpl = "epoch_{}.pth" if self.by_epoch else "iter_{}.pth"
        try:
            distinct = filename_tmpl.format(1) != filename_tmpl.format(2)
        except (IndexError, KeyError, ValueError):
            distinct = False
        if not distinct:
            raise ConfigError(
                f"filename_tmpl must contain one '{{}}' for the epoch or iteration, got {filename_tmpl!r}",
                where=f"{_WHERE}.filename_tmpl",
                hint="e.g. filename_tmpl: 'epoch_{}.pth'",
            )
        self.filename_tmpl = filename_tmpl

        self.greater_keys = normalise_keys(greater_keys, DEFAULT_GREATER_KEYS, f"{_WHERE}.greater_keys")
        self.less_keys = normalise_keys(less_keys, DEFAULT_LESS_KEYS, f"{_WHERE}.less_keys")
        self.key_indicators = self._parse_save_best(save_best)
        self.rules = self._parse_rules(rule)

        if isinstance(published_keys, str):
            published_keys = [published_keys]
        if published_keys is not None and (
            not isinstance(published_keys, Sequence) or not all(isinstance(k, str) for k in published_keys)
        ):
            raise ConfigError(
                f"published_keys must be a list of checkpoint keys, got {published_keys!r}",
                where=f"{_WHERE}.published_keys",
                hint="e.g. published_keys: [meta, state_dict]",
            )
        self.published_keys = None if published_keys is None else list(published_keys)

        # State, aligned with key_indicators.
        self.best_score: list[float | None] = [None] * len(self.key_indicators)
        self.best_ckpt: list[str | None] = [None] * len(self.key_indicators)
        self.keep_ckpt_ids: list[int] = []
        self.last_ckpt: str | None = None
        self._out_dir: str | None = None
        self._training = False
        self._continuing = False  # state restored from an earlier part of this run

    # ------------------------------------------------------------------ config parsing
    @staticmethod
    def _parse_save_best(save_best: Any) -> list[str]:
        if save_best is None:
            return []
        keys = [save_best] if isinstance(save_best, str) else save_best
        if not isinstance(keys, Sequence) or not keys or not all(isinstance(k, str) and k for k in keys):
            raise ConfigError(
                f"save_best must be a metric key, a list of keys or 'auto', got {save_best!r}",
                where=f"{_WHERE}.save_best",
            )
        keys = list(keys)
        if "auto" in keys and len(keys) > 1:
            raise ConfigError("save_best: 'auto' cannot be combined with other keys", where=f"{_WHERE}.save_best")
        if len(set(keys)) != len(keys):
            raise ConfigError(f"save_best lists a key twice: {keys}", where=f"{_WHERE}.save_best")
        return keys

    def _parse_rules(self, rule: Any) -> list[str | None]:
        n = len(self.key_indicators)
        if rule is None or isinstance(rule, str):
            rules = [rule] * n
        elif isinstance(rule, Sequence) and len(rule) == n:
            rules = list(rule)
        else:
            raise ConfigError(
                f"rule must be one rule or one per save_best key ({n}), got {rule!r}", where=f"{_WHERE}.rule"
            )
        out: list[str | None] = []
        for key, item in zip(self.key_indicators, rules):
            item = check_rule(item, f"{_WHERE}.rule")
            if item is None and key != "auto":
                item = infer_rule(key, self.greater_keys, self.less_keys, where=f"{_WHERE}.save_best")
            out.append(item)
        return out

    # ------------------------------------------------------------------ paths
    def resolve_out_dir(self, runner: Any) -> str:
        """The absolute folder checkpoints go to (also kept as ``self.out_dir``)."""
        if self._out_dir is None:
            work_dir = os.path.abspath(os.fspath(runner.work_dir))
            if self._out_dir_arg is None:
                self._out_dir = work_dir
            else:
                base = os.path.basename(work_dir.rstrip(os.sep))
                self._out_dir = os.path.join(os.path.abspath(self._out_dir_arg), base)
            self.out_dir = self._out_dir
        return self._out_dir

    def _protected(self, runner: Any) -> set[str]:
        """Files never to delete: current best checkpoints and the pointer's target."""
        paths = {_real(p) for p in self.best_ckpt if p}
        pointer = os.path.join(self.resolve_out_dir(runner), LAST_CHECKPOINT)
        try:
            with open(pointer, encoding="utf-8") as fh:
                target = fh.read().strip()
        except OSError:
            target = ""
        if target:
            if not os.path.isabs(target):
                target = os.path.join(self.resolve_out_dir(runner), target)
            paths.add(_real(target))
        if self.last_ckpt:
            paths.add(_real(self.last_ckpt))
        return paths

    # ------------------------------------------------------------------ state
    def _hub_keys(self, index: int) -> tuple[str, str]:
        if len(self.key_indicators) == 1:
            return "best_score", "best_ckpt"
        key = self.key_indicators[index]
        return f"best_score_{key}", f"best_ckpt_{key}"

    def _publish_state(self, runner: Any) -> None:
        hub = runner.message_hub
        hub.update_info("keep_ckpt_ids", list(self.keep_ckpt_ids))
        for i in range(len(self.key_indicators)):
            if self.best_score[i] is not None:
                score_key, ckpt_key = self._hub_keys(i)
                hub.update_info(score_key, self.best_score[i])
                hub.update_info(ckpt_key, self.best_ckpt[i])

    def _state(self, runner: Any) -> dict[str, Any]:
        return {
            "out_dir": self.resolve_out_dir(runner),
            "keys": list(self.key_indicators),
            "rules": list(self.rules),
            "best_score": list(self.best_score),
            "best_ckpt": list(self.best_ckpt),
            "keep_ckpt_ids": list(self.keep_ckpt_ids),
        }

    def _load_state(self, state: Mapping[str, Any]) -> None:
        keys = list(state.get("keys") or [])
        rules = list(state.get("rules") or [None] * len(keys))
        if self.key_indicators == ["auto"] and len(keys) == 1 and keys[0] != "auto":
            self.key_indicators = [keys[0]]
            self.rules = [rules[0] or infer_rule(keys[0], self.greater_keys, self.less_keys)]
        scores = list(state.get("best_score") or [])
        ckpts = list(state.get("best_ckpt") or [])
        for i, key in enumerate(self.key_indicators):
            if key in keys:
                j = keys.index(key)
                if j < len(scores) and scores[j] is not None:
                    self.best_score[i] = float(scores[j])
                    self.best_ckpt[i] = ckpts[j] if j < len(ckpts) else None
        self.keep_ckpt_ids = [int(x) for x in state.get("keep_ckpt_ids") or []]
        self._continuing = True

    def _best_records(self) -> dict[str, Any]:
        return {
            key: {"score": self.best_score[i], "path": self.best_ckpt[i], "rule": self.rules[i]}
            for i, key in enumerate(self.key_indicators)
            if self.best_score[i] is not None
        }

    def _write_best_file(self, runner: Any, records: dict[str, Any] | None = None) -> None:
        records = self._best_records() if records is None else records
        path = os.path.join(self.resolve_out_dir(runner), BEST_STATE_FILE)
        _atomic_write_text(path, json.dumps(records, indent=2, sort_keys=True) + "\n")

    def _after_best_written(self, runner: Any, records: dict[str, Any], previous: str | None) -> Any:
        """What follows a best checkpoint once its file is complete (rank 0)."""

        def done(path: str) -> None:
            self._write_best_file(runner, records)
            if previous and _real(previous) != _real(path):
                self._remove_previous_best(runner, previous)

        return done

    def _adopt_best_file(self, out_dir: str) -> None:
        """Take the best files recorded on disk when they are better than the restored state."""
        try:
            with open(os.path.join(out_dir, BEST_STATE_FILE), encoding="utf-8") as fh:
                records = json.load(fh)
        except (OSError, ValueError):
            return
        if not isinstance(records, dict):
            return
        if self.key_indicators == ["auto"] and len(records) == 1:
            key, record = next(iter(records.items()))
            self.key_indicators = [key]
            self.rules = [record.get("rule") or infer_rule(key, self.greater_keys, self.less_keys)]
        for i, key in enumerate(self.key_indicators):
            record = records.get(key)
            if not isinstance(record, dict) or record.get("score") is None:
                continue
            path = record.get("path")
            if not path or not os.path.isfile(path):
                continue
            score = float(record["score"])
            rule = self.rules[i]
            if self.best_score[i] is None or (rule is not None and improves(score, self.best_score[i], rule)):
                self.best_score[i] = score
                self.best_ckpt[i] = path

    # ------------------------------------------------------------------ hooks
    def before_train(self, runner: Any) -> None:
        """Resolve the output folder and pick up state restored into the message hub."""
        self._training = True
        out_dir = self.resolve_out_dir(runner)
        hub = runner.message_hub
        ids = hub.get_info("keep_ckpt_ids")
        if ids is not None:
            self._continuing = True
            if not self.keep_ckpt_ids:
                self.keep_ckpt_ids = [int(x) for x in ids]
        for i in range(len(self.key_indicators)):
            score_key, ckpt_key = self._hub_keys(i)
            score = hub.get_info(score_key)
            if score is not None and self.best_score[i] is None:
                self._continuing = True
                self.best_score[i] = float(score)
                self.best_ckpt[i] = hub.get_info(ckpt_key)
        if self._continuing and self.key_indicators:
            self._adopt_best_file(out_dir)
            self._publish_state(runner)
        if _is_main(runner):
            from torchkiln.runner.checkpoint_io import remove_stale_temp_files

            removed = remove_stale_temp_files(out_dir)
            if removed:
                runner.logger.info(f"removed {len(removed)} unfinished temporary file(s) of an interrupted save from {out_dir}")
        runner.logger.info(f"Checkpoints will be saved to {out_dir}")

    def after_train(self, runner: Any) -> None:
        """Wait for background writes; write the published copy if asked for."""
        self._training = False
        self._wait(runner)
        if self.published_keys is not None and _is_main(runner):
            self._publish(runner)

    def after_run(self, runner: Any) -> None:
        """Wait for a checkpoint still being written in the background."""
        self._wait(runner)

    @staticmethod
    def _wait(runner: Any) -> None:
        wait = getattr(runner, "wait_for_checkpoints", None)
        if callable(wait):
            wait()

    def after_train_epoch(self, runner: Any) -> None:
        """Save every ``interval`` epochs from ``save_begin`` on, and after the last epoch."""
        if not self.by_epoch:
            return
        if self.every_n_epochs(runner, self.interval, self.save_begin) or (
            self.save_last and self.is_last_train_epoch(runner)
        ):
            self._save_periodic(runner, runner.epoch + 1)

    def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        """Save every ``interval`` iterations from ``save_begin`` on, and after the last one."""
        if self.by_epoch:
            return
        if self.every_n_train_iters(runner, self.interval, self.save_begin) or (
            self.save_last and self.is_last_train_iter(runner)
        ):
            self._save_periodic(runner, runner.iter + 1)

    def after_val_epoch(self, runner: Any, metrics: Mapping[str, Any] | None = None) -> None:
        """Save a best checkpoint for each ``save_best`` key whose score improved."""
        if not self.key_indicators or not self._training:
            return
        if not metrics:
            runner.logger.warning("save_best is set but validation returned no metrics; no best checkpoint saved")
            return
        self._save_best(runner, metrics)

    def before_save_checkpoint(self, runner: Any, checkpoint: dict[str, Any]) -> None:
        """Store the hook's state in ``checkpoint['meta']['checkpoint_hook']``."""
        meta = checkpoint.setdefault("meta", {})
        meta[META_KEY] = self._state(runner)

    def after_load_checkpoint(self, runner: Any, checkpoint: Mapping[str, Any]) -> None:
        """Restore the hook's state from a checkpoint of this same run (same output folder).

        A checkpoint from another folder (``load_from`` of another run's weights) leaves
        the state alone, so this run never prunes or replaces another run's files.
        """
        meta = checkpoint.get("meta") or {}
        state = meta.get(META_KEY) if isinstance(meta, Mapping) else None
        if not state or state.get("out_dir") != self.resolve_out_dir(runner):
            return
        self._load_state(state)

    # ------------------------------------------------------------------ saving
    def _save(self, runner: Any, out_dir: str, filename: str, on_written: Any, **kwargs: Any) -> None:
        """``runner.save_checkpoint``; ``on_written(path)`` runs once the file is complete (rank 0)."""
        if self.async_save:
            runner.save_checkpoint(out_dir, filename, async_save=True, on_written=on_written, **kwargs)
            return
        path = runner.save_checkpoint(out_dir, filename, **kwargs)
        if _is_main(runner):
            on_written(path)

    def _point_to(self, out_dir: str) -> Any:
        pointer = os.path.join(out_dir, LAST_CHECKPOINT)
        return lambda path: _atomic_write_text(pointer, path)

    def _save_periodic(self, runner: Any, step: int) -> None:
        out_dir = self.resolve_out_dir(runner)
        filename = self.filename_tmpl.format(step)
        if step in self.keep_ckpt_ids:
            self.keep_ckpt_ids.remove(step)
        self.keep_ckpt_ids.append(step)
        self._publish_state(runner)
        self._save(
            runner,
            out_dir,
            filename,
            self._point_to(out_dir),
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=None,
            by_epoch=self.by_epoch,
        )
        self.last_ckpt = os.path.join(out_dir, filename)
        self._prune(runner)
        self._drop_stop_checkpoint(runner)

    def save_checkpoint_now(self, runner: Any) -> str:
        """Save a resumable checkpoint of the current state and point ``last_checkpoint`` to it.

        The runner calls this when training stops on a signal; the file is complete when it
        returns. Optimizer and scheduler states are always included.
        """
        self._wait(runner)
        out_dir = self.resolve_out_dir(runner)
        step = runner.iter
        previous_stop = None
        if self.by_epoch:
            filename = f"iter_{step}.pth"
            previous_stop = runner.message_hub.get_info(STOP_CKPT_KEY)
            runner.message_hub.update_info(STOP_CKPT_KEY, os.path.join(out_dir, filename))
        else:
            filename = self.filename_tmpl.format(step)
            if step in self.keep_ckpt_ids:
                self.keep_ckpt_ids.remove(step)
            self.keep_ckpt_ids.append(step)
        self._publish_state(runner)
        path = runner.save_checkpoint(out_dir, filename, save_optimizer=True, save_param_scheduler=True, by_epoch=False)
        if _is_main(runner):
            _atomic_write_text(os.path.join(out_dir, LAST_CHECKPOINT), path)
        self.last_ckpt = path
        if not self.by_epoch:
            self._prune(runner)
        elif previous_stop and _real(previous_stop) != _real(path):
            self._remove_stop_checkpoint(runner, previous_stop)
        return path

    def _drop_stop_checkpoint(self, runner: Any) -> None:
        """Remove a stop checkpoint of an earlier part of this run once a newer periodic one exists."""
        hub = runner.message_hub
        path = hub.get_info(STOP_CKPT_KEY)
        if not path or self.max_keep_ckpts <= 0:
            return
        hub.update_info(STOP_CKPT_KEY, None)
        self._remove_stop_checkpoint(runner, path)

    def _remove_stop_checkpoint(self, runner: Any, path: str) -> None:
        """Delete an older stop checkpoint (with ``max_keep_ckpts``), never a protected file."""
        if self.max_keep_ckpts <= 0 or not _is_main(runner):
            return
        if os.path.dirname(_real(path)) != _real(self.resolve_out_dir(runner)):
            return
        if _real(path) not in self._protected(runner) and os.path.isfile(path):
            os.remove(path)

    def _prune(self, runner: Any) -> None:
        if self.max_keep_ckpts <= 0:
            return
        excess = len(self.keep_ckpt_ids) - self.max_keep_ckpts
        if excess <= 0:
            return
        out_dir = self.resolve_out_dir(runner)
        protected = self._protected(runner)
        kept: list[int] = []
        for step in self.keep_ckpt_ids:
            path = os.path.join(out_dir, self.filename_tmpl.format(step))
            if excess > 0 and _real(path) not in protected:
                excess -= 1
                if _is_main(runner) and os.path.isfile(path):
                    os.remove(path)
            else:
                kept.append(step)
        self.keep_ckpt_ids = kept
        runner.message_hub.update_info("keep_ckpt_ids", list(kept))

    def _resolve_auto(self, metrics: Mapping[str, Any]) -> None:
        key = next(iter(metrics))
        self.key_indicators = [key]
        if self.rules[0] is None:
            self.rules = [infer_rule(key, self.greater_keys, self.less_keys, where=f"{_WHERE}.save_best")]

    def _save_best(self, runner: Any, metrics: Mapping[str, Any]) -> None:
        if self.key_indicators == ["auto"]:
            self._resolve_auto(metrics)
        out_dir = self.resolve_out_dir(runner)
        unit, count = ("epoch", runner.epoch) if self.by_epoch else ("iter", runner.iter)
        for i, key in enumerate(self.key_indicators):
            if key not in metrics:
                hint = did_you_mean(key, list(metrics)) or f"available metrics: {', '.join(map(str, metrics))}"
                raise ConfigError(
                    f"save_best key {key!r} is not among the validation metrics", where=f"{_WHERE}.save_best", hint=hint
                )
            score = _to_float(metrics[key])
            rule = self.rules[i]
            assert rule is not None
            if not math.isfinite(score) or not improves(score, self.best_score[i], rule):
                continue
            previous = self.best_ckpt[i]
            filename = f"best_{key.replace('/', '_')}_{unit}_{count}.pth"
            path = os.path.join(out_dir, filename)
            self.best_score[i] = score
            self.best_ckpt[i] = path
            self._publish_state(runner)
            # The loops know where training stands (validation runs after the counters
            # moved on); this validation has produced its metrics, so a run resumed from a
            # best checkpoint does not repeat it.
            records = self._best_records()
            self._save(
                runner,
                out_dir,
                filename,
                self._after_best_written(runner, records, previous),
                save_optimizer=self.save_optimizer,
                save_param_scheduler=self.save_param_scheduler,
                meta={"val_pending": False},
                by_epoch=False,
            )
            runner.logger.info(f"The best checkpoint with {score:.4f} {key} at {count} {unit} is saved to {filename}.")

    def _remove_previous_best(self, runner: Any, previous: str) -> None:
        # Only files in this run's folder, and never one still referenced.
        if os.path.dirname(_real(previous)) != _real(self.resolve_out_dir(runner)):
            return
        if _real(previous) in self._protected(runner):
            return
        if os.path.isfile(previous):
            os.remove(previous)

    def _publish(self, runner: Any) -> None:
        import torch

        from torchkiln.runner.checkpoint_io import atomic_write_bytes, load_checkpoint_file

        source = next((p for p in self.best_ckpt if p), None) or self.last_ckpt
        if not source or not os.path.isfile(source):
            runner.logger.warning("published_keys is set but no checkpoint was saved; nothing published")
            return
        checkpoint = load_checkpoint_file(source, map_location="cpu")
        missing = [k for k in self.published_keys or [] if k not in checkpoint]
        if missing:
            runner.logger.warning(f"published_keys {missing} are not in {os.path.basename(source)}; published without them")
        final = {k: checkpoint[k] for k in self.published_keys or [] if k in checkpoint}
        buffer = io.BytesIO()
        torch.save(final, buffer)
        data = buffer.getvalue()
        digest = hashlib.sha256(data).hexdigest()[:8]
        stem = os.path.splitext(source)[0]
        target = f"{stem}-{digest}.pth"
        atomic_write_bytes(target, data)
        runner.logger.info(f"Published checkpoint with keys {list(final)} to {target}")
