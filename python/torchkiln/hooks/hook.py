"""The ``Hook`` base class: a plain class whose methods named after mount points are hooks.

A subclass overrides any of the mount-point methods below (see :mod:`torchkiln.hookspecs`
for when each is called); no decorator is needed, so MMEngine hooks port unchanged. The
base versions do nothing and are marked, so the plugin host skips every method a subclass
did not override: a hook costs nothing at the mount points it does not implement.

As in MMEngine, the twelve epoch and iteration mount points of the base class hand over to
four generic methods, ``_before_epoch``, ``_after_epoch``, ``_before_iter`` and
``_after_iter``, with ``mode`` set to ``"train"``, ``"val"`` or ``"test"``. A subclass that
overrides a generic method gets the matching mode-specific methods it does not override
itself, generated when the class is created, so hooks written that way run unchanged.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from collections.abc import Sized
from typing import TYPE_CHECKING, Any

from torchkiln.plugin_host.discovery import impl_function
from torchkiln.plugin_host.discovery import implemented_mount_points
from torchkiln.plugin_host.discovery import mark_noop as _noop
from torchkiln.plugin_host.priority import PRIORITIES, get_priority, priority_label

if TYPE_CHECKING:  # pragma: no cover
    from torchkiln.runner import Runner

__all__ = ["PRIORITIES", "Hook", "get_priority", "priority_label"]

_MODES = ("train", "val", "test")


def _before_epoch_for(mode: str) -> Callable[..., None]:
    def method(self: Hook, runner: Runner) -> None:
        self._before_epoch(runner, mode=mode)

    return method


def _after_epoch_for(mode: str) -> Callable[..., None]:
    if mode == "train":

        def method(self: Hook, runner: Runner) -> None:
            self._after_epoch(runner, mode=mode)

    else:

        def method(self: Hook, runner: Runner, metrics: dict[str, Any] | None = None) -> None:  # type: ignore[misc]
            self._after_epoch(runner, mode=mode)

    return method


def _before_iter_for(mode: str) -> Callable[..., None]:
    def method(self: Hook, runner: Runner, batch_idx: int, data_batch: Any = None) -> None:
        self._before_iter(runner, batch_idx=batch_idx, data_batch=data_batch, mode=mode)

    return method


def _after_iter_for(mode: str) -> Callable[..., None]:
    def method(self: Hook, runner: Runner, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        self._after_iter(runner, batch_idx=batch_idx, data_batch=data_batch, outputs=outputs, mode=mode)

    return method


# generic method -> (mount point, mode, factory of the method that hands over to it)
_GENERIC: dict[str, tuple[tuple[str, str, Callable[[str], Callable[..., None]]], ...]] = {
    "_before_epoch": tuple((f"before_{m}_epoch", m, _before_epoch_for) for m in _MODES),
    "_after_epoch": tuple((f"after_{m}_epoch", m, _after_epoch_for) for m in _MODES),
    "_before_iter": tuple((f"before_{m}_iter", m, _before_iter_for) for m in _MODES),
    "_after_iter": tuple((f"after_{m}_iter", m, _after_iter_for) for m in _MODES),
}


class Hook:
    """Base class of hooks; override the mount points you need.

    ``priority`` (a name from :data:`PRIORITIES` or an int, lower first) orders hooks at
    each mount point; ties keep registration order. ``runner.register_hook(hook, priority)``
    overrides it.
    """

    priority: int | str = "NORMAL"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Give a class that overrides a generic method its mode-specific mount points.

        Only the mount points the class still inherits as base no-ops are generated, so an
        explicit ``after_train_iter`` wins over ``_after_iter``; a class that overrides no
        generic method keeps the cost-free no-ops.
        """
        super().__init_subclass__(**kwargs)
        for generic, mount_points in _GENERIC.items():
            if not inspect.isfunction(cls.__dict__.get(generic)):
                continue
            for name, mode, factory in mount_points:
                if impl_function(cls, name) is not None:
                    continue
                method = factory(mode)
                method.__name__ = name
                method.__qualname__ = f"{cls.__qualname__}.{name}"
                method.__module__ = cls.__module__
                method.__doc__ = f"Calls ``self.{generic}(..., mode={mode!r})``."
                setattr(cls, name, method)

    # ------------------------------------------------------------ generic methods (no-ops)
    def _before_epoch(self, runner: Runner, mode: str = "train") -> None:
        """Called before every epoch of ``mode`` (``"train"``, ``"val"`` or ``"test"``)."""

    def _after_epoch(self, runner: Runner, mode: str = "train") -> None:
        """Called after every epoch of ``mode``."""

    def _before_iter(self, runner: Runner, batch_idx: int, data_batch: Any = None, mode: str = "train") -> None:
        """Called before every iteration of ``mode``."""

    def _after_iter(
        self, runner: Runner, batch_idx: int, data_batch: Any = None, outputs: Any = None, mode: str = "train"
    ) -> None:
        """Called after every iteration of ``mode``."""

    # ------------------------------------------------------------ mount points (no-ops)
    @_noop
    def before_run(self, runner: Runner) -> None:
        """See :func:`torchkiln.hookspecs.before_run`."""

    @_noop
    def after_run(self, runner: Runner) -> None:
        """See :func:`torchkiln.hookspecs.after_run`."""

    @_noop
    def before_train(self, runner: Runner) -> None:
        """See :func:`torchkiln.hookspecs.before_train`."""

    @_noop
    def after_train(self, runner: Runner) -> None:
        """See :func:`torchkiln.hookspecs.after_train`."""

    @_noop
    def before_val(self, runner: Runner) -> None:
        """See :func:`torchkiln.hookspecs.before_val`."""

    @_noop
    def after_val(self, runner: Runner) -> None:
        """See :func:`torchkiln.hookspecs.after_val`."""

    @_noop
    def before_test(self, runner: Runner) -> None:
        """See :func:`torchkiln.hookspecs.before_test`."""

    @_noop
    def after_test(self, runner: Runner) -> None:
        """See :func:`torchkiln.hookspecs.after_test`."""

    @_noop
    def after_load_checkpoint(self, runner: Runner, checkpoint: dict[str, Any]) -> None:
        """See :func:`torchkiln.hookspecs.after_load_checkpoint`."""

    @_noop
    def before_save_checkpoint(self, runner: Runner, checkpoint: dict[str, Any]) -> None:
        """See :func:`torchkiln.hookspecs.before_save_checkpoint`."""

    @_noop
    def before_train_epoch(self, runner: Runner) -> None:
        """See :func:`torchkiln.hookspecs.before_train_epoch`."""
        self._before_epoch(runner, mode="train")

    @_noop
    def after_train_epoch(self, runner: Runner) -> None:
        """See :func:`torchkiln.hookspecs.after_train_epoch`."""
        self._after_epoch(runner, mode="train")

    @_noop
    def before_val_epoch(self, runner: Runner) -> None:
        """See :func:`torchkiln.hookspecs.before_val_epoch`."""
        self._before_epoch(runner, mode="val")

    @_noop
    def after_val_epoch(self, runner: Runner, metrics: dict[str, Any] | None = None) -> None:
        """See :func:`torchkiln.hookspecs.after_val_epoch`."""
        self._after_epoch(runner, mode="val")

    @_noop
    def before_test_epoch(self, runner: Runner) -> None:
        """See :func:`torchkiln.hookspecs.before_test_epoch`."""
        self._before_epoch(runner, mode="test")

    @_noop
    def after_test_epoch(self, runner: Runner, metrics: dict[str, Any] | None = None) -> None:
        """See :func:`torchkiln.hookspecs.after_test_epoch`."""
        self._after_epoch(runner, mode="test")

    @_noop
    def before_train_iter(self, runner: Runner, batch_idx: int, data_batch: Any = None) -> None:
        """See :func:`torchkiln.hookspecs.before_train_iter`."""
        self._before_iter(runner, batch_idx=batch_idx, data_batch=data_batch, mode="train")

    @_noop
    def after_train_iter(self, runner: Runner, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        """See :func:`torchkiln.hookspecs.after_train_iter`."""
        self._after_iter(runner, batch_idx=batch_idx, data_batch=data_batch, outputs=outputs, mode="train")

    @_noop
    def before_val_iter(self, runner: Runner, batch_idx: int, data_batch: Any = None) -> None:
        """See :func:`torchkiln.hookspecs.before_val_iter`."""
        self._before_iter(runner, batch_idx=batch_idx, data_batch=data_batch, mode="val")

    @_noop
    def after_val_iter(self, runner: Runner, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        """See :func:`torchkiln.hookspecs.after_val_iter`."""
        self._after_iter(runner, batch_idx=batch_idx, data_batch=data_batch, outputs=outputs, mode="val")

    @_noop
    def before_test_iter(self, runner: Runner, batch_idx: int, data_batch: Any = None) -> None:
        """See :func:`torchkiln.hookspecs.before_test_iter`."""
        self._before_iter(runner, batch_idx=batch_idx, data_batch=data_batch, mode="test")

    @_noop
    def after_test_iter(self, runner: Runner, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        """See :func:`torchkiln.hookspecs.after_test_iter`."""
        self._after_iter(runner, batch_idx=batch_idx, data_batch=data_batch, outputs=outputs, mode="test")

    # ------------------------------------------------------------ helpers for subclasses
    def every_n_epochs(self, runner: Runner, n: int, start: int = 0) -> bool:
        """True at the end of every ``n``-th epoch counted from epoch ``start``.

        :param runner: the runner (``runner.epoch`` finished epochs so far).
        :param n: the interval; ``n <= 0`` never triggers.
        :param start: the first epoch (0-based count) the interval counts from.
        """
        done = runner.epoch + 1 - start
        return n > 0 and done >= 0 and done % n == 0

    def every_n_inner_iters(self, batch_idx: int, n: int) -> bool:
        """True on every ``n``-th batch of the current epoch (``batch_idx`` is 0-based)."""
        return n > 0 and (batch_idx + 1) % n == 0

    def every_n_train_iters(self, runner: Runner, n: int, start: int = 0) -> bool:
        """True on every ``n``-th training iteration counted from iteration ``start``.

        :param runner: the runner (``runner.iter`` finished iterations before this one).
        :param n: the interval; ``n <= 0`` never triggers.
        :param start: the first iteration (0-based count) the interval counts from.
        """
        done = runner.iter + 1 - start
        return n > 0 and done >= 0 and done % n == 0

    def end_of_epoch(self, dataloader: Sized, batch_idx: int) -> bool:
        """True on the last batch of ``dataloader``."""
        return batch_idx + 1 == len(dataloader)

    def is_last_train_epoch(self, runner: Runner) -> bool:
        """True during the last training epoch."""
        return runner.epoch + 1 == runner.max_epochs

    def is_last_train_iter(self, runner: Runner) -> bool:
        """True during the last training iteration."""
        return runner.iter + 1 == runner.max_iters

    def get_triggered_stages(self) -> list[str]:
        """The mount points this hook implements, in lifecycle order."""
        return implemented_mount_points(self)
