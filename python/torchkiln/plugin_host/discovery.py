"""Finding hook implementations on a plugin object or module, and near-miss names.

A plugin implements a mount point by having a function or method of that name; nothing is
decorated. Lookups are static (``inspect.getattr_static``), so properties and
``__getattr__`` are never run, matching what pluggy itself can bind.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable
from typing import Any, TypeVar

from torchkiln.errors import UsageError, did_you_mean
from torchkiln.hookspecs import MOUNT_POINTS

__all__ = [
    "NOOP_MARKER",
    "SPEC_ARGS",
    "closest_mount_point",
    "find_misspellings",
    "impl_function",
    "implemented_mount_points",
    "mark_noop",
    "unknown_mount_point",
]

_F = TypeVar("_F", bound=Callable[..., Any])

#: Set on the do-nothing mount-point methods of the ``Hook`` base class: an inherited
#: no-op is not an implementation, so it costs nothing at call time.
NOOP_MARKER = "_torchkiln_noop"

_MOUNT_POINT_SET = frozenset(MOUNT_POINTS)

# Public helpers of the Hook base class and common non-hook attributes: never "misspelled".
_NOT_HOOKS = frozenset(
    {
        "every_n_epochs",
        "every_n_inner_iters",
        "every_n_train_iters",
        "end_of_epoch",
        "is_last_train_epoch",
        "is_last_train_iter",
        "get_triggered_stages",
        "priority",
    }
)

# A name this many edits (insert, delete, substitute, swap) from a mount point is a typo.
_MAX_TYPO_DISTANCE = 2


def mark_noop(func: _F) -> _F:
    """Mark a base-class mount-point method as "not an implementation"."""
    setattr(func, NOOP_MARKER, True)
    return func


def _plain_function(static: object) -> Callable[..., Any] | None:
    if isinstance(static, (staticmethod, classmethod, types.MethodType)):
        static = static.__func__
    if inspect.isfunction(static):
        return static
    return None


def impl_function(plugin: object, name: str) -> Callable[..., Any] | None:
    """The function behind ``plugin.<name>`` if it implements a hook, else ``None``.

    ``None`` for a missing attribute, anything that is not a plain function, method,
    ``staticmethod`` or ``classmethod``, and for the base class no-ops.
    """
    try:
        static = inspect.getattr_static(plugin, name)
    except AttributeError:
        return None
    func = _plain_function(static)
    if func is None or getattr(func, NOOP_MARKER, False):
        return None
    return func


def implemented_mount_points(plugin: object) -> list[str]:
    """The mount points ``plugin`` implements, in lifecycle order."""
    return [name for name in MOUNT_POINTS if impl_function(plugin, name) is not None]


def _candidate_names(plugin: object) -> list[str]:
    """Public function-valued names of a plugin (only those a module defines itself)."""
    if isinstance(plugin, types.ModuleType):
        return [
            name
            for name, value in vars(plugin).items()
            if inspect.isfunction(value) and value.__module__ == plugin.__name__
        ]
    names = []
    for name in dir(plugin):
        try:
            static = inspect.getattr_static(plugin, name)
        except AttributeError:
            continue
        if _plain_function(static) is not None:
            names.append(name)
    return names


def _typo_distance(a: str, b: str) -> int:
    """Edit distance counting a swap of neighbours as one edit (optimal string alignment)."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[-1]


def closest_mount_point(name: str) -> str | None:
    """The mount point ``name`` is a typo of (1-2 edits away), or ``None``."""
    if name in _MOUNT_POINT_SET:
        return None
    best: tuple[int, str] | None = None
    for mount_point in MOUNT_POINTS:
        if abs(len(mount_point) - len(name)) > _MAX_TYPO_DISTANCE:
            continue
        distance = _typo_distance(name, mount_point)
        if distance <= _MAX_TYPO_DISTANCE and (best is None or distance < best[0]):
            best = (distance, mount_point)
    return best[1] if best else None


def find_misspellings(plugin: object) -> list[tuple[str, str]]:
    """``(name, mount_point)`` for each public function of ``plugin`` that looks like a typo.

    Private names (leading ``_``) and the ``Hook`` helper methods are never reported.
    """
    found = []
    for name in _candidate_names(plugin):
        if name.startswith("_") or name in _NOT_HOOKS:
            continue
        target = closest_mount_point(name)
        if target is not None:
            found.append((name, target))
    return found


def _spec_args() -> dict[str, tuple[str, ...]]:
    from torchkiln import hookspecs

    return {
        name: tuple(inspect.signature(getattr(hookspecs, name)).parameters) for name in MOUNT_POINTS
    }


#: The arguments of every mount point, in order (``runner`` first).
SPEC_ARGS: dict[str, tuple[str, ...]] = _spec_args()


def unknown_mount_point(name: str) -> UsageError:
    """The error for a mount point name that does not exist, with a suggestion."""
    return UsageError(
        f"unknown mount point {name!r}",
        hint=did_you_mean(name, MOUNT_POINTS) or "see torchkiln.hookspecs.MOUNT_POINTS",
    )
