"""EMAHook: keep an exponential moving average of the model and evaluate with it.

Checkpoint layout (MMEngine's, so checkpoints move between the two): ``state_dict`` holds
the averaged (EMA) weights, which is what a plain ``load_from`` should evaluate, and
``ema_state_dict`` holds the averaged model's own state dict (``steps`` and ``module.<key>``)
with the ``module.<key>`` entries swapped for the trained (source) weights.

Resuming from a checkpoint that has ``ema_state_dict`` restores both exactly: the entries
are swapped back, the averaged model gets its weights and step count, and the trained model
gets the source weights. A plain ``load_from`` (no ``resume``), like a checkpoint without
``ema_state_dict``, starts the average from the checkpoint's ``state_dict`` (the averaged
weights), as in MMEngine: the model and its average both start from the published weights.
A resumed checkpoint without ``ema_state_dict`` gets a warning.

Swapping weights for validation and testing exchanges the tensors' storage (``.data``) in
place: nothing is copied or allocated when the average lives on the model's device.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

from torchkiln.errors import ConfigAssertionError
from torchkiln.hooks.hook import Hook
from torchkiln.registry import HOOKS

__all__ = ["EMAHook"]

_PREFIX = "module."


def _swap_tensor_data(a: Any, b: Any) -> None:
    """Exchange the contents of ``a`` and ``b``: storage swap when compatible, else copies."""
    if a.device == b.device and a.dtype == b.dtype and a.shape == b.shape:
        a.data, b.data = b.data, a.data
    else:
        tmp = a.detach().clone()
        a.data.copy_(b.data.to(a.device, a.dtype))
        b.data.copy_(tmp.to(b.device, b.dtype))


def _swap_checkpoint_entries(checkpoint: dict[str, Any]) -> None:
    """Exchange ``state_dict[k]`` and ``ema_state_dict['module.' + k]`` for every shared key."""
    model_state = checkpoint["state_dict"]
    ema_state = checkpoint["ema_state_dict"]
    for ema_key in list(ema_state):
        if ema_key.startswith(_PREFIX):
            key = ema_key[len(_PREFIX) :]
            if key in model_state:
                model_state[key], ema_state[ema_key] = ema_state[ema_key], model_state[key]


def _resuming(runner: Any) -> bool:
    """True when the runner resumes a run (``resume``), not when it only loads weights."""
    return bool(getattr(runner, "_resume", False))


@HOOKS.register_module()
class EMAHook(Hook):
    """Average the model's weights during training; validate and test with the average.

    :param ema_type: averaged-model type from the MODELS registry
        (``ExponentialMovingAverage``, ``MomentumAnnealingEMA``, ``StochasticWeightAverage``
        or your own).
    :param strict_load: require the averaged model's keys to match a loaded checkpoint.
    :param begin_iter: start averaging at this iteration; before it the average copies the
        model.
    :param begin_epoch: start averaging at this epoch (not together with ``begin_iter``).
    :param kwargs: passed to the averaged model (``momentum``, ``interval``, ``device``,
        ``update_buffers``, ``gamma``...).
    """

    priority = "NORMAL"

    def __init__(
        self,
        ema_type: str = "ExponentialMovingAverage",
        strict_load: bool = False,
        begin_iter: int = 0,
        begin_epoch: int = 0,
        **kwargs: Any,
    ) -> None:
        if begin_iter and begin_epoch:
            raise ConfigAssertionError(
                "EMAHook takes `begin_iter` and `begin_epoch` one at a time, not both",
                where="custom_hooks.EMAHook",
                hint="keep one of them",
            )
        for name, value in (("begin_iter", begin_iter), ("begin_epoch", begin_epoch)):
            if value < 0:
                raise ConfigAssertionError(
                    f"EMAHook `{name}` must be >= 0, got {value}",
                    where=f"custom_hooks.EMAHook.{name}",
                )
        self.ema_cfg = dict(type=ema_type, **kwargs)
        self.strict_load = strict_load
        self.begin_iter = begin_iter
        self.begin_epoch = begin_epoch
        self.src_model: Any = None
        self.ema_model: Any = None
        self._swapped = False
        self._pairs: list[tuple[Any, Any]] | None = None

    # ------------------------------------------------------------------ setup
    def _build(self, runner: Any) -> None:
        from torchkiln.model.wrappers import unwrap_model
        from torchkiln.registry import MODELS

        self.src_model = unwrap_model(runner.model)
        self.ema_model = MODELS.build(self.ema_cfg, default_args={"model": self.src_model})
        self._pairs = None

    def before_run(self, runner: Any) -> None:
        """Build the averaged model around the (unwrapped) model."""
        self._build(runner)

    def before_train(self, runner: Any) -> None:
        """Check that averaging starts within the run (the train loop's limits)."""
        loop = runner.train_loop  # built here if the hook runs outside runner.train()
        if self.begin_epoch and self.begin_epoch > loop.max_epochs:
            raise ConfigAssertionError(
                f"EMAHook self.begin_epoch={self.begin_epoch} is after the last epoch"
                f" ({loop.max_epochs})",
                where="custom_hooks.EMAHook.begin_epoch",
            )
        if self.begin_iter and self.begin_iter > loop.max_iters:
            raise ConfigAssertionError(
                f"EMAHook self.begin_iter={self.begin_iter} is after the last iteration"
                f" ({loop.max_iters})",
                where="custom_hooks.EMAHook.begin_iter",
            )

    def _started(self, runner: Any) -> bool:
        return runner.iter + 1 >= self.begin_iter and runner.epoch + 1 >= self.begin_epoch

    # ------------------------------------------------------------------ training
    def after_train_iter(
        self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None
    ) -> None:
        """Fold the model into the average (or, before the start, copy it).

        Both run every iteration on tensor lists the averaged model resolved once: one fused
        ``_foreach`` call, no ``state_dict()`` walk.
        """
        if self._started(runner):
            self.ema_model.update_parameters(self.src_model)
        else:
            self.ema_model.copy_from(self.src_model)

    # ------------------------------------------------------------------ evaluation
    def _swap_pairs(self) -> list[tuple[Any, Any]]:
        if self._pairs is None:
            avg = self.ema_model.module
            if getattr(self.ema_model, "update_buffers", False):
                avg_tensors = itertools.chain(avg.parameters(), avg.buffers())
                src_tensors = itertools.chain(self.src_model.parameters(), self.src_model.buffers())
            else:
                avg_tensors, src_tensors = avg.parameters(), self.src_model.parameters()
            self._pairs = list(zip(avg_tensors, src_tensors))
        return self._pairs

    def _swap(self) -> None:
        import torch

        with torch.no_grad():
            for avg, src in self._swap_pairs():
                _swap_tensor_data(avg, src)
        self._swapped = not self._swapped

    # Each of the four exchanges the weights, as in MMEngine: an ``after_*`` called on its
    # own (a hook driven by hand) swaps too. ``_swapped`` says which side is where.
    def _toggle(self) -> None:
        if self.ema_model is not None:
            self._swap()

    def before_val_epoch(self, runner: Any) -> None:
        """Put the averaged weights into the model for validation."""
        self._toggle()

    def after_val_epoch(self, runner: Any, metrics: Mapping[str, Any] | None = None) -> None:
        """Give the model its trained weights back."""
        self._toggle()

    def before_test_epoch(self, runner: Any) -> None:
        """Put the averaged weights into the model for testing."""
        self._toggle()

    def after_test_epoch(self, runner: Any, metrics: Mapping[str, Any] | None = None) -> None:
        """Give the model its trained weights back."""
        self._toggle()

    # ------------------------------------------------------------------ checkpoints
    def before_save_checkpoint(self, runner: Any, checkpoint: dict[str, Any]) -> None:
        """Store the average: EMA weights in ``state_dict``, source weights in ``ema_state_dict``."""
        if self.ema_model is None:
            return
        checkpoint["ema_state_dict"] = {
            key: value.detach().to("cpu", copy=True)
            for key, value in self.ema_model.state_dict().items()
        }
        if "state_dict" not in checkpoint:
            return
        # While swapped for evaluation the model already holds the average (and the averaged
        # module the source weights), so the entries are in place as they are.
        if not self._swapped:
            _swap_checkpoint_entries(checkpoint)

    def after_load_checkpoint(self, runner: Any, checkpoint: dict[str, Any]) -> None:
        """On resume, restore the averaged model and the trained model's own weights.

        On a plain load (``load_from``), or when the checkpoint has no ``ema_state_dict``,
        the average starts from the checkpoint's ``state_dict``.
        """
        if self.ema_model is None:
            self._build(runner)
        from torchkiln.runner.model_state import load_model_state

        if _resuming(runner) and "ema_state_dict" in checkpoint and "state_dict" in checkpoint:
            _swap_checkpoint_entries(checkpoint)  # back to: state_dict = source weights
            self._swapped = False
            self.ema_model.load_state_dict(checkpoint["ema_state_dict"], strict=self.strict_load)
            # The runner may have loaded ``state_dict`` before this hook ran; make sure the
            # model ends up with the source weights, not the average.
            load_model_state(
                self.src_model,
                checkpoint["state_dict"],
                strict=False,
                source="checkpoint state_dict",
            )
            return
        state_dict = checkpoint.get("state_dict")
        if state_dict is None:
            return
        if _resuming(runner):
            runner.logger.warning(
                "There is no `ema_state_dict` in the resumed checkpoint (EMAHook): the moving"
                " average starts from its state_dict"
            )
        load_model_state(
            self.ema_model.module,
            state_dict,
            strict=self.strict_load,
            source="checkpoint state_dict",
        )
