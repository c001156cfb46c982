"""Per-key scalar histories in bounded rings: the pure-Python log buffer.

Same interface and behaviour as ``torchkiln._native.LogBuffer`` (the Rust ring buffer), which
replaces it when the extension provides every method :data:`REQUIRED_METHODS` lists. The two
agree on every input: the same results, and the same exception type for the same bad input
(a property test runs identical operation sequences against both). Semantics:

- ``update(key, value, count)`` appends ``value`` with its ``count``: the value is the *sum*
  of ``count`` samples (one sample when ``count`` is 1); the ring keeps the last ``capacity``
  entries; O(1). ``count`` is an int from 0 to ``2**63 - 1``; running counts saturate there.
- ``mean`` is the mean per sample ``sum(v) / sum(c)`` over the last ``window`` entries (all
  retained ones when ``window`` is None; NaN when the counts sum to 0); ``min``/``max``/
  ``median`` ignore counts and NaN values sort as Rust's total order puts them;
  ``current`` is the last value.
- ``global_mean`` and ``count`` cover every update ever made, not only the retained ones.
- A key that was never updated raises ``KeyError``; a window below 1, a negative count or an
  invalid state raises ``ValueError``; arguments of the wrong type raise ``TypeError`` (and
  ints beyond 64 bits ``OverflowError``), as the Rust binding's argument conversion does.
"""

from __future__ import annotations

import math
import operator
import struct
from collections import abc, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
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
    "__getstate__",
    "__setstate__",
)

_I64_MIN = -(2**63)
_I64_MAX = 2**63 - 1
_NAN = float("nan")
_KEY_STATE_FIELDS = ("values", "counts", "global_sum", "global_count")


# ---------------------------------------------------------------------- argument conversion
# These mirror how the Rust binding converts its arguments, so both backends reject the same
# inputs with the same exception types.


def _as_key(key: Any) -> str:
    if not isinstance(key, str):
        raise TypeError(f"a log buffer key must be a str, got {type(key).__name__}")
    return key


def _as_float(value: Any) -> float:
    """A float as ``PyFloat_AsDouble`` makes one: floats, ``__float__`` or ``__index__``."""
    if type(value) is float:
        return value
    kind = type(value)
    if hasattr(kind, "__float__"):
        return float(value)
    if hasattr(kind, "__index__"):
        return float(operator.index(value))
    raise TypeError(f"must be a real number, not {kind.__name__}")


def _as_i64(value: Any) -> int:
    """A 64-bit int from an int-like value (``__index__``; floats are refused)."""
    number = operator.index(value)
    if not _I64_MIN <= number <= _I64_MAX:
        raise OverflowError(f"{number} does not fit a 64-bit signed int")
    return number


def _as_window(window: Any) -> int | None:
    return None if window is None else _as_i64(window)


def _as_list(obj: Any, convert: Callable[[Any], Any]) -> list[Any]:
    """A list from a sequence (a list, tuple or other ``Sequence``; never a str)."""
    if isinstance(obj, str):
        raise TypeError("cannot read a str as a sequence of numbers")
    if not isinstance(obj, (list, tuple, abc.Sequence)):
        raise TypeError(f"expected a sequence, got {type(obj).__name__}")
    return [convert(item) for item in obj]


def _check_count(count: int) -> None:
    if count < 0:
        raise ValueError(f"count must be a non-negative int, got {count}")


def _saturating_add(a: int, b: int) -> int:
    return min(a + b, _I64_MAX)  # counts are never negative


# ---------------------------------------------------------------------- float ordering
_PAIRWISE_BLOCK = 128


def pairwise_sum(values: Sequence[float]) -> float:
    """The sum of ``values`` in numpy's pairwise order (``numpy.sum`` of a float64 array),
    as the Rust buffer adds them: under 8 values in order; up to 128, eight interleaved
    partial sums combined as a balanced tree, then the rest in order; longer runs split in
    two halves (the first a multiple of 8) summed recursively."""
    n = len(values)
    if n < 8:
        total = 0.0
        for value in values:
            total += value
        return total
    if n <= _PAIRWISE_BLOCK:
        r = list(values[:8])
        whole = n - n % 8
        for i in range(8, whole, 8):
            for j in range(8):
                r[j] += values[i + j]
        total = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
        for value in values[whole:]:
            total += value
        return total
    half = n // 2
    half -= half % 8
    return pairwise_sum(values[:half]) + pairwise_sum(values[half:])


def _fmin(a: float, b: float) -> float:
    """``f64::min``: NaN loses to a number."""
    if a != a:
        return b
    if b != b:
        return a
    return b if b < a else a


def _fmax(a: float, b: float) -> float:
    """``f64::max``: NaN loses to a number."""
    if a != a:
        return b
    if b != b:
        return a
    return b if b > a else a


def _total_order(x: float) -> int:
    """A sort key giving IEEE 754 total order (``f64::total_cmp``): -NaN < -inf < ... < NaN."""
    bits: int = struct.unpack("<q", struct.pack("<d", x))[0]
    return bits ^ _I64_MAX if bits < 0 else bits


# ---------------------------------------------------------------------- storage
def _tail(ring: deque[Any], n: int) -> list[Any]:
    """The last ``n`` items of ``ring``, oldest first, read from the right end: O(n)."""
    if n >= len(ring):
        return list(ring)
    items = list(islice(reversed(ring), n))
    items.reverse()
    return items


class _Series:
    __slots__ = ("counts", "global_count", "global_sum", "values")

    def __init__(self, capacity: int) -> None:
        self.values: deque[float] = deque(maxlen=capacity)
        self.counts: deque[int] = deque(maxlen=capacity)
        self.global_sum = 0.0
        self.global_count = 0

    def push(self, value: float, count: int) -> None:
        self.values.append(value)
        self.counts.append(count)
        self.global_sum += value
        total = self.global_count + count
        self.global_count = total if total <= _I64_MAX else _I64_MAX

    def start(self, window: int | None) -> int:
        """Index of the first of the last ``window`` entries."""
        if window is None:
            return 0
        if window < 1:
            raise ValueError(f"window must be a positive int or None, got {window}")
        return max(len(self.values) - window, 0)

    def window(self, window: int | None) -> list[float]:
        """The last ``window`` values, oldest first."""
        return _tail(self.values, len(self.values) - self.start(window))

    def window_counts(self, window: int | None) -> list[int]:
        """The counts of the last ``window`` entries, oldest first."""
        return _tail(self.counts, len(self.counts) - self.start(window))

    def state(self) -> dict[str, Any]:
        return {
            "values": list(self.values),
            "counts": list(self.counts),
            "global_sum": self.global_sum,
            "global_count": self.global_count,
        }


def _series_from_state(key: str, state: Any, capacity: int) -> _Series:
    """Read and check one key's state; the newest ``capacity`` entries are kept."""
    fields: dict[str, Any] = {}
    converters: dict[str, Callable[[Any], Any]] = {
        "values": lambda v: _as_list(v, _as_float),
        "counts": lambda v: _as_list(v, _as_i64),
        "global_sum": _as_float,
        "global_count": _as_i64,
    }
    for name in _KEY_STATE_FIELDS:
        try:
            raw = state[name]
        except Exception:
            raise ValueError(f"log buffer state is missing '{name}'") from None
        fields[name] = converters[name](raw)
    values, counts = fields["values"], fields["counts"]
    if len(values) != len(counts):
        raise ValueError(
            f"invalid log buffer state: '{key}' has {len(values)} values but {len(counts)} counts"
        )
    for count in [*counts, fields["global_count"]]:
        if count < 0:
            raise ValueError(f"invalid log buffer state: '{key}' has a negative count {count}")
    series = _Series(capacity)
    series.values.extend(values)  # the deque keeps the newest `capacity`
    series.counts.extend(counts)
    series.global_sum = fields["global_sum"]
    series.global_count = fields["global_count"]
    return series


class PyLogBuffer:
    """Bounded per-key scalar histories.

    :param capacity: entries kept per key (older ones only count in the global statistics).
    """

    def __init__(self, capacity: int = 1024) -> None:
        capacity = _as_i64(capacity)
        if capacity < 1:
            raise ValueError(f"capacity must be a positive int, got {capacity}")
        self._capacity = capacity
        self._series: dict[str, _Series] = {}

    @property
    def capacity(self) -> int:
        """Entries kept per key."""
        return self._capacity

    def _get(self, key: Any) -> _Series:
        series = self._series.get(_as_key(key))
        if series is None:
            raise KeyError(key)
        return series

    def _lookup(self, key: Any, window: Any) -> tuple[_Series, int | None]:
        """Arguments converted in order (key, then window), then the key looked up."""
        key, window = _as_key(key), _as_window(window)
        return self._get(key), window

    def _push(self, key: str, value: float, count: int) -> None:
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Series(self._capacity)
        series.push(value, count)

    # ------------------------------------------------------------------ updates (O(1))
    def update(self, key: str, value: float, count: int = 1) -> None:
        """Append ``value`` (the sum of ``count`` samples) to ``key``'s history."""
        if not (type(key) is str and type(value) is float and type(count) is int):
            key, value, count = _as_key(key), _as_float(value), _as_i64(count)
        if not 0 <= count <= _I64_MAX:
            _as_i64(count)  # OverflowError beyond 64 bits, as the binding raises
            _check_count(count)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Series(self._capacity)
        series.push(value, count)

    def update_many(self, values: Mapping[str, float], count: int = 1) -> None:
        """``update`` every ``key: value`` of a mapping with the same ``count``."""
        count = _as_i64(count)
        _check_count(count)
        if not isinstance(values, (dict, abc.Mapping)):
            raise TypeError(f"update_many takes a mapping, got {type(values).__name__}")
        items = values.items() if isinstance(values, dict) else list(values.items())
        for key, value in items:
            if type(key) is not str or type(value) is not float:
                key, value = _as_key(key), _as_float(value)
            self._push(key, value, count)

    def update_rows(
        self,
        rows: Iterable[tuple[str, Any, int]],
        convert: Callable[[list[Any]], Sequence[float]] | None = None,
    ) -> None:
        """``update`` each ``(key, value, count)`` row in order. Values that are not a
        ``float`` or ``int`` go, in order, as one list to ``convert``, which returns their
        numbers. Every row is checked before any is stored."""
        checked: list[tuple[str, float | None, int]] = []
        others: list[Any] = []
        for row in rows:
            if not isinstance(row, tuple):
                raise TypeError(f"a row is a (key, value, count) tuple, got {type(row).__name__}")
            if len(row) != 3:
                raise ValueError(f"a row is (key, value, count), got {len(row)} items")
            key = _as_key(row[0])
            raw = row[1]
            value: float | None
            if type(raw) is float or type(raw) is int:
                value = _as_float(raw)
            else:
                others.append(raw)
                value = None
            count = _as_i64(row[2])
            _check_count(count)
            checked.append((key, value, count))
        numbers: list[float] = []
        if others:
            if convert is None:
                raise ValueError(
                    "update_rows: a row holds a value that is not a number and no convert was given"
                )
            numbers = _as_list(convert(others), _as_float)
            if len(numbers) != len(others):
                raise ValueError(
                    f"update_rows: convert returned {len(numbers)} numbers for {len(others)} values"
                )
        converted = iter(numbers)
        for key, value, count in checked:
            self._push(key, next(converted) if value is None else value, count)

    # ------------------------------------------------------------------ statistics
    def current(self, key: str) -> float:
        """The latest value (NaN for a history loaded empty)."""
        values = self._get(key).values
        return values[-1] if values else _NAN

    def mean(self, key: str, window: int | None = None) -> float:
        """Mean per sample of the last ``window`` entries: ``sum(v) / sum(c)``."""
        series, window = self._lookup(key, window)
        total = pairwise_sum(list(series.window(window)))
        weight = min(sum(series.window_counts(window)), _I64_MAX)  # counts are >= 0
        return total / float(weight) if weight else _NAN

    def min(self, key: str, window: int | None = None) -> float:
        """Smallest of the last ``window`` values (NaN values are skipped)."""
        series, window = self._lookup(key, window)
        result = math.inf
        for value in series.window(window):
            result = _fmin(result, value)
        return result

    def max(self, key: str, window: int | None = None) -> float:
        """Largest of the last ``window`` values (NaN values are skipped)."""
        series, window = self._lookup(key, window)
        result = -math.inf
        for value in series.window(window):
            result = _fmax(result, value)
        return result

    def median(self, key: str, window: int | None = None) -> float:
        """Median of the last ``window`` values (the mean of the middle two for an even
        number; NaN when there is none)."""
        series, window = self._lookup(key, window)
        values = series.window(window)
        if not values:
            return _NAN
        if math.isnan(sum(values)):  # NaNs (or infinities of both signs): total order
            values.sort(key=_total_order)
        else:  # numbers only: the usual order agrees with the total order up to the sign of 0
            values.sort()
        mid = len(values) // 2
        return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2.0

    def global_mean(self, key: str) -> float:
        """Mean per sample over every update ever made."""
        series = self._get(key)
        return series.global_sum / float(series.global_count) if series.global_count else _NAN

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
        return self._get(key).state()

    def load_key_state_dict(self, key: str, state: Mapping[str, Any]) -> None:
        """Replace ``key``'s history by a :meth:`key_state_dict` (trimmed to capacity)."""
        key = _as_key(key)
        self._series[key] = _series_from_state(key, state, self._capacity)

    def state_dict(self) -> dict[str, Any]:
        """Plain-data state of every key (bounded by ``capacity`` per key)."""
        return {
            "capacity": self._capacity,
            "keys": {key: series.state() for key, series in self._series.items()},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Replace every key's history by a :meth:`state_dict`; nothing changes if the state
        is invalid."""
        try:
            keys = state["keys"]
        except Exception:
            raise ValueError("log buffer state is missing 'keys'") from None
        if not isinstance(keys, (dict, abc.Mapping)):
            raise TypeError(f"log buffer state 'keys' must be a mapping, got {type(keys).__name__}")
        fresh: dict[str, _Series] = {}
        for key, key_state in list(keys.items()):
            key = _as_key(key)
            fresh[key] = _series_from_state(key, key_state, self._capacity)
        self._series = fresh

    def clear(self) -> None:
        """Forget every key."""
        self._series.clear()

    # ------------------------------------------------------------------ pickling
    def __getnewargs__(self) -> tuple[int]:
        return (self._capacity,)

    def __getstate__(self) -> dict[str, Any]:
        """The whole buffer as a :meth:`state_dict` (exact)."""
        return self.state_dict()

    def __setstate__(self, state: Mapping[str, Any]) -> None:
        """Replace everything, capacity included, by a :meth:`__getstate__` result."""
        try:
            raw = state["capacity"]
        except Exception:
            raise ValueError("log buffer state is missing 'capacity'") from None
        capacity = _as_i64(raw)
        if capacity < 1:
            raise ValueError(f"capacity must be a positive int, got {capacity}")
        previous = self.__dict__.get("_capacity"), self.__dict__.get("_series")
        self._capacity, self._series = capacity, {}
        try:
            self.load_state_dict(state)
        except BaseException:
            if previous[0] is not None:
                self._capacity, self._series = previous  # type: ignore[assignment]
            raise

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key in self._series

    def __len__(self) -> int:
        return len(self._series)

    def __repr__(self) -> str:
        return f"PyLogBuffer(capacity={self._capacity}, keys={len(self._series)})"
