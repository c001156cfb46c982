"""Per-key scalar histories in bounded rings: the pure-Python log buffer.

Same interface as ``torchkiln._native.LogBuffer`` (the Rust ring buffer), which replaces it
when the extension provides every method :data:`REQUIRED_METHODS` lists. Semantics shared by
both backends:

- ``update(key, value, count)`` appends ``value`` with weight ``count`` (``value`` is the mean
  of ``count`` samples); the ring keeps the last ``capacity`` entries; O(1).
- ``mean`` is the count-weighted mean ``sum(v * c) / sum(c)`` over the last ``window``
  entries (all retained ones when ``window`` is None); ``min``/``max``/``median`` ignore
  counts; ``current`` is the last value.
- ``global_mean`` and ``count`` cover every update ever made, not only the retained ones.
- A key that was never updated raises ``KeyError``.
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import islice
from typing import Any

__all__ = ["REQUIRED_METHODS", "PyLogBuffer"]

#: What the history views call on a backend.
REQUIRED_METHODS = (
    "update",
    "update_many",
    "update_rows",
    "current",
    "mean",
    "min",
    "max",
    "median",
    "global_mean",
    "count",
    "keys",
    "data",
    "key_state_dict",
    "load_key_state_dict",
    "state_dict",
    "load_state_dict",
)


class _Series:
    __slots__ = ("counts", "global_count", "global_sum", "values")

    def __init__(self, capacity: int) -> None:
        self.values: deque[float] = deque(maxlen=capacity)
        self.counts: deque[int] = deque(maxlen=capacity)
        self.global_sum = 0.0
        self.global_count = 0

    def last(self, window: int | None) -> tuple[Iterable[float], Iterable[int]]:
        """The last ``window`` values and counts (all when ``window`` is None)."""
        if window is None or window >= len(self.values):
            return self.values, self.counts
        if window <= 0:
            raise ValueError(f"window must be a positive int or None, got {window}")
        start = len(self.values) - window
        return islice(self.values, start, None), islice(self.counts, start, None)


class PyLogBuffer:
    """Bounded per-key scalar histories.

    :param capacity: entries kept per key (older ones only count in the global mean).
    """

    def __init__(self, capacity: int = 1000) -> None:
        if not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"capacity must be a positive int, got {capacity!r}")
        self.capacity = capacity
        self._series: dict[str, _Series] = {}

    def _get(self, key: str) -> _Series:
        try:
            return self._series[key]
        except KeyError:
            raise KeyError(key) from None

    # ------------------------------------------------------------------ updates (O(1))
    def update(self, key: str, value: float, count: int = 1) -> None:
        """Append ``value`` (the mean of ``count`` samples) to ``key``'s history."""
        if count < 0:
            raise ValueError(f"count must be a non-negative int, got {count}")
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Series(self.capacity)
        series.values.append(value)
        series.counts.append(count)
        series.global_sum += value * count
        series.global_count += count

    def update_many(self, values: Mapping[str, float], count: int = 1) -> None:
        """``update`` every ``key: value`` of a mapping with the same ``count``."""
        if count < 0:
            raise ValueError(f"count must be a non-negative int, got {count}")
        for key, value in values.items():
            self.update(key, value, count)

    def update_rows(
        self,
        rows: Iterable[tuple[str, Any, int]],
        convert: Callable[[list[Any]], Sequence[float]] | None = None,
    ) -> None:
        """``update`` each ``(key, value, count)`` row in order. Values that are not a
        ``float`` or ``int`` go, in order, as one list to ``convert``, which returns their
        numbers. Every row is checked before any is stored."""
        checked: list[tuple[str, Any, int]] = []
        others: list[Any] = []
        for key, value, count in rows:
            if type(value) not in (float, int):
                others.append(value)
                value = None
            if count < 0:
                raise ValueError(f"count must be a non-negative int, got {count}")
            checked.append((str(key), value, int(count)))
        numbers: Iterator[float] = iter(())
        if others:
            if convert is None:
                raise ValueError(
                    "update_rows: a row holds a value that is not a number and no convert was given"
                )
            converted = list(convert(others))
            if len(converted) != len(others):
                raise ValueError(
                    f"update_rows: convert returned {len(converted)} numbers for {len(others)} values"
                )
            numbers = iter(converted)
        for key, value, count in checked:
            self.update(key, float(next(numbers) if value is None else value), count)

    # ------------------------------------------------------------------ statistics
    def current(self, key: str) -> float:
        """The latest value."""
        return self._get(key).values[-1]

    def mean(self, key: str, window: int | None = None) -> float:
        """Count-weighted mean of the last ``window`` entries."""
        values, counts = self._get(key).last(window)
        total = 0.0
        weight = 0
        for value, count in zip(values, counts):
            total += value * count
            weight += count
        return total / weight if weight else float("nan")

    def min(self, key: str, window: int | None = None) -> float:
        """Smallest of the last ``window`` values."""
        return min(self._get(key).last(window)[0])

    def max(self, key: str, window: int | None = None) -> float:
        """Largest of the last ``window`` values."""
        return max(self._get(key).last(window)[0])

    def median(self, key: str, window: int | None = None) -> float:
        """Median of the last ``window`` values."""
        return float(statistics.median(self._get(key).last(window)[0]))

    def global_mean(self, key: str) -> float:
        """Count-weighted mean over every update ever made."""
        series = self._get(key)
        return series.global_sum / series.global_count if series.global_count else float("nan")

    def count(self, key: str) -> int:
        """Total count (sum of ``count`` arguments) over every update."""
        return self._get(key).global_count

    def keys(self) -> list[str]:
        """Keys in first-update order."""
        return list(self._series)

    def data(self, key: str) -> tuple[list[float], list[int]]:
        """The retained values and counts, oldest first."""
        series = self._get(key)
        return list(series.values), list(series.counts)

    # ------------------------------------------------------------------ state
    def key_state_dict(self, key: str) -> dict[str, Any]:
        """Plain-data state of one key: retained entries and global sums."""
        series = self._get(key)
        return {
            "values": list(series.values),
            "counts": list(series.counts),
            "global_sum": series.global_sum,
            "global_count": series.global_count,
        }

    def load_key_state_dict(self, key: str, state: Mapping[str, Any]) -> None:
        """Replace ``key``'s history by a :meth:`key_state_dict` (trimmed to capacity)."""
        series = _Series(self.capacity)
        series.values.extend(float(v) for v in state["values"])
        series.counts.extend(int(c) for c in state["counts"])
        series.global_sum = float(state["global_sum"])
        series.global_count = int(state["global_count"])
        self._series[key] = series

    def state_dict(self) -> dict[str, Any]:
        """Plain-data state of every key (bounded by ``capacity`` per key)."""
        return {
            "capacity": self.capacity,
            "keys": {key: self.key_state_dict(key) for key in self._series},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Replace every key's history by a :meth:`state_dict`."""
        self._series.clear()
        for key, key_state in state["keys"].items():
            self.load_key_state_dict(key, key_state)
