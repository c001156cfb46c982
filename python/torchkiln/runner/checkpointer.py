"""The Checkpointer: every checkpoint of a run is written, found, kept, pruned and loaded here.

The Runner owns one. It writes checkpoint files atomically (optionally in a background
thread), keeps the ``last_checkpoint`` pointer (it is its only reader and writer), prunes
periodic checkpoints (``max_keep_ckpts``), keeps the best-checkpoint records, saves the
resumable checkpoint when training stops on a signal, and loads weights or resumes.

Hooks hold policy: :class:`~torchkiln.hooks.CheckpointHook` decides *when* to save and
*whether* a score is a new best, configures the Checkpointer (:meth:`Checkpointer.configure`)
and asks it to save. The Checkpointer never calls back into a hook.

Its state is one record (:class:`CheckpointRecord`): the periodic files it keeps, the best
file of each metric, the stop checkpoint of an earlier part of the run. The record travels in
every checkpoint (``meta['checkpointer']``) and comes back on resume; the best records are
also written to ``<out_dir>/best_checkpoints.json`` after each new best, because a periodic
checkpoint is written before its epoch's validation and so holds a record one validation old.

Files in ``out_dir``: periodic checkpoints (names given by the hook), best checkpoints,
stop checkpoints ``iter_{n}.pth`` (or the periodic template of an iteration-based hook),
``last_checkpoint`` (absolute path of the latest periodic or stop checkpoint) and
``best_checkpoints.json``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import attrs

from torchkiln.runner.checkpoint_io import (
    LAST_CHECKPOINT,
    CheckpointError,
    CheckpointWriter,
    atomic_write_text,
    load_checkpoint_file,
    read_pointer,
    remove_stale_temp_files,
)
from torchkiln.runner.model_state import DEFAULT_REVISE_KEYS

__all__ = ["BEST_RECORDS_FILE", "BestRecord", "CheckpointRecord", "Checkpointer", "StateSource"]

BEST_RECORDS_FILE = "best_checkpoints.json"
COMPLETE_FILE = "run_complete"  # names the last checkpoint of a run that trained to its end
RECORD_KEY = "checkpointer"
_LEGACY_RECORD_KEY = "checkpoint_hook"  # checkpoints written before the Checkpointer existed


class StateSource(Protocol):
    """What the Checkpointer needs from the run: capture its state, restore it, load weights."""

    def capture(
        self,
        save_optimizer: bool,
        save_param_scheduler: bool,
        meta: Mapping[str, Any] | None,
        by_epoch: bool,
    ) -> dict[str, Any]:
        """The checkpoint dict of the current state."""

    def restore(
        self,
        checkpoint: dict[str, Any],
        filename: str,
        resume_optimizer: bool,
        resume_param_scheduler: bool,
    ) -> None:
        """Restore the training state from ``checkpoint``."""

    def load_weights(
        self,
        checkpoint: dict[str, Any],
        filename: str,
        strict: bool,
        revise_keys: Sequence[Sequence[str]],
    ) -> None:
        """Load the model weights of ``checkpoint``."""


@attrs.define
class BestRecord:
    """The best checkpoint of one metric: its score, file and the rule that ranks scores."""

    score: float
    path: str
    rule: str | None = None


@attrs.define
class CheckpointRecord:
    """The Checkpointer's whole state; saved in every checkpoint, restored on resume."""

    periodic: list[str] = attrs.field(factory=list)  # file names in out_dir, oldest first
    best: dict[str, BestRecord] = attrs.field(factory=dict)
    stop: str | None = None  # a stop checkpoint of an earlier part of this run

    def to_dict(self, out_dir: str) -> dict[str, Any]:
        """Plain data for ``meta['checkpointer']`` (loadable with ``weights_only=True``)."""
        return {
            "out_dir": out_dir,
            "periodic": list(self.periodic),
            "best": {key: attrs.asdict(record) for key, record in self.best.items()},
            "stop": self.stop,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CheckpointRecord:
        """The record saved by :meth:`to_dict` (or by a CheckpointHook of an older version)."""
        if "periodic" in data or "best" in data:
            best = {
                str(key): BestRecord(float(rec["score"]), str(rec["path"]), rec.get("rule"))
                for key, rec in (data.get("best") or {}).items()
                if isinstance(rec, Mapping) and rec.get("score") is not None and rec.get("path")
            }
            return cls(list(data.get("periodic") or []), best, data.get("stop"))
        # The older layout: parallel lists of keys, rules, scores and files; ids of periodic files.
        keys = list(data.get("keys") or [])
        rules = list(data.get("rules") or [None] * len(keys))
        scores = list(data.get("best_score") or [])
        paths = list(data.get("best_ckpt") or [])
        best = {}
        for i, key in enumerate(keys):
            if i < len(scores) and scores[i] is not None and i < len(paths) and paths[i]:
                best[key] = BestRecord(
                    float(scores[i]), paths[i], rules[i] if i < len(rules) else None
                )
        return cls([], best, None)


def _real(path: str) -> str:
    return os.path.realpath(path)


class Checkpointer:
    """Writes, finds, prunes and loads a run's checkpoints (see the module docstring).

    :param work_dir: the run's work folder (the default ``out_dir``, where the pointer is
        looked for on resume).
    :param state: captures and restores the run's state (:class:`~torchkiln.runner.training_state.TrainingState`).
    :param rank: only rank 0 touches files; every rank captures (captures may be collective).
    :param logger: where messages go.
    :param message_hub: receives a read-only copy of the best scores and files
        (``best_score``/``best_ckpt``, MMEngine's runtime-info keys) and the stall time of
        background saves; ``None`` for none.
    :param clock: a monotonic clock in seconds (tests pass a fake one).
    """

    def __init__(
        self,
        work_dir: str,
        state: StateSource,
        *,
        rank: int = 0,
        logger: Any = None,
        message_hub: Any = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._work_dir = os.path.abspath(work_dir)
        self._state = state
        self._rank = rank
        self._logger = logger
        self._hub = message_hub
        self._writer = CheckpointWriter(clock=clock)
        self._out_dir = self._work_dir
        self.max_keep_ckpts = -1
        self.async_save = False
        self._stop_template: str | None = None
        self.record = CheckpointRecord()
        self.last_saved: str | None = None
        self.resumed_from: str | None = None
        self._listeners: list[Callable[[str, str], None]] = []

    # ------------------------------------------------------------------ settings
    def configure(
        self,
        out_dir: str | os.PathLike[str] | None = None,
        max_keep_ckpts: int = -1,
        async_save: bool = False,
        stop_filename_tmpl: str | None = None,
    ) -> None:
        """Set where checkpoints go and how many periodic ones to keep.

        :param out_dir: root folder; checkpoints go to ``out_dir/<last folder of work_dir>``
            (MMEngine's rule). ``None``: the work folder.
        :param max_keep_ckpts: keep at most this many periodic checkpoints (``-1``: all).
        :param async_save: write in a background thread (state staged on the CPU first).
        :param stop_filename_tmpl: name stop checkpoints with this template and keep them
            like periodic ones (an iteration-based schedule); ``None``: ``iter_{n}.pth``.
        """
        if out_dir is None:
            self._out_dir = self._work_dir
        else:
            base = os.path.basename(self._work_dir.rstrip(os.sep))
            self._out_dir = os.path.join(os.path.abspath(os.fspath(out_dir)), base)
        self.max_keep_ckpts = max_keep_ckpts
        self.async_save = async_save
        self._stop_template = stop_filename_tmpl

    @property
    def out_dir(self) -> str:
        """The absolute folder checkpoints go to."""
        return self._out_dir

    @property
    def is_writer(self) -> bool:
        """Whether this process writes files (rank 0)."""
        return self._rank == 0

    def add_listener(self, listener: Callable[[str, str], None]) -> None:
        """Call ``listener(path, kind)`` on rank 0 once each checkpoint file is complete.

        ``kind`` is ``periodic``, ``best``, ``stop`` or ``other``. Listeners run in the thread
        that wrote the file (a background writer thread with ``async_save``), so they must be
        quick or hand work to a thread of their own (e.g. a tracker uploading an artifact).
        An exception in a listener is logged, never raised: a checkpoint on disk counts.
        """
        self._listeners.append(listener)

    def _notify(self, path: str, kind: str) -> None:
        for listener in self._listeners:
            try:
                listener(path, kind)
            except Exception as exc:  # the file is written; a listener must not undo that
                self._warning(
                    f"checkpoint listener {listener!r} failed for {path}: {type(exc).__name__}: {exc}"
                )

    def prepare_out_dir(self) -> None:
        """Before training: remove temporary files an interrupted save left, say where files go."""
        if self.is_writer:
            removed = remove_stale_temp_files(self._out_dir)
            if removed:
                self._info(
                    f"removed {len(removed)} unfinished temporary file(s) of an interrupted save from {self._out_dir}"
                )
        self._info(f"Checkpoints will be saved to {self._out_dir}")

    # ------------------------------------------------------------------ the pointer
    def latest(self) -> str | None:
        """The checkpoint ``last_checkpoint`` points to (``out_dir`` first, then the work
        folder), or None when there is none yet.

        :raises CheckpointError: the pointer names a file that does not exist.
        """
        for folder in dict.fromkeys((self._out_dir, self._work_dir)):
            target = read_pointer(folder)
            if target is None:
                continue
            if not os.path.isfile(target):
                raise CheckpointError(
                    f"{os.path.join(folder, LAST_CHECKPOINT)} points to {target}, which does not exist",
                    hint="resume from a checkpoint file explicitly (resume: PATH or --resume PATH), or delete the pointer to start over",
                )
            return target
        return None

    def _point_to(self, path: str) -> None:
        atomic_write_text(os.path.join(self._out_dir, LAST_CHECKPOINT), path)

    # ------------------------------------------------------------------ saving
    def save(
        self,
        filename: str,
        out_dir: str | None = None,
        *,
        save_optimizer: bool = True,
        save_param_scheduler: bool = True,
        meta: Mapping[str, Any] | None = None,
        by_epoch: bool = True,
        async_save: bool | None = None,
        on_written: Callable[[str], None] | None = None,
        kind: str = "other",
    ) -> str:
        """Capture the state and write it to ``out_dir/filename``; return the path.

        Every rank captures; only rank 0 writes. With ``async_save`` (default: the
        configured value) the state is staged as CPU copies and written in the background;
        ``on_written(path)`` runs once the file is complete (rank 0 only).
        """
        folder = self._out_dir if out_dir is None else os.fspath(out_dir)
        checkpoint = self._state.capture(save_optimizer, save_param_scheduler, meta, by_epoch)
        checkpoint.setdefault("meta", {})[RECORD_KEY] = self.record.to_dict(self._out_dir)
        path = os.path.join(folder, filename)
        if not self.is_writer:
            return path
        background = self.async_save if async_save is None else async_save

        def written(done: str) -> None:
            if on_written is not None:
                on_written(done)
            self._notify(done, kind)

        stall = self._writer.save(checkpoint, path, background=background, on_written=written)
        if background:
            if self._hub is not None:
                self._hub.update_info("checkpoint_stall_time", stall, resumed=False)
            self._info(
                f"checkpoint {filename}: training stalled {stall * 1000:.1f} ms for it (written in the background)"
            )
        return path

    def save_periodic(self, filename: str, **options: Any) -> str:
        """Save a periodic checkpoint, point ``last_checkpoint`` to it and prune old ones.

        ``options`` are :meth:`save`'s (``save_optimizer``, ``save_param_scheduler``, ``by_epoch``).
        """
        if filename in self.record.periodic:
            self.record.periodic.remove(filename)
        self.record.periodic.append(filename)
        path = self.save(filename, on_written=self._point_to, kind="periodic", **options)
        self.last_saved = path
        self._prune()
        self._drop_stop_checkpoint()
        return path

    def best(self, key: str) -> BestRecord | None:
        """The best checkpoint recorded for metric ``key``, or None."""
        return self.record.best.get(key)

    def save_best(
        self, key: str, score: float, rule: str | None, filename: str, **options: Any
    ) -> str:
        """Save the best checkpoint of metric ``key`` (the caller decided ``score`` is a new
        best); the previous best file of that metric is removed once the new one is complete.
        """
        previous = self.record.best.get(key)
        path = os.path.join(self._out_dir, filename)
        self.record.best[key] = BestRecord(float(score), path, rule)
        self._publish_best()
        records = self._best_records()

        def written(done: str) -> None:
            self._write_best_file(records)
            if previous is not None and _real(previous.path) != _real(done):
                self._remove(previous.path)

        return self.save(filename, on_written=written, kind="best", **options)

    def save_on_stop(self, step: int) -> str:
        """Save a resumable checkpoint after iteration ``step`` (training stops on a request)
        and point ``last_checkpoint`` to it; the file is complete when this returns.
        """
        from torchkiln.dist import barrier

        self.wait()
        if self._stop_template is not None:
            filename = self._stop_template.format(step)
            if filename in self.record.periodic:
                self.record.periodic.remove(filename)
            self.record.periodic.append(filename)
            previous_stop = None
        else:
            filename = f"iter_{step}.pth"
            previous_stop = self.record.stop
            self.record.stop = os.path.join(self._out_dir, filename)
        path = self.save(filename, async_save=False, by_epoch=False, kind="stop")
        if self.is_writer:
            self._point_to(path)
        self.last_saved = path
        if self._stop_template is not None:
            self._prune()
        elif previous_stop and _real(previous_stop) != _real(path):
            self._remove_old_stop_checkpoint(previous_stop)
        barrier()  # no rank leaves (and gets its launcher to kill the others) before the file is written
        return path

    def wait(self) -> None:
        """Block until a checkpoint written in the background is complete (raise if it failed)."""
        self._writer.wait()

    def mark_complete(self) -> None:
        """Training reached its end: note that the checkpoint ``last_checkpoint`` names is the
        run's last, so resuming from it says the run is complete instead of training on."""
        self.wait()
        target = read_pointer(self._out_dir)
        if self.is_writer and target is not None:
            atomic_write_text(os.path.join(self._out_dir, COMPLETE_FILE), target)

    def is_complete(self, checkpoint: str) -> bool:
        """Whether ``checkpoint`` is the last checkpoint of a run that trained to its end."""
        try:
            with open(os.path.join(self._out_dir, COMPLETE_FILE), encoding="utf-8") as fh:
                return _real(fh.read().strip()) == _real(checkpoint)
        except OSError:
            return False

    def publish(self, keys: Sequence[str]) -> str | None:
        """Write a copy of the best (else the latest periodic) checkpoint with only ``keys``,
        named ``<name>-<sha256[:8]>.pth``; return its path (None when nothing was saved).
        """
        import hashlib
        import io

        import torch

        from torchkiln.runner.checkpoint_io import atomic_write_bytes

        self.wait()
        source = next((rec.path for rec in self.record.best.values()), None) or self.last_saved
        if not source or not os.path.isfile(source):
            self._warning("published_keys is set but no checkpoint was saved; nothing published")
            return None
        checkpoint = load_checkpoint_file(source, map_location="cpu")
        missing = [k for k in keys if k not in checkpoint]
        if missing:
            self._warning(
                f"published_keys {missing} are not in {os.path.basename(source)}; published without them"
            )
        final = {k: checkpoint[k] for k in keys if k in checkpoint}
        buffer = io.BytesIO()
        torch.save(final, buffer)
        data = buffer.getvalue()
        target = f"{os.path.splitext(source)[0]}-{hashlib.sha256(data).hexdigest()[:8]}.pth"
        atomic_write_bytes(target, data)
        self._info(f"Published checkpoint with keys {list(final)} to {target}")
        return target

    # ------------------------------------------------------------------ retention
    def _protected(self) -> set[str]:
        """Files never to delete: current best checkpoints, the pointer's target, the last save."""
        paths = {_real(rec.path) for rec in self.record.best.values()}
        target = read_pointer(self._out_dir)
        if target:
            paths.add(_real(target))
        if self.last_saved:
            paths.add(_real(self.last_saved))
        return paths

    def _remove(self, path: str) -> None:
        """Delete ``path`` if it is a file of this run's folder that nothing references (rank 0)."""
        if not self.is_writer or os.path.dirname(_real(path)) != _real(self._out_dir):
            return
        if _real(path) not in self._protected() and os.path.isfile(path):
            os.remove(path)

    def _prune(self) -> None:
        if self.max_keep_ckpts <= 0:
            return
        excess = len(self.record.periodic) - self.max_keep_ckpts
        if excess <= 0:
            return
        protected = self._protected()
        kept: list[str] = []
        for name in self.record.periodic:
            path = os.path.join(self._out_dir, name)
            if excess > 0 and _real(path) not in protected:
                excess -= 1
                if self.is_writer and os.path.isfile(path):
                    os.remove(path)
            else:
                kept.append(name)
        self.record.periodic = kept

    def _drop_stop_checkpoint(self) -> None:
        """Remove a stop checkpoint of an earlier part of this run once a newer periodic one exists."""
        path = self.record.stop
        if not path or self.max_keep_ckpts <= 0:
            return
        self.record.stop = None
        self._remove_old_stop_checkpoint(path)

    def _remove_old_stop_checkpoint(self, path: str) -> None:
        if self.max_keep_ckpts > 0:
            self._remove(path)

    # ------------------------------------------------------------------ best records
    def _best_records(self) -> dict[str, Any]:
        return {key: attrs.asdict(rec) for key, rec in self.record.best.items()}

    def _write_best_file(self, records: dict[str, Any]) -> None:
        path = os.path.join(self._out_dir, BEST_RECORDS_FILE)
        atomic_write_text(path, json.dumps(records, indent=2, sort_keys=True) + "\n")

    def _publish_best(self) -> None:
        """A read-only copy of the best records in the message hub (MMEngine's keys)."""
        if self._hub is None:
            return
        single = len(self.record.best) == 1
        for key, rec in self.record.best.items():
            score_key, ckpt_key = (
                ("best_score", "best_ckpt") if single else (f"best_score_{key}", f"best_ckpt_{key}")
            )
            self._hub.update_info(score_key, rec.score)
            self._hub.update_info(ckpt_key, rec.path)

    def _adopt_best_file(self) -> None:
        """Take best files recorded on disk that are better than the restored record."""
        from torchkiln.hooks._rules import improves

        try:
            with open(os.path.join(self._out_dir, BEST_RECORDS_FILE), encoding="utf-8") as fh:
                records = json.load(fh)
        except (OSError, ValueError):
            return
        if not isinstance(records, dict):
            return
        for key, raw in records.items():
            if not isinstance(raw, dict) or raw.get("score") is None:
                continue
            path = raw.get("path")
            if not path or not os.path.isfile(path):
                continue
            score = float(raw["score"])
            current = self.record.best.get(key)
            rule = raw.get("rule") or (current.rule if current else None)
            if current is None or (rule is not None and improves(score, current.score, rule)):
                self.record.best[key] = BestRecord(score, path, rule)

    # ------------------------------------------------------------------ loading
    def load(
        self,
        filename: str,
        map_location: Any = "cpu",
        strict: bool = False,
        revise_keys: Sequence[Sequence[str]] = DEFAULT_REVISE_KEYS,
    ) -> dict[str, Any]:
        """Load model weights from a checkpoint file (safely); return the checkpoint."""
        checkpoint = load_checkpoint_file(filename, map_location=map_location)
        self._state.load_weights(checkpoint, filename, strict, revise_keys)
        return checkpoint

    def resume(
        self,
        filename: str,
        resume_optimizer: bool = True,
        resume_param_scheduler: bool = True,
        map_location: Any = "cpu",
    ) -> dict[str, Any]:
        """Restore the whole training state from ``filename`` and this Checkpointer's record."""
        checkpoint = load_checkpoint_file(filename, map_location=map_location)
        self._state.restore(checkpoint, filename, resume_optimizer, resume_param_scheduler)
        self.resumed_from = filename
        meta = checkpoint.get("meta") or {}
        saved = meta.get(RECORD_KEY) or meta.get(_LEGACY_RECORD_KEY)
        # Only a checkpoint of this same folder: never prune or replace another run's files.
        if isinstance(saved, Mapping) and saved.get("out_dir") == self._out_dir:
            self.record = CheckpointRecord.from_dict(saved)
            self._adopt_best_file()
            self._publish_best()
        return checkpoint

    def load_or_resume(
        self, resume: bool | str, load_from: tuple[str, bool, list[tuple[str, str]]] | None
    ) -> None:
        """``resume`` (True: the pointer's target; a path: that file), else ``load_from`` weights."""
        if resume:
            path = resume if isinstance(resume, str) else self.latest()
            if path is None:
                self._warning(
                    f"resume: no last_checkpoint in {self._work_dir}; training from scratch"
                )
            else:
                self.resume(path)
                return
        if load_from is not None:
            path, strict, revise_keys = load_from
            self.load(path, strict=strict, revise_keys=revise_keys)

    # ------------------------------------------------------------------ messages
    def _info(self, message: str) -> None:
        if self._logger is not None:
            self._logger.info(message)

    def _warning(self, message: str) -> None:
        if self._logger is not None:
            self._logger.warning(message)
