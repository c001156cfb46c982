"""``HistoryBuffer``: the scalar history of one key, without host-device syncs on update.

The numbers live in a log buffer (the Rust ``torchkiln._native.LogBuffer`` when the
extension provides it, else :class:`~torchkiln.logging._py_log_buffer.PyLogBuffer`); a
``HistoryBuffer`` is a view of one key in it, so its interface does not depend on the
backend.

Tensors are not read when they arrive. ``update(tensor)`` keeps the detached tensor in a
pending queue shared by every key of the buffer; the first statistic read afterwards (at a
log interval) converts every pending tensor at once, with one ``torch.stack(...).tolist()``
per device and dtype (CPU tensors, which need no synchronisation, are read one by one,
which is cheaper), and stores the whole queue with one call into the log buffer: one
synchronisation per log interval instead of one per iteration per key. Numbers that arrive
while tensors wait are queued behind them (so each key keeps its order). The queue is
converted when it reaches :func:`pending_limit` entries, so memory stays bounded even if
nothing reads.
"""

from __future__ import annotations

import numbers
import reprlib
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

from torchkiln.logging._py_log_buffer import REQUIRED_METHODS, PyLogBuffer

__all__ = [
    "DEFAULT_MAX_LENGTH",
    "HistoryBuffer",
    "LogArgumentError",
    "LogTypeError",
    "as_count",
    "check_count",
    "new_log_buffer",
    "pending_limit",
]

#: Entries the message hub keeps per key by default; windows larger than this are clamped.
DEFAULT_MAX_LENGTH = 1000

#: Entries a stand-alone :class:`HistoryBuffer` keeps by default (MMEngine's default; the
#: ring grows with use, so an unused capacity costs nothing).
STANDALONE_MAX_LENGTH = 1_000_000


class LogArgumentError(ValueError, AssertionError):
    """A bad value given to a scalar history or the message hub.

    Also an ``AssertionError``: MMEngine asserts at these points, so code written against it
    catches it as well.
    """


class LogTypeError(TypeError, ValueError, AssertionError):
    """A value of the wrong type given to a scalar history or the message hub.

    A ``TypeError`` (MMEngine raises one, or asserts, at these points) that is also a
    ``ValueError``, which torchkiln raised here before.
    """


_PLAIN = (int, float)


def new_log_buffer(capacity: int = DEFAULT_MAX_LENGTH) -> Any:
    """A log buffer with ``capacity`` entries per key: native when available, else Python."""
    native_cls: Any
    try:
        from torchkiln import _native

        native_cls = getattr(_native, "LogBuffer", None)
    except ImportError:
        native_cls = None
    if native_cls is not None and all(hasattr(native_cls, name) for name in REQUIRED_METHODS):
        return native_cls(capacity)
    return PyLogBuffer(capacity)


def as_count(count: Any) -> int:
    """``count`` as an int: an int (numpy ints too) or a float with an integral value.

    :raises ValueError: a negative or fractional count, or one that is not a number.
    """
    bad = f"count must be a non-negative int, got {reprlib.repr(count)}"
    if type(count) is int:
        number = count
    elif isinstance(count, numbers.Integral) and not isinstance(count, bool):
        number = int(count)
    elif isinstance(count, numbers.Real) and not isinstance(count, bool):
        whole = float(count)
        if not whole.is_integer():
            raise ValueError(bad)
        number = int(whole)
    else:
        raise ValueError(bad)
    if number < 0:
        raise ValueError(bad)
    return number


def check_count(count: Any) -> None:
    """Raise ``ValueError`` unless ``count`` is a non-negative int (see :func:`as_count`)."""
    as_count(count)


def pending_limit(max_length: int) -> int:
    """Entries the pending queue of a buffer with ``max_length`` entries per key may hold."""
    return max(4 * max_length, 4096)


def _to_python(value: Any) -> Any:
    """A Python number as is; a tensor detached and 0-d (no sync); anything else ``float()``."""
    if type(value) in _PLAIN:
        return value
    if hasattr(value, "detach"):  # a torch.Tensor: shape checks read metadata only
        if value.ndim:  # stored 0-d, so a read stacks them without reshaping each
            if value.numel() != 1:
                raise LogTypeError(
                    f"a logged scalar must have exactly one element, got shape {tuple(value.shape)}"
                )
            value = value.reshape(())
        return value.detach() if value.requires_grad else value  # detach() costs a new tensor
    size = getattr(value, "size", None)
    if isinstance(size, int) and hasattr(value, "dtype"):  # a numpy array or numpy scalar
        if size != 1:
            raise LogTypeError(f"a logged scalar must have exactly one element, got {size}")
        value = value.item()  # float() refuses a 1-d array on recent numpy
    try:
        return float(value)
    except (TypeError, ValueError):
        raise LogTypeError(
            f"a logged scalar must be a number or a one-element tensor, got {type(value).__name__}"
        ) from None


class _Pending:
    """Values waiting to enter the log buffer, every key in one queue, in arrival order.

    ``entries`` is a list of ``(key, value, count)``; appending to it is the whole cost of a
    queued update. It is converted and stored at the first read, or when it holds ``limit``
    entries (memory stays bounded even if nothing reads).
    """

    __slots__ = ("entries", "limit", "store")

    def __init__(self, store: Any, limit: int) -> None:
        self.store = store
        self.limit = limit
        self.entries: list[tuple[str, Any, int]] = []

    def put(self, key: str, value: Any, count: int) -> None:
        """Record a number or a 0-d tensor: a number is stored at once unless values wait
        (then it queues behind them, so every key keeps its order); a tensor is queued."""
        entries = self.entries
        if not entries and type(value) in _PLAIN:
            self.store.update(key, float(value), count)
            return
        entries.append((key, value, count))
        if len(entries) >= self.limit:
            self.flush()

    def flush(self) -> None:
        """Convert every pending tensor (see :func:`_to_floats`) and store all."""
        if not self.entries:
            return
        entries = self.entries[:]
        self.entries.clear()  # in place: callers may hold the list
        self.store.update_rows(entries, _to_floats)

    def __getstate__(self) -> tuple[Any, int]:
        self.flush()  # a pickle holds numbers, never device tensors
        return self.store, self.limit

    def __setstate__(self, state: tuple[Any, int]) -> None:
        self.store, self.limit = state
        self.entries = []


def _to_floats(tensors: list[Any]) -> list[float]:
    """The values of 0-d tensors, in order.

    CPU tensors are read one by one: ``item()`` waits for nothing there, and stacking would
    cost a view per tensor (about 6,000 machine instructions each, against 2,000 for
    ``item()``). Tensors on other devices go through :func:`_read_batched`, so each device
    synchronises once.
    """
    values: list[float] = []
    for t in tensors:
        if not t.is_cpu:
            return _read_batched(tensors)
        values.append(t.item())
    return values


def _read_batched(tensors: list[Any]) -> list[float]:
    """The values of 0-d tensors, in order: one ``stack().tolist()`` per device and dtype."""
    torch = sys.modules["torch"]  # tensors exist, so torch is imported
    dtype = tensors[0].dtype
    if all(t.dtype is dtype for t in tensors):
        try:
            return torch.stack(tensors).tolist()  # the usual case: one device, one dtype
        except RuntimeError:  # several devices
            pass
    groups: dict[tuple[Any, Any], list[int]] = {}
    for i, t in enumerate(tensors):
        groups.setdefault((t.device, t.dtype), []).append(i)
    values = [0.0] * len(tensors)
    for positions in groups.values():
        for i, value in zip(positions, torch.stack([tensors[i] for i in positions]).tolist()):
            values[i] = value
    return values


def _window(window_size: int | None, window: int | None) -> int | None:
    return window_size if window is None else window


class HistoryBuffer:
    """Bounded history of one scalar: window statistics, global mean and count.

    Each entry is a value and its count: the value is the *sum* of ``count`` samples (one
    sample when the count is 1, the usual case), so :meth:`mean` is ``sum(values) /
    sum(counts)``, the mean per sample, as in MMEngine.

    :param log_history: initial values (oldest first).
    :param count_history: their counts (default 1 each).
    :param max_length: entries kept; older ones only count in :attr:`global_mean`.

    Statistics take ``window_size`` (``window`` is accepted too): the last that many
    entries, or every retained entry when ``None``. More statistics can be added with
    :meth:`register_statistics` and called by name with :meth:`statistics`.
    """

    __slots__ = ("_key", "_pending", "_store")

    #: Statistics callable by name: ``name -> function(buffer, *args, **kwargs)``.
    _statistics_methods: ClassVar[dict[str, Callable[..., Any]]] = {}

    def __init__(
        self,
        log_history: Iterable[Any] = (),
        count_history: Iterable[Any] | None = None,
        max_length: int = STANDALONE_MAX_LENGTH,
    ) -> None:
        store = new_log_buffer(max_length)
        self._bind(store, "value", _Pending(store, pending_limit(max_length)))
        values = list(log_history)
        counts = list(count_history) if count_history is not None else [1] * len(values)
        if len(counts) != len(values):
            raise LogArgumentError(
                f"log_history has {len(values)} values but count_history {len(counts)}"
            )
        for value, count in zip(values[-max_length:], counts[-max_length:]):
            self.update(value, count)

    def _bind(self, store: Any, key: str, pending: _Pending) -> None:
        self._store = store
        self._key = key
        self._pending = pending

    @classmethod
    def _view(cls, store: Any, key: str, pending: _Pending) -> HistoryBuffer:
        """A view of ``key`` in a shared store (how :class:`MessageHub` makes its buffers)."""
        view = cls.__new__(cls)
        view._bind(store, key, pending)
        return view

    @property
    def max_length(self) -> int:
        """Entries kept (the capacity of the ring)."""
        return int(self._store.capacity)

    # ------------------------------------------------------------------ updates
    def update(self, value: Any, count: Any = 1) -> None:
        """Record ``value``: a number or a one-element tensor, the sum of ``count`` samples.

        Never synchronises with the device: tensors are converted when a statistic is read.

        :raises LogTypeError: ``value`` is not a number or a one-element tensor.
        :raises ValueError: ``count`` is negative or not a whole number.
        """
        if type(count) is not int or count < 0:
            count = as_count(count)
        self._pending.put(self._key, _to_python(value), count)

    @property
    def ready(self) -> bool:
        """Whether reading a statistic now is free: no tensor waits for conversion in the
        shared store (so the read cannot synchronise with a device). True right after a
        log interval's read, until the next tensor arrives."""
        return not self._pending.entries

    def _ready(self) -> Any:
        if self._pending.entries:
            self._pending.flush()
        return self._store

    def _empty(self) -> ValueError:
        return ValueError(f"no value was logged for {self._key!r} yet")

    # ------------------------------------------------------------------ named statistics
    @classmethod
    def register_statistics(cls, method: Callable[..., Any]) -> Callable[..., Any]:
        """Decorator: make ``method(buffer, *args, **kwargs)`` callable by its name through
        :meth:`statistics` on every buffer; returns ``method`` unchanged.

        :raises LogArgumentError: a statistic of that name exists already.
        """
        name = method.__name__
        if name in cls._statistics_methods:
            raise LogArgumentError(
                f"a statistic named {name!r} is registered already; choose another name"
            )
        cls._statistics_methods[name] = method
        return method

    def statistics(self, method_name: str, *args: Any, **kwargs: Any) -> Any:
        """Call the statistic ``method_name`` (``mean``, ``min``, ``max``, ``median``,
        ``current`` or a registered one) with ``args`` and ``kwargs``.

        :raises KeyError: no statistic has that name.
        """
        method = self._statistics_methods.get(method_name)
        if method is None:
            known = ", ".join(sorted(self._statistics_methods))
            raise KeyError(f"no statistic named {method_name!r}; registered: {known}")
        return method(self, *args, **kwargs)

    # ------------------------------------------------------------------ statistics
    def current(self) -> float:
        """The latest value."""
        try:
            return self._ready().current(self._key)
        except KeyError:
            raise self._empty() from None

    def mean(self, window_size: int | None = None, *, window: int | None = None) -> float:
        """Count-weighted mean of the last ``window_size`` entries."""
        try:
            return self._ready().mean(self._key, _window(window_size, window))
        except KeyError:
            raise self._empty() from None

    def min(self, window_size: int | None = None, *, window: int | None = None) -> float:
        """Smallest of the last ``window_size`` values."""
        try:
            return self._ready().min(self._key, _window(window_size, window))
        except KeyError:
            raise self._empty() from None

    def max(self, window_size: int | None = None, *, window: int | None = None) -> float:
        """Largest of the last ``window_size`` values."""
        try:
            return self._ready().max(self._key, _window(window_size, window))
        except KeyError:
            raise self._empty() from None

    def median(self, window_size: int | None = None, *, window: int | None = None) -> float:
        """Median of the last ``window_size`` values."""
        try:
            return self._ready().median(self._key, _window(window_size, window))
        except KeyError:
            raise self._empty() from None

    @property
    def global_mean(self) -> float:
        """Count-weighted mean over every update, including those no longer retained."""
        try:
            return self._ready().global_mean(self._key)
        except KeyError:
            raise self._empty() from None

    @property
    def count(self) -> int:
        """Total count over every update (the number of updates when counts are 1)."""
        try:
            return self._ready().count(self._key)
        except KeyError:
            return 0

    @property
    def data(self) -> tuple[list[float], list[int]]:
        """The retained values and counts, oldest first (at most ``max_length``)."""
        try:
            return self._ready().data(self._key)
        except KeyError:
            return [], []

    def __len__(self) -> int:
        return len(self.data[0])

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Plain-data state: retained values and counts, global sum and count."""
        try:
            return self._ready().key_state_dict(self._key)
        except KeyError:
            return {"values": [], "counts": [], "global_sum": 0.0, "global_count": 0}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict` (replaces the history; pending values are dropped)."""
        entries = self._pending.entries
        entries[:] = [entry for entry in entries if entry[0] != self._key]
        self._store.load_key_state_dict(self._key, state)

    @property
    def _log_history(self) -> Any:
        """The retained values as a numpy array (for statistics written for MMEngine)."""
        import numpy as np

        return np.asarray(self.data[0], dtype=np.float64)

    @property
    def _count_history(self) -> Any:
        """The retained counts as a numpy array (for statistics written for MMEngine)."""
        import numpy as np

        return np.asarray(self.data[1], dtype=np.int64)

    # ------------------------------------------------------------------ pickling
    def __getstate__(self) -> tuple[Any, str, _Pending]:
        self._ready()  # pending tensors become numbers: the pickle holds plain data
        return self._store, self._key, self._pending

    def __setstate__(self, state: tuple[Any, str, _Pending]) -> None:
        self._bind(*state)

    def __repr__(self) -> str:
        values, _ = self.data
        return f"HistoryBuffer({self._key!r}, retained={len(values)}, count={self.count})"


for _name in ("mean", "min", "max", "median", "current"):
    HistoryBuffer._statistics_methods[_name] = getattr(HistoryBuffer, _name)
