"""Every mount point a plugin can attach to, in lifecycle order; no logic.

A mount point is a named moment in a run. Plugins implement it by defining a method (on a
:class:`~torchkiln.hooks.Hook` subclass or any object) or a module-level function with the
mount point's name; no decorator is needed. An implementation may accept any subset of the
arguments listed here, named exactly as here (``runner`` first), because arguments are
matched by name. Implementations return nothing; their return values are ignored.

Call order: by priority (``HIGHEST`` = 0 first ... ``LOWEST`` = 100 last), then by
registration order. The runner calls mount points only through
:class:`torchkiln.plugin_host.HookFacade`, never through ``pluggy``'s relay, because the
facade owns that order and attributes errors to the plugin that raised them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Mapping, Sequence

    from torchkiln.runner import Runner

__all__ = ["MOUNT_POINTS", "PROJECT_NAME", "hookspec"]

PROJECT_NAME = "torchkiln"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)

# ---------------------------------------------------------------------------------------
# Run: once around everything ``runner.train()``, ``runner.val()`` or ``runner.test()`` does
# ---------------------------------------------------------------------------------------


@hookspec
def before_run(runner: Runner) -> None:
    """Called once when a run starts, before any loop or checkpoint loading.

    :param runner: the runner that owns the run.

    Every plugin is registered by then; this is the place to open files or connections.
    """


@hookspec
def after_run(runner: Runner) -> None:
    """Called once when a run ends, after the last loop.

    :param runner: the runner that owns the run.

    Called only when ``before_run`` completed, including after an error in a loop, so
    plugins can close what they opened.
    """


# ---------------------------------------------------------------------------------------
# Phases: around the train, val and test loops
# ---------------------------------------------------------------------------------------


@hookspec
def before_train(runner: Runner) -> None:
    """Called when the training loop starts, after a resume has restored its state.

    :param runner: the runner; ``runner.epoch`` and ``runner.iter`` are where training
        continues from.
    """


@hookspec
def after_train(runner: Runner) -> None:
    """Called when the training loop ends (``max_epochs``/``max_iters`` reached or stopped).

    :param runner: the runner.
    """


@hookspec
def before_val(runner: Runner) -> None:
    """Called when a validation loop starts, during training or from ``runner.val()``.

    :param runner: the runner.
    """


@hookspec
def after_val(runner: Runner) -> None:
    """Called when a validation loop ends, after ``after_val_epoch``.

    :param runner: the runner.
    """


@hookspec
def before_test(runner: Runner) -> None:
    """Called when the test loop starts (``runner.test()``).

    :param runner: the runner.
    """


@hookspec
def after_test(runner: Runner) -> None:
    """Called when the test loop ends, after ``after_test_epoch``.

    :param runner: the runner.
    """


# ---------------------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------------------


@hookspec
def after_load_checkpoint(runner: Runner, checkpoint: dict[str, Any]) -> None:
    """Called after a checkpoint was read (``load_from`` or ``resume``), before it is applied.

    :param runner: the runner.
    :param checkpoint: the checkpoint dict (``meta``, ``state_dict``, ``optimizer``, ...);
        implementations may read it and restore their own state from it (EMA weights).
    """


@hookspec
def before_save_checkpoint(runner: Runner, checkpoint: dict[str, Any]) -> None:
    """Called before a checkpoint is written.

    :param runner: the runner.
    :param checkpoint: the checkpoint dict about to be saved; implementations may add
        their own entries to it (they are restored through ``after_load_checkpoint``).
    """


# ---------------------------------------------------------------------------------------
# Epochs
# ---------------------------------------------------------------------------------------


@hookspec
def before_train_epoch(runner: Runner) -> None:
    """Called at the start of each training epoch (once, for iteration-based training).

    :param runner: the runner; ``runner.epoch`` is the number of finished epochs.
    """


@hookspec
def after_train_epoch(runner: Runner) -> None:
    """Called at the end of each training epoch, before the epoch counter moves on.

    :param runner: the runner.
    """


@hookspec
def before_val_epoch(runner: Runner) -> None:
    """Called before the first validation batch.

    :param runner: the runner.
    """


@hookspec
def after_val_epoch(runner: Runner, metrics: Mapping[str, Any] | None) -> None:
    """Called after the evaluator has computed the validation metrics.

    :param runner: the runner.
    :param metrics: metric name to value, e.g. ``{'accuracy/top1': 96.1}``; ``None`` when
        there was nothing to evaluate.
    """


@hookspec
def before_test_epoch(runner: Runner) -> None:
    """Called before the first test batch.

    :param runner: the runner.
    """


@hookspec
def after_test_epoch(runner: Runner, metrics: Mapping[str, Any] | None) -> None:
    """Called after the evaluator has computed the test metrics.

    :param runner: the runner.
    :param metrics: metric name to value; ``None`` when there was nothing to evaluate.
    """


# ---------------------------------------------------------------------------------------
# Iterations: the hot path, once per batch
# ---------------------------------------------------------------------------------------


@hookspec
def before_train_iter(runner: Runner, batch_idx: int, data_batch: Any) -> None:
    """Called before each training step.

    :param runner: the runner; ``runner.iter`` is the number of finished iterations.
    :param batch_idx: index of the batch in the current epoch (the global iteration for
        iteration-based training).
    :param data_batch: the batch from the dataloader, before the data preprocessor.

    Runs once per batch: keep it cheap, and never synchronise with the device here.
    """


@hookspec
def after_backward(runner: Runner, optim_wrapper: Any) -> None:
    """Called after each backward pass of a training step (every micro-batch of an
    accumulation window), by the optimizer wrapper.

    :param runner: the runner.
    :param optim_wrapper: the :class:`~torchkiln.optim.OptimWrapper` that ran the backward
        pass; its optimizer's parameters hold the gradients accumulated so far (scaled by
        the loss scaler under AMP float16).

    Only when some hook implements it does the wrapper call it: no cost otherwise.
    """


@hookspec
def before_optimizer_step(runner: Runner, optim_wrapper: Any) -> None:
    """Called once per real optimizer step, when the gradients of the accumulation window are
    complete: after the loss scaler unscaled them (AMP float16) and before clipping and
    ``optimizer.step()``. Not called for a window that is skipped (a non-finite loss).

    :param runner: the runner.
    :param optim_wrapper: the :class:`~torchkiln.optim.OptimWrapper` about to step.

    The place for gradient inspection (norms, non-finite values): reading a gradient value
    synchronises with the device, so do it at an interval. Only when some hook implements
    it does the wrapper call it: no cost otherwise.
    """


@hookspec
def after_train_iter(
    runner: Runner, batch_idx: int, data_batch: Any, outputs: Mapping[str, Any] | None
) -> None:
    """Called after each training step (forward, backward and optimizer update).

    :param runner: the runner; ``runner.iter`` still counts the iterations finished
        before this one.
    :param batch_idx: index of the batch in the current epoch.
    :param data_batch: the batch from the dataloader.
    :param outputs: what ``model.train_step`` returned: a dict of (device) tensors to log.

    Runs once per batch: keep it cheap, and never synchronise with the device here.
    """


@hookspec
def before_val_iter(runner: Runner, batch_idx: int, data_batch: Any) -> None:
    """Called before each validation step.

    :param runner: the runner.
    :param batch_idx: index of the batch in the validation dataloader.
    :param data_batch: the batch from the dataloader.
    """


@hookspec
def after_val_iter(
    runner: Runner, batch_idx: int, data_batch: Any, outputs: Sequence[Any] | None
) -> None:
    """Called after each validation step, once the evaluator has processed the batch.

    :param runner: the runner.
    :param batch_idx: index of the batch in the validation dataloader.
    :param data_batch: the batch from the dataloader.
    :param outputs: what ``model.val_step`` returned (usually a list of predictions).
    """


@hookspec
def before_test_iter(runner: Runner, batch_idx: int, data_batch: Any) -> None:
    """Called before each test step.

    :param runner: the runner.
    :param batch_idx: index of the batch in the test dataloader.
    :param data_batch: the batch from the dataloader.
    """


@hookspec
def after_test_iter(
    runner: Runner, batch_idx: int, data_batch: Any, outputs: Sequence[Any] | None
) -> None:
    """Called after each test step, once the evaluator has processed the batch.

    :param runner: the runner.
    :param batch_idx: index of the batch in the test dataloader.
    :param data_batch: the batch from the dataloader.
    :param outputs: what ``model.test_step`` returned (usually a list of predictions).
    """


def _declared_mount_points() -> tuple[str, ...]:
    """The hookspecs above, in the order they are written (module globals keep it)."""
    marker = f"{PROJECT_NAME}_spec"  # the attribute pluggy's HookspecMarker sets
    return tuple(
        name for name, value in globals().items() if callable(value) and hasattr(value, marker)
    )


#: Every mount point, in lifecycle order: the functions marked ``@hookspec`` in this module.
#: Adding a mount point is one hookspec here plus the runner's call of it.
MOUNT_POINTS: tuple[str, ...] = _declared_mount_points()
