"""Warn when a scheduler steps before its optimizer did, or when the optimizer's ``step`` was replaced.

A scheduler's first :meth:`step` after construction should follow an optimizer step: stepped
earlier, the first scheduled value is never used. Optimizer steps are counted by a step
post-hook on the torch optimizer (registered once per optimizer, no patching of ``step``,
and removed once every scheduler built on it has made its first step);
for an :class:`~torchkiln.optim.OptimWrapper`, a backward pass through it also counts, so an
iteration that only accumulates gradients is not taken for a misordered one. If ``step`` was
replaced on the instance after the scheduler was built, the hook may never run, so that is
warned about instead.
"""

from __future__ import annotations

import warnings
import weakref
from typing import Any

__all__ = ["order_baseline", "warn_if_stepped_first"]

_DOCS = "https://pytorch.org/docs/stable/optim.html#how-to-adjust-learning-rate"

# torch optimizer -> [completed step() calls, schedulers yet to make their first step]
_STEP_COUNTS: weakref.WeakKeyDictionary[Any, list[int]] = weakref.WeakKeyDictionary()
# torch optimizer -> the handle of its step post-hook (removed once no scheduler waits)
_HOOK_HANDLES: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def _count_step(optimizer: Any, args: Any, kwargs: Any) -> None:
    counter = _counted(optimizer)
    if counter is not None:
        counter[0] += 1


def _torch_optimizer(optimizer: Any) -> Any:
    """The torch optimizer behind ``optimizer`` (an OptimWrapper holds it as ``.optimizer``)."""
    inner = getattr(optimizer, "optimizer", None)
    return inner if inner is not None and hasattr(inner, "param_groups") else optimizer


def _counted(raw: Any) -> list[int] | None:
    try:
        return _STEP_COUNTS.get(raw)
    except TypeError:  # not weak-referenceable, so never registered
        return None


def _step_counter(raw: Any) -> list[int] | None:
    counter = _counted(raw)
    if counter is not None:
        return counter
    register = getattr(raw, "register_step_post_hook", None)
    if register is None:
        return None  # not a torch optimizer: nothing to watch
    try:
        counter = _STEP_COUNTS.setdefault(raw, [0, 0])
    except TypeError:
        return None
    _HOOK_HANDLES[raw] = register(_count_step)
    return counter


def _first_step_done(raw: Any) -> None:
    """One scheduler made its first step; with none left waiting, stop counting steps (the
    hook would otherwise run at every optimizer step of the run for nothing)."""
    counter = _counted(raw)
    if counter is None:
        return
    counter[1] -= 1
    if counter[1] <= 0:
        handle = _HOOK_HANDLES.pop(raw, None)
        if handle is not None:
            handle.remove()
        _STEP_COUNTS.pop(raw, None)


def _step_replaced(optimizer: Any) -> bool:
    raw = _torch_optimizer(optimizer)
    return "step" in vars(raw) or (optimizer is not raw and "step" in vars(optimizer))


def order_baseline(optimizer: Any) -> dict[str, int] | None:
    """Counts at scheduler construction, to compare with at its first step (plain ints).

    :param optimizer: the OptimWrapper or torch optimizer the scheduler drives.
    :returns: None when the optimizer cannot be watched (no step hooks).
    """
    counter = _step_counter(_torch_optimizer(optimizer))
    if counter is None:
        return None
    counter[1] += 1
    return {
        "steps": counter[0],
        "backward": int(getattr(optimizer, "inner_count", 0) or 0),
        "replaced": int(_step_replaced(optimizer)),
    }


def warn_if_stepped_first(optimizer: Any, baseline: dict[str, int] | None, owner: str) -> None:
    """Warn (``UserWarning``) when the optimizer has not stepped since ``baseline``.

    :param optimizer: the OptimWrapper or torch optimizer the scheduler drives.
    :param baseline: what :func:`order_baseline` returned when the scheduler was built.
    :param owner: the scheduler's class name, for the message.
    """
    if baseline is None:
        return
    raw = _torch_optimizer(optimizer)
    try:
        _check_order(optimizer, raw, baseline, owner)
    finally:
        _first_step_done(raw)


def _check_order(optimizer: Any, raw: Any, baseline: dict[str, int], owner: str) -> None:
    if _step_replaced(optimizer) and not baseline["replaced"]:
        warnings.warn(
            f"the step() of {type(raw).__name__} was replaced after {owner} was created, so "
            f"the scheduler cannot check that the optimizer steps first; call optimizer.step() "
            f"before scheduler.step() (see {_DOCS})",
            UserWarning,
            stacklevel=4,
        )
        return
    counter = _counted(raw)
    steps = counter[0] if counter is not None else 0
    backward = int(getattr(optimizer, "inner_count", 0) or 0)
    if steps <= baseline["steps"] and backward <= baseline["backward"]:
        warnings.warn(
            f"{owner}.step() was called before the optimizer's step(), so the schedule's "
            f"first value was never used; call optimizer.step() (or "
            f"optim_wrapper.update_params(loss)) before scheduler.step() (see {_DOCS})",
            UserWarning,
            stacklevel=4,
        )
