"""Hook priorities: MMEngine's names and values, or any int from 0 (first) to 100 (last)."""

from __future__ import annotations

from enum import Enum

from torchkiln.errors import ConfigError, did_you_mean

__all__ = [
    "PRIORITIES",
    "Priority",
    "PriorityRangeError",
    "PriorityTypeError",
    "get_priority",
    "priority_label",
]


class Priority(Enum):
    """The named hook priorities (MMEngine's enum): ``Priority.NORMAL.value == 50``."""

    HIGHEST = 0
    VERY_HIGH = 10
    HIGH = 30
    ABOVE_NORMAL = 40
    NORMAL = 50
    BELOW_NORMAL = 60
    LOW = 70
    VERY_LOW = 90
    LOWEST = 100


PRIORITIES: dict[str, int] = {member.name: member.value for member in Priority}

_LABELS: dict[int, str] = {value: name for name, value in PRIORITIES.items()}


class PriorityRangeError(ConfigError, ValueError):
    """A numeric hook priority outside ``0..100`` (also a ``ValueError``, as in MMEngine)."""


class PriorityTypeError(ConfigError, TypeError):
    """A hook priority that is neither a name, a :class:`Priority` nor an int."""


def get_priority(priority: int | str | Enum, where: str | None = None) -> int:
    """Return the numeric priority of a name (``'HIGH'``, case-insensitive), a
    :class:`Priority` member or an int.

    :param priority: a name from :data:`PRIORITIES`, a :class:`Priority` or an int in
        ``0..100``; lower runs first.
    :param where: what the priority belongs to, for the error message.
    :raises ConfigError: for an unknown name or an int out of range.
    """
    if isinstance(priority, Priority):
        return priority.value
    if isinstance(priority, int) and not isinstance(priority, bool):
        if 0 <= priority <= 100:
            return priority
        raise PriorityRangeError(
            f"hook priority must be between 0 and 100, got {priority}",
            where=where,
            hint="0 runs first, 100 last; NORMAL is 50",
        )
    if isinstance(priority, str):
        value = PRIORITIES.get(priority.upper())
        if value is not None:
            return value
        raise ConfigError(
            f"unknown hook priority {priority!r}",
            where=where,
            hint=" ".join(
                filter(
                    None,
                    [
                        did_you_mean(priority.upper(), PRIORITIES),
                        "valid names: " + ", ".join(PRIORITIES) + ", or an int in 0..100",
                    ],
                )
            ),
        )
    raise PriorityTypeError(
        "hook priority must be an integer or Priority enum value (a name or an int), got "
        f"{type(priority).__name__} {priority!r}",
        where=where,
        hint="valid names: " + ", ".join(PRIORITIES),
    )


def priority_label(priority: int) -> str:
    """The name of a numeric priority (``50`` -> ``'NORMAL'``), or the number itself."""
    return _LABELS.get(priority, str(priority))
