"""RuntimeInfoHook: keeps the message hub's counters, learning rates and losses up to date.

Hot path: ``before_train_iter`` and ``after_train_iter`` run every iteration. They only hand
values to the message hub: losses stay device tensors (the hub reads them at log intervals),
so nothing here synchronises host and device.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torchkiln.errors import ConfigAssertionError
from torchkiln.hooks.hook import Hook
from torchkiln.logging.scalars import is_scalar
from torchkiln.registry import HOOKS

__all__ = ["RuntimeInfoHook"]


def _runner_value(runner: Any, name: str) -> Any:
    """``runner.<name>``, or None when the runner cannot tell (e.g. no train loop)."""
    try:
        return getattr(runner, name)
    except Exception:  # a property that needs a train loop raises without one
        return None


class _PrefixedKeys(dict):
    """``prefix + name`` for each name, formatted on first sight only (names repeat every
    iteration: the loss keys, the learning-rate names)."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def __missing__(self, name: str) -> str:
        key = self[name] = self.prefix + name
        return key


def _is_single_optimizer(optim_wrapper: Any) -> bool:
    """Whether ``optim_wrapper.get_lr()`` is OptimWrapper's own, over one optimizer, and
    reports only ``lr`` (no ``base_lr`` from ``base_param_settings``)."""
    from torchkiln.optim.optimizer.optim_wrapper import OptimWrapper

    cls = type(optim_wrapper)
    return (
        isinstance(optim_wrapper, OptimWrapper)
        and cls.get_lr is OptimWrapper.get_lr
        and cls.param_groups is OptimWrapper.param_groups
        and getattr(optim_wrapper, "base_param_settings", None) is None
    )


def _metric_updates(
    prefix: str, metrics: Mapping[str, Any] | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    scalars: dict[str, Any] = {}
    infos: dict[str, Any] = {}
    for key, value in (metrics or {}).items():
        (scalars if is_scalar(value) else infos)[f"{prefix}/{key}"] = value
    return scalars, infos


@HOOKS.register_module()
class RuntimeInfoHook(Hook):
    """Publish the run's state to the message hub for the other hooks and the log processor.

    Info keys: ``experiment_name``, ``seed``, ``epoch``, ``iter``, ``max_epochs``,
    ``max_iters``, ``loop_stage``, ``dataset_meta`` (the training dataset's ``metainfo``). Scalar keys: ``train/<lr name>`` (from
    ``optim_wrapper.get_lr()``, e.g. ``train/lr`` or ``train/generator.lr``), ``train/<loss
    name>`` for every value ``train_step`` returned, ``val/<metric>`` and ``test/<metric>``
    (non-scalar metrics go to info under the same key).
    """

    priority = "VERY_HIGH"

    def __init__(self) -> None:
        #: The loop stage an evaluation interrupted (``"train"`` for validation inside
        #: training), restored when the evaluation ends; None outside an evaluation.
        self.last_loop_stage: str | None = None
        self._train_keys = _PrefixedKeys("train/")
        # Whether the learning rate can be read straight from the optimizer's first param
        # group (what OptimWrapper.get_lr reports, without building a dict), decided once
        # per optimizer wrapper.
        self._checked_wrapper: Any = None
        self._single_optimizer = False

    # ------------------------------------------------------------------ run and train
    def before_run(self, runner: Any) -> None:
        """Record what is known about the run before anything starts."""
        hub = runner.message_hub
        for key in ("experiment_name", "seed", "timestamp"):
            value = _runner_value(runner, key)
            if value is not None:
                hub.update_info(key, value)

    def before_train(self, runner: Any) -> None:
        """Record the training counters and limits (after a resume they are the resumed ones)
        and the training dataset's meta information.

        The train loop is built here if it was not yet (when the hook runs outside
        ``runner.train()``), so the limits are the configured ones.
        """
        hub = runner.message_hub
        hub.update_info("loop_stage", "train")
        loop = _runner_value(runner, "train_loop")
        for key in ("epoch", "iter", "max_epochs", "max_iters"):
            value = _runner_value(runner, key)
            if value is not None:
                hub.update_info(key, value)
        dataset = getattr(getattr(loop, "dataloader", None), "dataset", None)
        metainfo = getattr(dataset, "metainfo", None)
        if metainfo is not None:
            hub.update_info("dataset_meta", metainfo)

    def after_train(self, runner: Any) -> None:
        """Training is over: no loop stage until the next one starts."""
        runner.message_hub.update_info("loop_stage", None)

    def before_train_epoch(self, runner: Any) -> None:
        """Record the epoch about to run (0-based count of finished epochs)."""
        runner.message_hub.update_info("epoch", runner.epoch)

    def before_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None) -> None:
        """Record the iteration and the learning rate of each optimizer's first param group."""
        hub = runner.message_hub
        hub.update_info("iter", runner.iter)
        optim_wrapper = runner.optim_wrapper
        if optim_wrapper is None:
            return
        if optim_wrapper is not self._checked_wrapper:
            self._checked_wrapper = optim_wrapper
            self._single_optimizer = _is_single_optimizer(optim_wrapper)
        if self._single_optimizer:
            groups = optim_wrapper.optimizer.param_groups
            if groups:
                hub.update_scalar("train/lr", groups[0]["lr"])
            return
        lrs = optim_wrapper.get_lr()
        if type(lrs) is not dict and not isinstance(lrs, Mapping):  # the exact type first: cheap
            raise ConfigAssertionError(
                f"runner.optim_wrapper.get_lr() returned a {type(lrs).__name__}, "
                "expected a dict of learning rates",
                where=f"optim_wrapper ({type(optim_wrapper).__name__})",
                hint="use an OptimWrapper (one optimizer) or an OptimWrapperDict (several), "
                "or make get_lr() return {name: [lr, ...]}",
            )
        keys = self._train_keys
        hub.update_scalars({keys[name]: values[0] for name, values in lrs.items() if values})

    def after_train_iter(
        self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None
    ) -> None:
        """Hand every value ``train_step`` returned to the hub as ``train/<key>``.

        Values stay tensors: the hub keeps them on their device and reads them when a log
        line is due. A value still attached to the graph is detached, so the hub never keeps
        a graph alive.
        """
        if outputs:
            keys = self._train_keys
            update = runner.message_hub.update_scalar  # it detaches what needs it
            for key, value in outputs.items():
                update(keys[key], value)

    # ------------------------------------------------------------------ val and test
    def before_val(self, runner: Any) -> None:
        """Mark the validation stage, remembering the stage to go back to."""
        self._enter_stage(runner, "val")

    def after_val(self, runner: Any) -> None:
        """Back to the stage before validation (``train`` inside a training run)."""
        self._leave_stage(runner)

    def before_test(self, runner: Any) -> None:
        """Mark the test stage."""
        self._enter_stage(runner, "test")

    def after_test(self, runner: Any) -> None:
        """Back to the stage before testing."""
        self._leave_stage(runner)

    def after_val_epoch(self, runner: Any, metrics: Mapping[str, Any] | None = None) -> None:
        """Publish the validation metrics as ``val/<metric>``."""
        self._publish_metrics(runner, "val", metrics)

    def after_test_epoch(self, runner: Any, metrics: Mapping[str, Any] | None = None) -> None:
        """Publish the test metrics as ``test/<metric>``."""
        self._publish_metrics(runner, "test", metrics)

    # ------------------------------------------------------------------ helpers
    def _enter_stage(self, runner: Any, stage: str) -> None:
        hub = runner.message_hub
        self.last_loop_stage = hub.get_info("loop_stage")
        hub.update_info("loop_stage", stage)

    def _leave_stage(self, runner: Any) -> None:
        runner.message_hub.update_info("loop_stage", self.last_loop_stage)
        self.last_loop_stage = None

    @staticmethod
    def _publish_metrics(runner: Any, prefix: str, metrics: Mapping[str, Any] | None) -> None:
        hub = runner.message_hub
        scalars, infos = _metric_updates(prefix, metrics)
        if scalars:
            hub.update_scalars(scalars)
        for key, value in infos.items():
            hub.update_info(key, value)
