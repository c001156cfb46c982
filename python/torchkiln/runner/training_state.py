"""What a training checkpoint holds: capturing the run's state into a dict and restoring it.

A training checkpoint is a dict that ``torch.load(weights_only=True)`` reads back (plain
Python values, tensors, no custom classes):

==================  ============================================================================
``meta``            ``epoch``, ``iter`` (finished ones), ``epoch_iter`` (batches of the current
                    pass over the data already trained on), ``val_pending`` (a validation was
                    due and had not completed), ``seed``, ``experiment_name``, ``time``,
                    ``torchkiln_version``, ``torch_version``, ``world_size``, ``loop``, ``cfg``
                    (the run's config as YAML text), ``checkpointer`` (the Checkpointer's
                    record: periodic files kept, best files, stop checkpoint)
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

:class:`TrainingState` reads and writes all of it through the Runner's public API. The
loops decide the position (:meth:`~torchkiln.runner.train_loops.EpochBasedTrainLoop.checkpoint_position`);
:mod:`~torchkiln.runner.data_position` saves and restores the data order.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from torchkiln.config.plain import config_text, plain
from torchkiln.optim.scheduler.collection import iter_schedulers
from torchkiln.runner.checkpoint_io import CheckpointError
from torchkiln.runner.config_diff import config_changes
from torchkiln.runner.data_position import capture_data_position, restore_data_position
from torchkiln.runner.environment import capture_rng_state, restore_rng_state
from torchkiln.runner.lazy_components import optim_wrapper_built, schedulers_built
from torchkiln.runner.model_state import DEFAULT_REVISE_KEYS, load_model_state

if TYPE_CHECKING:  # pragma: no cover
    from torchkiln.runner.runner import Runner

__all__ = ["TrainingState"]

# Scheduler attributes that record progress; all others come from the scheduler's config.
_SCHEDULER_PROGRESS_KEYS = frozenset(
    {
        "last_step",
        "_global_step",
        "_last_value",
        "base_values",
        "best",
        "num_bad_epochs",
        "cooldown_counter",
    }
)
_LOSS_SCALER = "loss_scaler"


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


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b) and type(a) is type(b)
    except (TypeError, ValueError, RuntimeError):  # e.g. tensors
        return a is b


class TrainingState:
    """Captures a runner's training state as a checkpoint dict and restores it.

    It only reads and sets what the Runner exposes publicly (model, optimizer wrapper,
    schedulers, train loop, message hub, hooks), so the Checkpointer can be tested with a
    stand-in that has the same two methods.
    """

    def __init__(self, runner: Runner) -> None:
        self._runner = runner

    # ------------------------------------------------------------------ capture
    def capture(
        self,
        save_optimizer: bool = True,
        save_param_scheduler: bool = True,
        meta: Mapping[str, Any] | None = None,
        by_epoch: bool = True,
    ) -> dict[str, Any]:
        """The checkpoint dict for the current state (hooks' ``before_save_checkpoint`` included).

        Tensors are the live ones (the model's on the CPU); the Checkpointer copies them
        before training goes on when it writes in the background.

        :param by_epoch: only for loops without resume bookkeeping: whether the save comes
            from ``after_train_epoch`` (else ``after_train_iter``).
        """
        import torch

        import torchkiln

        runner = self._runner
        loop = runner.train_loop_if_built
        position = self._position(loop, by_epoch)
        checkpoint_meta: dict[str, Any] = {
            **position,
            "seed": runner.seed,
            "experiment_name": runner.experiment_name,
            "time": time.strftime("%Y%m%d_%H%M%S", time.localtime()),
            "torchkiln_version": str(torchkiln.__version__),
            "torch_version": str(torch.__version__),
            "world_size": runner.world_size,
            "loop": type(loop).__name__ if loop is not None else "",
            "cfg": config_text(runner.cfg),
        }
        if meta:
            checkpoint_meta.update(plain(dict(meta)))
        model = runner.unwrapped_model
        checkpoint: dict[str, Any] = {
            "meta": checkpoint_meta,
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "message_hub": runner.message_hub.state_dict(),
            "rng": capture_rng_state(),
        }
        if save_optimizer and optim_wrapper_built(runner.optim_wrapper):
            optimizer, scaler = _split_loss_scaler(runner.optim_wrapper.state_dict())
            checkpoint["optimizer"] = optimizer
            if scaler is not None:
                checkpoint[_LOSS_SCALER] = scaler
        if save_param_scheduler and schedulers_built(runner.param_schedulers):
            checkpoint["param_schedulers"] = [s.state_dict() for s in self._schedulers()]
        if loop is not None and getattr(loop, "dataloader", None) is not None:
            checkpoint["dataloader"] = capture_data_position(
                loop, int(position.get("epoch_iter", 0))
            )
        if runner.distributed and runner.diff_rank_seed:
            # Every rank draws its own random numbers: keep each rank's generators. A
            # collective: with diff_rank_seed, checkpoints are captured on every rank.
            from torchkiln.dist import all_gather_object

            own = {
                "rng": checkpoint["rng"],
                "generator": checkpoint.get("dataloader", {}).get("generator"),
            }
            checkpoint["rng_per_rank"] = all_gather_object(own)
        runner.dispatch.before_save_checkpoint(runner, checkpoint)
        return checkpoint

    @staticmethod
    def _position(loop: Any, by_epoch: bool) -> dict[str, Any]:
        if loop is None:
            return {"epoch": 0, "iter": 0, "epoch_iter": 0, "val_pending": False}
        if hasattr(loop, "checkpoint_position"):
            return dict(loop.checkpoint_position())
        # A loop without resume bookkeeping: MMEngine's convention (saved from the
        # after_train_epoch or after_train_iter hooks).
        if by_epoch:
            return {
                "epoch": loop.epoch + 1,
                "iter": loop.iter,
                "epoch_iter": 0,
                "val_pending": False,
            }
        return {"epoch": loop.epoch, "iter": loop.iter + 1, "epoch_iter": 0, "val_pending": False}

    # ------------------------------------------------------------------ weights only
    def load_weights(
        self,
        checkpoint: dict[str, Any],
        filename: str,
        strict: bool = False,
        revise_keys: Sequence[Sequence[str]] = DEFAULT_REVISE_KEYS,
    ) -> None:
        """Load the model weights of ``checkpoint`` (or a bare state dict) and log what did not fit.

        :raises CheckpointError: with ``strict`` any key mismatch, and always when not a
            single key of the model was found in the file.
        """
        runner = self._runner
        # Hooks see the checkpoint first and may revise it (MMEngine's order).
        runner.dispatch.after_load_checkpoint(runner, checkpoint)
        state_dict = checkpoint.get("state_dict", checkpoint)
        if not isinstance(state_dict, Mapping):
            raise CheckpointError(
                f"{filename}: 'state_dict' is a {type(state_dict).__name__}, expected a dict of tensors"
            )
        model = runner.unwrapped_model
        report = load_model_state(
            model, state_dict, strict=strict, revise_keys=revise_keys, source=filename
        )
        own = len(model.state_dict())
        if own and len(report.missing) + len(report.shape_mismatch) == own:
            raise CheckpointError(
                f"none of the weights in {filename} fit {type(model).__name__}:\n{report.format()}",
                hint="check the file, or rename its keys with load_from: {path: ..., revise_keys: [[pattern, replacement]]}",
            )
        if report.clean:
            runner.logger.info(f"loaded weights from {filename}: all keys matched")
        else:
            runner.logger.warning(f"loaded weights from {filename}:\n{report.format()}")

    # ------------------------------------------------------------------ resume
    def restore(
        self,
        checkpoint: dict[str, Any],
        filename: str,
        resume_optimizer: bool = True,
        resume_param_scheduler: bool = True,
    ) -> None:
        """Restore model, optimizer, schedulers, scaler, loop position, data order, log state and RNG.

        :raises CheckpointError: ``checkpoint`` is not a training checkpoint.
        """
        runner = self._runner
        meta = checkpoint.get("meta")
        if not isinstance(meta, Mapping) or not isinstance(checkpoint.get("state_dict"), Mapping):
            raise CheckpointError(
                f"{filename} is not a training checkpoint (it has no 'meta' and 'state_dict'), so training cannot resume from it",
                hint="to start from its weights use load_from instead of resume",
            )
        self._warn_config_changes(meta, filename)
        saved_world = meta.get("world_size")
        if isinstance(saved_world, int) and saved_world != runner.world_size:
            runner.logger.warning(
                f"resume: the checkpoint was written by {saved_world} processes, this run has {runner.world_size}; "
                "the data order continues from the same global position, but the run is not bit-identical"
            )
        runner.dispatch.after_load_checkpoint(runner, checkpoint)
        report = load_model_state(
            runner.unwrapped_model, checkpoint["state_dict"], strict=False, source=filename
        )
        if not report.clean:
            runner.logger.warning(
                f"resume: the model does not match {filename}:\n{report.format()}"
            )
        loop = runner.train_loop
        batches = int(meta.get("epoch_iter", 0) or 0)
        data_state = checkpoint.get("dataloader")
        rng_state = checkpoint.get("rng")
        per_rank = checkpoint.get("rng_per_rank")
        if isinstance(per_rank, list) and len(per_rank) == runner.world_size:
            mine = per_rank[runner.rank]
            rng_state = mine.get("rng", rng_state)
            if isinstance(data_state, Mapping) and mine.get("generator") is not None:
                data_state = {**data_state, "generator": mine["generator"]}
        skip, replay = restore_data_position(loop, data_state, batches)
        loop.restore_position(dict(meta), skip, replay)
        if (resume_optimizer or resume_param_scheduler) and runner.optim_wrapper is not None:
            # Resuming before train() (MMEngine's runner.resume): build what the state loads into.
            build = getattr(runner, "build_training_components", None)
            if callable(build):
                build()
        if resume_optimizer and optim_wrapper_built(runner.optim_wrapper):
            if "optimizer" in checkpoint:
                runner.optim_wrapper.load_state_dict(
                    _join_loss_scaler(checkpoint["optimizer"], checkpoint.get(_LOSS_SCALER))
                )
            else:
                runner.logger.warning(
                    f"resume: {filename} has no optimizer state; the optimizer starts afresh"
                )
        if resume_param_scheduler and schedulers_built(runner.param_schedulers):
            if "param_schedulers" in checkpoint:
                self._load_schedulers(checkpoint["param_schedulers"])
            else:
                runner.logger.warning(
                    f"resume: {filename} has no scheduler state; the schedules start afresh"
                )
        if "message_hub" in checkpoint:
            runner.message_hub.load_state_dict(checkpoint["message_hub"])
        # Last: nothing above may draw random numbers after the generators are restored.
        if rng_state is not None:
            restore_rng_state(rng_state)
        where = f"epoch {loop.epoch}, iter {loop.iter}"
        if skip:
            where += f" (batch {skip} of the epoch)"
        runner.logger.info(f"resumed from {filename} at {where}")

    def _warn_config_changes(self, meta: Mapping[str, Any], filename: str) -> None:
        runner = self._runner
        old_text = meta.get("cfg")
        new_text = config_text(runner.cfg)
        if not isinstance(old_text, str) or not old_text or not new_text:
            return
        try:
            changes = config_changes(old_text, new_text)
        except (ValueError, TypeError) as exc:
            runner.logger.warning(
                f"resume: cannot compare the config of {filename} with this one ({exc})"
            )
            return
        if not changes:
            return
        shown = changes[:40]
        more = f"\n  ... and {len(changes) - len(shown)} more" if len(changes) > len(shown) else ""
        runner.logger.warning(
            f"resume: the config differs from the one {os.path.basename(filename)} was trained with; "
            "the current values apply:\n  " + "\n  ".join(shown) + more
        )

    def _schedulers(self) -> list[Any]:
        return list(iter_schedulers(self._runner.param_schedulers))

    def _load_schedulers(self, states: Any) -> None:
        """Load each scheduler's state; a scheduler whose config changed keeps its new config.

        Progress (steps taken, last values, plateau counters) always comes from the
        checkpoint; the rest (milestones, factors, begin/end, ...) from the current config
        when it differs, so a changed schedule applies from the resumed step on.
        """
        logger = self._runner.logger
        schedulers = self._schedulers()
        if len(states) != len(schedulers):
            logger.warning(
                f"resume: the checkpoint has {len(states)} parameter schedulers, the config {len(schedulers)}; "
                "scheduler state not restored"
            )
            return
        for index, (scheduler, state) in enumerate(zip(schedulers, states)):
            fresh = (
                scheduler.state_dict() if callable(getattr(scheduler, "state_dict", None)) else {}
            )
            if not isinstance(state, Mapping) or not isinstance(fresh, Mapping):
                scheduler.load_state_dict(state)
                continue
            changed = [
                key
                for key in fresh
                if key not in _SCHEDULER_PROGRESS_KEYS
                and key in state
                and not _same(state[key], fresh[key])
            ]
            if not changed:
                scheduler.load_state_dict(state)
                continue
            merged = dict(fresh)
            merged.update({key: state[key] for key in _SCHEDULER_PROGRESS_KEYS if key in state})
            scheduler.load_state_dict(merged)
            details = ", ".join(
                f"{key}: {state[key]!r} -> {fresh[key]!r}"
                for key in changed
                if not key.startswith("_")
            )
            logger.warning(
                f"resume: param_scheduler[{index}] {type(scheduler).__name__} changed ({details or 'internal values'}); "
                "the new schedule applies from the resumed step on"
            )
