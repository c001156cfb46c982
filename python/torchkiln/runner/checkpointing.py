"""The Runner's checkpoint side: what a checkpoint holds, writing it, resuming, loading weights.

A training checkpoint is a dict that ``torch.load(weights_only=True)`` reads back (plain
Python values, tensors, no custom classes):

==================  ============================================================================
``meta``            ``epoch``, ``iter`` (finished ones), ``epoch_iter`` (batches of the current
                    pass over the data already trained on), ``val_pending`` (a validation was
                    due and had not completed), ``seed``, ``experiment_name``, ``time``,
                    ``torchkiln_version``, ``torch_version``, ``world_size``, ``loop``, ``cfg``
                    (the run's config as YAML text); hooks add their own entries
``state_dict``      the unwrapped model's state, on the CPU
``optimizer``       the optimizer wrapper's state (``{name: state}`` for an OptimWrapperDict)
``loss_scaler``     the AMP loss scaler's state, when there is one
``param_schedulers`` one state per scheduler, in order
``message_hub``     the bounded log state (scalar windows, runtime info)
``rng``             python, numpy, torch CPU and CUDA generator states (rank 0's;
                    ``rng_per_rank`` holds every rank's with ``diff_rank_seed``)
``dataloader``      the train sampler's state, batches consumed, the loader's generator state
(hooks)             e.g. ``ema_state_dict`` from EMAHook, through ``before_save_checkpoint``
==================  ============================================================================

Resuming restores all of it and continues from the exact next batch. The loops decide the
position (see :meth:`~torchkiln.runner.train_loops.EpochBasedTrainLoop.checkpoint_position`);
:mod:`~torchkiln.runner.data_position` saves and restores the data order.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from torchkiln.errors import ConfigError
from torchkiln.runner.checkpoint_io import (
    LAST_CHECKPOINT,
    CheckpointError,
    CheckpointWriter,
    atomic_write_text,
    load_checkpoint_file,
)
from torchkiln.runner.data_position import capture_data_position, restore_data_position
from torchkiln.runner.environment import capture_rng_state, restore_rng_state
from torchkiln.runner.model_state import DEFAULT_REVISE_KEYS, LoadReport, load_model_state

__all__ = ["CheckpointMixin", "parse_load_from"]

# Scheduler attributes that record progress; all others come from the scheduler's config.
_SCHEDULER_PROGRESS_KEYS = frozenset(
    {"last_step", "_global_step", "_last_value", "base_values", "best", "num_bad_epochs", "cooldown_counter"}
)
_LOSS_SCALER = "loss_scaler"


def parse_load_from(load_from: Any) -> tuple[str, bool, list[tuple[str, str]]] | None:
    """``(path, strict, revise_keys)`` from ``load_from``: a path, or ``{path, strict, revise_keys}``.

    :raises ConfigError: an unknown key or a malformed value.
    """
    if load_from is None or load_from == "":
        return None
    if isinstance(load_from, (str, os.PathLike)):
        return os.fspath(load_from), False, [tuple(pair) for pair in DEFAULT_REVISE_KEYS]
    if not isinstance(load_from, Mapping):
        raise ConfigError(
            f"load_from must be a checkpoint path or {{path, strict, revise_keys}}, got {type(load_from).__name__}",
            where="load_from",
        )
    allowed = ("path", "strict", "revise_keys")
    for key in load_from:
        if key not in allowed:
            from torchkiln.errors import did_you_mean

            raise ConfigError(
                f"load_from has no key {key!r}", where=f"load_from.{key}",
                hint=did_you_mean(str(key), allowed) or f"accepted: {', '.join(allowed)}",
            )
    path = load_from.get("path")
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise ConfigError("load_from needs a 'path'", where="load_from.path")
    strict = load_from.get("strict", False)
    if not isinstance(strict, bool):
        raise ConfigError(f"load_from.strict must be true or false, got {strict!r}", where="load_from.strict")
    revise = load_from.get("revise_keys", DEFAULT_REVISE_KEYS)
    pairs: list[tuple[str, str]] = []
    for item in revise or ():
        if not isinstance(item, (list, tuple)) or len(item) != 2 or not all(isinstance(x, str) for x in item):
            raise ConfigError(
                f"load_from.revise_keys items must be [pattern, replacement] pairs of strings, got {item!r}",
                where="load_from.revise_keys", hint="e.g. revise_keys: [['^backbone\\\\.', '']]",
            )
        pairs.append((item[0], item[1]))
    return os.fspath(path), strict, pairs


def _split_loss_scaler(state: Any) -> tuple[Any, Any]:
    """Take the loss scaler state(s) out of an optimizer wrapper state (one wrapper or a dict)."""
    if not isinstance(state, dict):
        return state, None
    if _LOSS_SCALER in state:
        state = dict(state)
        return state, state.pop(_LOSS_SCALER)
    scalers = {}
    nested = {}
    for name, sub in state.items():
        if isinstance(sub, dict) and _LOSS_SCALER in sub:
            sub = dict(sub)
            scalers[name] = sub.pop(_LOSS_SCALER)
        nested[name] = sub
    return (nested, scalers) if scalers else (state, None)


def _join_loss_scaler(state: Any, scaler: Any) -> Any:
    if scaler is None or not isinstance(state, dict):
        return state
    state = dict(state)
    if "param_groups" in state:
        state[_LOSS_SCALER] = scaler
        return state
    for name, sub in scaler.items():
        if isinstance(state.get(name), dict):
            state[name] = {**state[name], _LOSS_SCALER: sub}
    return state


class CheckpointMixin:
    """Checkpoint methods of :class:`~torchkiln.runner.Runner` (it provides the attributes used)."""

    _checkpoint_writer: CheckpointWriter | None = None

    # ------------------------------------------------------------------ contents
    def _checkpoint_position(self, by_epoch: bool) -> dict[str, Any]:
        loop = self._train_loop
        if loop is None:
            return {"epoch": 0, "iter": 0, "epoch_iter": 0, "val_pending": False}
        if hasattr(loop, "checkpoint_position"):
            return dict(loop.checkpoint_position())
        # A loop without resume bookkeeping: MMEngine's convention (called from the
        # after_train_epoch or after_train_iter hooks).
        if by_epoch:
            return {"epoch": loop.epoch + 1, "iter": loop.iter, "epoch_iter": 0, "val_pending": False}
        return {"epoch": loop.epoch, "iter": loop.iter + 1, "epoch_iter": 0, "val_pending": False}

    def build_checkpoint(
        self,
        save_optimizer: bool = True,
        save_param_scheduler: bool = True,
        meta: Mapping[str, Any] | None = None,
        by_epoch: bool = True,
    ) -> dict[str, Any]:
        """The checkpoint dict for the current state (hooks' ``before_save_checkpoint`` included).

        Tensors are the live ones (the model's on the CPU); copy them before training goes on
        if the dict is kept (:func:`~torchkiln.runner.checkpoint_io.stage_on_cpu`).
        """
        import torch

        import torchkiln
        from torchkiln.runner.runner import _plain

        loop = self._train_loop
        position = self._checkpoint_position(by_epoch)
        checkpoint_meta: dict[str, Any] = {
            **position,
            "seed": self._seed,
            "experiment_name": self._experiment_name,
            "time": time.strftime("%Y%m%d_%H%M%S", time.localtime()),
            "torchkiln_version": str(torchkiln.__version__),
            "torch_version": str(torch.__version__),
            "world_size": self._world_size,
            "loop": type(loop).__name__ if loop is not None else "",
            "cfg": self._config_text(),
        }
        if meta:
            checkpoint_meta.update(_plain(dict(meta)))
        model = self._unwrapped_model()
        checkpoint: dict[str, Any] = {
            "meta": checkpoint_meta,
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "message_hub": self.message_hub.state_dict(),
            "rng": capture_rng_state(),
        }
        if save_optimizer and self.optim_wrapper is not None:
            optimizer, scaler = _split_loss_scaler(self.optim_wrapper.state_dict())
            checkpoint["optimizer"] = optimizer
            if scaler is not None:
                checkpoint[_LOSS_SCALER] = scaler
        if save_param_scheduler and self.param_schedulers:
            checkpoint["param_schedulers"] = [s.state_dict() for s in self._schedulers_list()]
        if loop is not None and getattr(loop, "dataloader", None) is not None:
            checkpoint["dataloader"] = capture_data_position(loop, int(position.get("epoch_iter", 0)))
        if self._distributed and self._randomness_cfg.get("diff_rank_seed"):
            # Every rank draws its own random numbers: keep each rank's generators. A
            # collective: with diff_rank_seed, save_checkpoint runs on every rank (as the
            # built-in hooks call it).
            from torchkiln.dist import all_gather_object

            own = {"rng": checkpoint["rng"], "generator": checkpoint.get("dataloader", {}).get("generator")}
            checkpoint["rng_per_rank"] = all_gather_object(own)
        self.hooks.before_save_checkpoint(self, checkpoint)
        return checkpoint

    def save_checkpoint(
        self,
        out_dir: str,
        filename: str,
        file_client_args: Any = None,
        save_optimizer: bool = True,
        save_param_scheduler: bool = True,
        meta: Mapping[str, Any] | None = None,
        by_epoch: bool = True,
        *,
        async_save: bool = False,
        on_written: Callable[[str], None] | None = None,
    ) -> str:
        """Write a checkpoint atomically; only rank 0 writes. Returns its path.

        :param by_epoch: only for loops without resume bookkeeping: whether the call comes
            from ``after_train_epoch`` (else ``after_train_iter``). The built-in loops know
            where they are.
        :param async_save: stage the state as CPU copies and write it in a background thread
            (one write at a time); the time training stalled is logged.
        :param on_written: called with the path once the file is complete (rank 0 only).
        """
        checkpoint = self.build_checkpoint(save_optimizer, save_param_scheduler, meta, by_epoch)
        path = os.path.join(out_dir, filename)
        if self.rank != 0:
            return path
        writer = self._writer()
        stall = writer.save(checkpoint, path, background=async_save, on_written=on_written)
        if async_save:
            self.message_hub.update_info("checkpoint_stall_time", stall, resumed=False)
            self.logger.info(f"checkpoint {filename}: training stalled {stall * 1000:.1f} ms for it (written in the background)")
        return path

    def _writer(self) -> CheckpointWriter:
        if self._checkpoint_writer is None:
            self._checkpoint_writer = CheckpointWriter()
        return self._checkpoint_writer

    def wait_for_checkpoints(self) -> None:
        """Block until a checkpoint written in the background is complete (raise if it failed)."""
        if self._checkpoint_writer is not None:
            self._checkpoint_writer.wait()

    def _config_text(self) -> str:
        if self.cfg is None:
            return ""
        dump = getattr(self.cfg, "dump", None)
        if callable(dump):
            try:
                return dump()
            except TypeError:
                pass
        from torchkiln._native import dump_yaml
        from torchkiln.runner.runner import _plain

        try:
            return dump_yaml(_plain(self.cfg), escape_refs=True)
        except (TypeError, ValueError):  # a config holding objects: no text
            return ""

    # ------------------------------------------------------------------ where checkpoints live
    def _checkpoint_hook(self) -> Any:
        """The registered hook that owns periodic checkpoints (has ``save_checkpoint_now``), or None."""
        for plugin in self._host.get_plugins():
            if callable(getattr(plugin, "save_checkpoint_now", None)):
                return plugin
        return None

    def _checkpoint_dirs(self) -> list[str]:
        dirs = [self._work_dir]
        hook = self._checkpoint_hook()
        if hook is not None and callable(getattr(hook, "resolve_out_dir", None)):
            out_dir = hook.resolve_out_dir(self)
            if out_dir not in dirs:
                dirs.append(out_dir)
        return dirs

    def _resume_path(self) -> str | None:
        """The checkpoint ``resume: true`` continues from, or None when there is none yet."""
        for folder in self._checkpoint_dirs():
            pointer = os.path.join(folder, LAST_CHECKPOINT)
            if not os.path.isfile(pointer):
                continue
            with open(pointer, encoding="utf-8") as fh:
                target = fh.read().strip()
            if not target:
                continue
            if not os.path.isabs(target):
                target = os.path.join(folder, target)
            if not os.path.isfile(target):
                raise CheckpointError(
                    f"{pointer} points to {target}, which does not exist",
                    hint="resume from a checkpoint file explicitly (resume: PATH or --resume PATH), or delete the pointer to start over",
                )
            return target
        return None

    def _save_on_stop(self) -> str:
        """Save a resumable checkpoint at the current position and point ``last_checkpoint`` to it."""
        from torchkiln.dist import barrier

        self.wait_for_checkpoints()
        hook = self._checkpoint_hook()
        if hook is not None:
            path = hook.save_checkpoint_now(self)
        else:
            path = self.save_checkpoint(self._work_dir, f"iter_{self.iter}.pth", by_epoch=False)
            if self.rank == 0:
                atomic_write_text(os.path.join(self._work_dir, LAST_CHECKPOINT), path)
        self.wait_for_checkpoints()
        barrier()  # no rank leaves (and gets its launcher to kill the others) before the file is written
        return path

    # ------------------------------------------------------------------ loading
    def load_or_resume(self, resume_state: bool = True) -> None:
        """Resume training state (``resume``) or load weights (``load_from``)."""
        resume = self._resume
        if resume_state and resume:
            path = resume if isinstance(resume, str) else self._resume_path()
            if path is None:
                self.logger.warning(f"resume: no last_checkpoint in {self._work_dir}; training from scratch")
            else:
                self.resume(path)
                return
        spec = parse_load_from(self._load_from)
        if spec is not None:
            path, strict, revise_keys = spec
            self.load_checkpoint(path, strict=strict, revise_keys=revise_keys)

    def load_checkpoint(
        self,
        filename: str,
        map_location: Any = "cpu",
        strict: bool = False,
        revise_keys: Sequence[Sequence[str]] = DEFAULT_REVISE_KEYS,
    ) -> dict[str, Any]:
        """Load model weights from a checkpoint (or a bare state dict) and log what did not fit.

        :raises CheckpointError: the file is unreadable, with ``strict`` any key mismatch, and
            always when not a single key of the model was found in the file.
        """
        checkpoint = load_checkpoint_file(filename, map_location=map_location)
        # Hooks see the checkpoint first and may revise it (MMEngine's order).
        self.hooks.after_load_checkpoint(self, checkpoint)
        state_dict = checkpoint.get("state_dict", checkpoint)
        if not isinstance(state_dict, Mapping):
            raise CheckpointError(f"{filename}: 'state_dict' is a {type(state_dict).__name__}, expected a dict of tensors")
        model = self._unwrapped_model()
        report: LoadReport = load_model_state(model, state_dict, strict=strict, revise_keys=revise_keys, source=filename)
        own = len(model.state_dict())
        if own and len(report.missing) + len(report.shape_mismatch) == own:
            raise CheckpointError(
                f"none of the weights in {filename} fit {type(model).__name__}:\n{report.format()}",
                hint="check the file, or rename its keys with load_from: {path: ..., revise_keys: [[pattern, replacement]]}",
            )
        if report.clean:
            self.logger.info(f"loaded weights from {filename}: all keys matched")
        else:
            self.logger.warning(f"loaded weights from {filename}:\n{report.format()}")
        return checkpoint

    def resume(
        self, filename: str, resume_optimizer: bool = True, resume_param_scheduler: bool = True, map_location: Any = "cpu"
    ) -> dict[str, Any]:
        """Restore model, optimizer, schedulers, scaler, loop position, data order, log state and RNG.

        :raises CheckpointError: the file is unreadable or not a training checkpoint.
        """
        checkpoint = load_checkpoint_file(filename, map_location=map_location)
        meta = checkpoint.get("meta")
        if not isinstance(meta, Mapping) or not isinstance(checkpoint.get("state_dict"), Mapping):
            raise CheckpointError(
                f"{filename} is not a training checkpoint (it has no 'meta' and 'state_dict'), so training cannot resume from it",
                hint="to start from its weights use load_from instead of resume",
            )
        self._warn_config_changes(meta, filename)
        saved_world = meta.get("world_size")
        if isinstance(saved_world, int) and saved_world != self._world_size:
            self.logger.warning(
                f"resume: the checkpoint was written by {saved_world} processes, this run has {self._world_size}; "
                "the data order continues from the same global position, but the run is not bit-identical"
            )
        self.hooks.after_load_checkpoint(self, checkpoint)
        report = load_model_state(self._unwrapped_model(), checkpoint["state_dict"], strict=False, source=filename)
        if not report.clean:
            self.logger.warning(f"resume: the model does not match {filename}:\n{report.format()}")
        loop = self.train_loop
        batches = int(meta.get("epoch_iter", 0) or 0)
        data_state = checkpoint.get("dataloader")
        rng_state = checkpoint.get("rng")
        per_rank = checkpoint.get("rng_per_rank")
        if isinstance(per_rank, list) and len(per_rank) == self._world_size:
            rng_state = per_rank[self._rank].get("rng", rng_state)
            if isinstance(data_state, Mapping) and per_rank[self._rank].get("generator") is not None:
                data_state = {**data_state, "generator": per_rank[self._rank]["generator"]}
        skip, replay = restore_data_position(loop, data_state, batches)
        if hasattr(loop, "restore_position"):
            loop.restore_position(dict(meta), skip, replay)
        else:
            loop._epoch = int(meta.get("epoch", 0))
            loop._iter = int(meta.get("iter", 0))
        if resume_optimizer and self.optim_wrapper is not None:
            if "optimizer" in checkpoint:
                self.optim_wrapper.load_state_dict(_join_loss_scaler(checkpoint["optimizer"], checkpoint.get(_LOSS_SCALER)))
            else:
                self.logger.warning(f"resume: {filename} has no optimizer state; the optimizer starts afresh")
        if resume_param_scheduler and self.param_schedulers:
            if "param_schedulers" in checkpoint:
                self._load_schedulers(checkpoint["param_schedulers"])
            else:
                self.logger.warning(f"resume: {filename} has no scheduler state; the schedules start afresh")
        if "message_hub" in checkpoint:
            self.message_hub.load_state_dict(checkpoint["message_hub"])
        # Last: nothing above may draw random numbers after the generators are restored.
        if rng_state is not None:
            restore_rng_state(rng_state)
        where = f"epoch {loop.epoch}, iter {loop.iter}"
        if skip:
            where += f" (batch {skip} of the epoch)"
        self.logger.info(f"resumed from {filename} at {where}")
        return checkpoint

    def _warn_config_changes(self, meta: Mapping[str, Any], filename: str) -> None:
        old_text = meta.get("cfg")
        new_text = self._config_text()
        if not isinstance(old_text, str) or not old_text or not new_text:
            return
        from torchkiln.runner.config_diff import config_changes

        try:
            changes = config_changes(old_text, new_text)
        except (ValueError, TypeError) as exc:
            self.logger.warning(f"resume: cannot compare the config of {filename} with this one ({exc})")
            return
        if not changes:
            return
        shown = changes[:40]
        more = f"\n  ... and {len(changes) - len(shown)} more" if len(changes) > len(shown) else ""
        self.logger.warning(
            f"resume: the config differs from the one {os.path.basename(filename)} was trained with; "
            "the current values apply:\n  " + "\n  ".join(shown) + more
        )

    def _schedulers_list(self) -> list[Any]:
        schedulers = self.param_schedulers or []
        if isinstance(schedulers, Mapping):
            return [s for group in schedulers.values() for s in group]
        if not isinstance(schedulers, (list, tuple)):
            return [schedulers]
        return list(schedulers)

    def _load_schedulers(self, states: Any) -> None:
        """Load each scheduler's state; a scheduler whose config changed keeps its new config.

        Progress (steps taken, last values, plateau counters) always comes from the
        checkpoint; the rest (milestones, factors, begin/end, ...) from the current config
        when it differs, so a changed schedule applies from the resumed step on.
        """
        schedulers = self._schedulers_list()
        if len(states) != len(schedulers):
            self.logger.warning(
                f"resume: the checkpoint has {len(states)} parameter schedulers, the config {len(schedulers)}; "
                "scheduler state not restored"
            )
            return
        for index, (scheduler, state) in enumerate(zip(schedulers, states)):
            fresh = scheduler.state_dict() if callable(getattr(scheduler, "state_dict", None)) else {}
            if not isinstance(state, Mapping) or not isinstance(fresh, Mapping):
                scheduler.load_state_dict(state)
                continue
            changed = [
                key for key in fresh
                if key not in _SCHEDULER_PROGRESS_KEYS and key in state and not _same(state[key], fresh[key])
            ]
            if not changed:
                scheduler.load_state_dict(state)
                continue
            merged = dict(fresh)
            merged.update({key: state[key] for key in _SCHEDULER_PROGRESS_KEYS if key in state})
            scheduler.load_state_dict(merged)
            details = ", ".join(f"{key}: {state[key]!r} -> {fresh[key]!r}" for key in changed if not key.startswith("_"))
            self.logger.warning(
                f"resume: param_scheduler[{index}] {type(scheduler).__name__} changed ({details or 'internal values'}); "
                "the new schedule applies from the resumed step on"
            )


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b) and type(a) is type(b)
    except (TypeError, ValueError, RuntimeError):  # e.g. tensors
        return a is b
