"""The ``Hook`` base class: a plain class whose methods named after mount points are hooks.

A subclass overrides any mount point of :mod:`torchkiln.hookspecs` (which says when each is
called) by defining a method of that name; no decorator is needed, so MMEngine hooks port
unchanged. The base class has one method per hookspec, made from the hookspec when this
module is imported; they do nothing and are marked, so the plugin host skips every method a
subclass did not override: a hook costs nothing at the mount points it does not implement.
They exist so that ``super().after_train_iter(...)`` works as in MMEngine.

As in MMEngine, the twelve epoch and iteration mount points of the base class hand over to
four generic methods, ``_before_epoch``, ``_after_epoch``, ``_before_iter`` and
``_after_iter``, with ``mode`` set to ``"train"``, ``"val"`` or ``"test"``. A subclass that
overrides a generic method gets the matching mode-specific methods it does not override
itself, generated when the class is created, so hooks written that way run unchanged.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Sized
from typing import TYPE_CHECKING, Any

from torchkiln.hookspecs import MOUNT_POINTS
from torchkiln.plugin_host.discovery import (
    SPEC_ARGS,
    impl_function,
    implemented_mount_points,
    mark_noop,
)
from torchkiln.plugin_host.priority import PRIORITIES, get_priority, priority_label

if TYPE_CHECKING:  # pragma: no cover
    from torchkiln.runner import Runner

__all__ = ["PRIORITIES", "Hook", "get_priority", "priority_label"]

# before_train_epoch -> ("_before_epoch", "train"): the generic method and its mode.
_EPOCH_OR_ITER = re.compile(r"(before|after)_(train|val|test)_(epoch|iter)")


def _generic_of(mount_point: str) -> tuple[str, str] | None:
    """The generic method a mount point hands over to, and the mode; None for the others."""
    match = _EPOCH_OR_ITER.fullmatch(mount_point)
    return (f"_{match[1]}_{match[3]}", match[2]) if match else None


def _mount_point_method(mount_point: str) -> Callable[..., None]:
    """A method taking ``mount_point``'s arguments (as the hookspec names them; all but
    ``runner`` default to ``None``) that hands over to the generic method, if there is one,
    and otherwise does nothing."""
    params = SPEC_ARGS[mount_point]
    generic = _generic_of(mount_point)

    def method(self: Hook, *args: Any, **kwargs: Any) -> None:
        if generic is None:
            return
        name, mode = generic
        values = dict(zip(params, args), **kwargs)
        # The generic methods take the mount point's arguments but ``metrics``, runner first.
        passed = {key: values.get(key) for key in params[1:] if key != "metrics"}
        getattr(self, name)(values.get("runner"), **passed, mode=mode)

    method.__name__ = mount_point
    method.__doc__ = f"See :func:`torchkiln.hookspecs.{mount_point}`."
    method.__signature__ = inspect.Signature(  # type: ignore[attr-defined]  # read by inspect
        [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        + [
            inspect.Parameter(
                name,
                inspect.Parameter.POSITIONAL_OR_KEYWORD,
                default=inspect.Parameter.empty if name == "runner" else None,
            )
            for name in params
        ]
    )
    return method


#: The generic methods the epoch and iteration mount points hand over to.
_GENERIC: frozenset[str] = frozenset(g[0] for g in map(_generic_of, MOUNT_POINTS) if g is not None)


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
        for name in MOUNT_POINTS:
            generic = _generic_of(name)
            if generic is None or not inspect.isfunction(cls.__dict__.get(generic[0])):
                continue
            if impl_function(cls, name) is None:
                method = _mount_point_method(name)
                method.__qualname__ = f"{cls.__qualname__}.{name}"
                method.__module__ = cls.__module__
                method.__doc__ = f"Calls ``self.{generic[0]}(..., mode={generic[1]!r})``."
                setattr(cls, name, method)

    # ------------------------------------------------------------ generic methods (no-ops)
    def _before_epoch(self, runner: Runner, mode: str = "train") -> None:
        """Called before every epoch of ``mode`` (``"train"``, ``"val"`` or ``"test"``)."""

    def _after_epoch(self, runner: Runner, mode: str = "train") -> None:
        """Called after every epoch of ``mode``."""

    def _before_iter(
        self, runner: Runner, batch_idx: int, data_batch: Any = None, mode: str = "train"
    ) -> None:
        """Called before every iteration of ``mode``."""

    def _after_iter(
        self,
        runner: Runner,
        batch_idx: int,
        data_batch: Any = None,
        outputs: Any = None,
        mode: str = "train",
    ) -> None:
        """Called after every iteration of ``mode``."""

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


# The base class's mount points: one marked no-op per hookspec.
for _name in MOUNT_POINTS:
    _method = mark_noop(_mount_point_method(_name))
    _method.__qualname__ = f"Hook.{_name}"
    setattr(Hook, _name, _method)
del _name, _method
