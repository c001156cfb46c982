"""``MessageHub``: where the run's scalars and runtime information meet.

Hooks and loops write scalars (``train/loss``, ``train/lr``, ``train/time``, ``val/<metric>``)
and runtime information (``epoch``, ``iter``, ``max_iters``, ...); the log processor, the
visualizer and checkpoints read them. Each scalar key is a :class:`HistoryBuffer` view of one
shared log buffer, so tensors logged by several keys are converted together, once, when
something reads them (see :mod:`torchkiln.logging.history_buffer`).

One hub is *current* per process (``MessageHub.get_current_instance()``), as in MMEngine;
the runner makes its own with ``MessageHub.get_instance(name)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from torchkiln.errors import did_you_mean
from torchkiln.logging.history_buffer import (
    DEFAULT_MAX_LENGTH,
    HistoryBuffer,
    LogArgumentError,
    LogTypeError,
    _Pending,
    new_log_buffer,
    pending_limit,
)

__all__ = ["MessageHub"]

DEFAULT_NAME = "torchkiln"
#: MMEngine's name for its default hub; it names torchkiln's default hub, so code written for
#: MMEngine (``MessageHub.get_instance('mmengine')``) reaches the same hub.
MMENGINE_NAME = "mmengine"


def _as_dict(name: str, value: Mapping[str, Any] | None) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise LogTypeError(f"{name} must be a dict or None, got {type(value).__name__}")
    return dict(value)


def _warn(message: str) -> None:
    from torchkiln.logging.mm_logger import print_log

    print_log(message, logger="current", level="WARNING")


def _is_plain(value: Any) -> bool:
    """Whether ``value`` is plain data a checkpoint can hold (and ``weights_only`` load)."""
    if value is None or type(value) in (bool, int, float, str):
        return True
    if type(value) in (list, tuple):
        return all(_is_plain(v) for v in value)
    if type(value) is dict:
        return all(type(k) is str and _is_plain(v) for k, v in value.items())
    return False


class MessageHub:
    """Scalars (bounded histories) and runtime information of a run.

    :param name: the instance name (``get_instance`` looks hubs up by it).
    :param log_scalars: initial scalar histories, ``{key: HistoryBuffer}``; their entries are
        copied into the hub (the newest ``max_length`` of each).
    :param runtime_info: initial runtime information, ``{key: value}``.
    :param resumed_keys: ``{key: bool}`` for keys of ``log_scalars`` or ``runtime_info``:
        whether :meth:`state_dict` saves them (default True).
    :param max_length: entries kept per scalar key (windows are clamped to it).
    :raises LogTypeError: an argument is not a dict, or a ``log_scalars`` value is not a
        :class:`HistoryBuffer`.
    :raises LogArgumentError: a ``resumed_keys`` key names neither a scalar nor an info key.
    """

    _instance_dict: ClassVar[dict[str, MessageHub]] = {}
    _current: ClassVar[MessageHub | None] = None

    def __init__(
        self,
        name: str = DEFAULT_NAME,
        log_scalars: Mapping[str, HistoryBuffer] | None = None,
        runtime_info: Mapping[str, Any] | None = None,
        resumed_keys: Mapping[str, bool] | None = None,
        *,
        max_length: int = DEFAULT_MAX_LENGTH,
    ) -> None:
        self.instance_name = name
        self.max_length = max_length
        self._store = new_log_buffer(max_length)
        self._pending = _Pending(self._store, pending_limit(max_length))
        self._log_scalars: dict[str, HistoryBuffer] = {}
        self._runtime_info: dict[str, Any] = {}
        self._resumed_keys: dict[str, bool] = {}
        scalars = _as_dict("log_scalars", log_scalars)
        info = _as_dict("runtime_info", runtime_info)
        resumed = _as_dict("resumed_keys", resumed_keys)
        for key, buffer in scalars.items():
            if not isinstance(buffer, HistoryBuffer):
                raise LogTypeError(
                    f"log_scalars[{key!r}] must be a HistoryBuffer, got {type(buffer).__name__}"
                )
        for key in resumed:
            if key not in scalars and key not in info:
                raise LogArgumentError(
                    f"resumed_keys names {key!r}, which is neither in log_scalars nor in "
                    "runtime_info"
                )
        for key, buffer in scalars.items():
            self._view(key).load_state_dict(buffer.state_dict())
            self._resumed_keys[key] = bool(resumed.get(key, True))
        for key, value in info.items():
            self.update_info(key, value, bool(resumed.get(key, True)))

    def _view(self, key: str) -> HistoryBuffer:
        """The history of ``key`` in the hub's store, made on first use."""
        buffer = self._log_scalars.get(key)
        if buffer is None:
            buffer = self._log_scalars[key] = HistoryBuffer._view(self._store, key, self._pending)
        return buffer

    # ------------------------------------------------------------------ instances
    @classmethod
    def get_instance(cls, name: str = DEFAULT_NAME, **kwargs: Any) -> MessageHub:
        """The hub called ``name`` (created with ``kwargs`` if new); it becomes current.
        ``'mmengine'`` (MMEngine's default hub) names the default hub, ``'torchkiln'``."""
        if name == MMENGINE_NAME:
            name = DEFAULT_NAME
        hub = cls._instance_dict.get(name)
        if hub is None:
            hub = cls._instance_dict[name] = cls(name, **kwargs)
        MessageHub._current = hub
        return hub

    @classmethod
    def get_current_instance(cls) -> MessageHub:
        """The hub made or fetched last by ``get_instance`` (a default one if none, or if
        that hub was forgotten since)."""
        current = MessageHub._current
        if current is None or cls._instance_dict.get(current.instance_name) is not current:
            return cls.get_instance(DEFAULT_NAME)
        return current

    @classmethod
    def check_instance_created(cls, name: str) -> bool:
        """Whether a hub called ``name`` exists (``'mmengine'``: the default hub)."""
        return (DEFAULT_NAME if name == MMENGINE_NAME else name) in cls._instance_dict

    @classmethod
    def reset_instances(cls) -> None:
        """Forget every hub and the current one (between runs in one process, and tests)."""
        cls._instance_dict.clear()
        MessageHub._current = None

    # ------------------------------------------------------------------ scalars
    def update_scalar(self, key: str, value: Any, count: int = 1, resumed: bool = True) -> None:
        """Append a scalar to ``key``'s history; no device sync (see :class:`HistoryBuffer`).

        :param key: e.g. ``'train/loss'``.
        :param value: a number or a one-element tensor (kept on its device until read).
        :param count: how many samples ``value`` sums (MMEngine's meaning: the mean of a
            window is ``sum(values) / sum(counts)``); a whole number >= 0.
        :param resumed: whether the key is saved in :meth:`state_dict` for resuming.
        """
        buffer = self._log_scalars.get(key)
        if buffer is None:
            buffer = HistoryBuffer._view(self._store, key, self._pending)
            buffer.update(value, count)  # checks value and count: a rejected one creates no key
            self._log_scalars[key] = buffer
            self._resumed_keys[key] = resumed
            return
        buffer.update(value, count)

    def update_scalars(
        self, log_dict: Mapping[str, Any], count: int = 1, resumed: bool = True
    ) -> None:
        """``update_scalar`` for each item; a value may be ``{'value': v, 'count': n}``
        (``v`` the sum of ``n`` samples)."""
        for key, value in log_dict.items():
            if isinstance(value, Mapping):
                if "value" not in value:
                    raise LogArgumentError(
                        f"update_scalars: {key!r} is a dict without 'value': {dict(value)!r}"
                    )
                self.update_scalar(key, value["value"], value.get("count", count), resumed)
            else:
                self.update_scalar(key, value, count, resumed)

    def get_scalar(self, key: str) -> HistoryBuffer:
        """The history of ``key``.

        :raises KeyError: when nothing was logged under ``key`` (with a suggestion).
        """
        buffer = self._log_scalars.get(key)
        if buffer is None:
            hint = did_you_mean(key, self._log_scalars)
            raise KeyError(
                f"no scalar {key!r} in message hub {self.instance_name!r}"
                + (f"; {hint}" if hint else "")
            )
        return buffer

    @property
    def log_scalars(self) -> dict[str, HistoryBuffer]:
        """Every scalar key's history, in first-update order (do not modify)."""
        return self._log_scalars

    # ------------------------------------------------------------------ runtime info
    def update_info(self, key: str, value: Any, resumed: bool = True) -> None:
        """Set runtime information ``key`` (``epoch``, ``iter``, ``max_iters``, ...)."""
        self._runtime_info[key] = value
        self._resumed_keys[key] = resumed

    def update_info_dict(self, info_dict: Mapping[str, Any], resumed: bool = True) -> None:
        """``update_info`` for each item."""
        for key, value in info_dict.items():
            self.update_info(key, value, resumed)

    def get_info(self, key: str, default: Any = None) -> Any:
        """Runtime information ``key``, or ``default``."""
        return self._runtime_info.get(key, default)

    def pop_info(self, key: str, default: Any = None) -> Any:
        """Remove runtime information ``key`` and return it (``default`` when absent)."""
        self._resumed_keys.pop(key, None)
        return self._runtime_info.pop(key, default)

    @property
    def runtime_info(self) -> dict[str, Any]:
        """All runtime information (do not modify)."""
        return self._runtime_info

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Bounded plain-data state for checkpoints.

        Scalars keep their retained window and global statistics; runtime information keeps
        only plain data (numbers, strings, lists and dicts of them), so the checkpoint loads
        with ``weights_only=True``. Keys updated with ``resumed=False`` are left out.
        """
        if self._pending.entries:
            self._pending.flush()
        scalars = {
            key: buffer.state_dict()
            for key, buffer in self._log_scalars.items()
            if self._resumed_keys.get(key, True)
        }
        info = {
            key: value
            for key, value in self._runtime_info.items()
            if self._resumed_keys.get(key, True) and _is_plain(value)
        }
        return {"log_scalars": scalars, "runtime_info": info}

    def load_state_dict(self, state: Mapping[str, Any] | MessageHub) -> None:
        """Restore a :meth:`state_dict` (or copy another hub's); other keys stay as they are.

        A scalar's state may also be a :class:`HistoryBuffer` (MMEngine's state dicts hold
        them); anything else is skipped with a warning. A ``resumed_keys`` entry, when the
        state has one, sets whether a loaded key is saved again.
        """
        if isinstance(state, MessageHub):
            state = state.state_dict()
        for key, key_state in state.get("log_scalars", {}).items():
            if isinstance(key_state, HistoryBuffer):
                key_state = key_state.state_dict()
            elif not isinstance(key_state, Mapping):
                _warn(f"message hub: {key!r} in log_scalars is not a scalar history; skipped")
                continue
            self._view(key).load_state_dict(key_state)
        self._runtime_info.update(state.get("runtime_info", {}))
        # a key without an entry in _resumed_keys is saved (see state_dict)
        for key, resumed in (state.get("resumed_keys") or {}).items():
            if key in self._log_scalars or key in self._runtime_info:
                self._resumed_keys[key] = bool(resumed)

    def __getstate__(self) -> dict[str, Any]:
        if self._pending.entries:
            self._pending.flush()  # the pickle holds numbers, never device tensors
        return self.__dict__.copy()

    def __repr__(self) -> str:
        return f"MessageHub({self.instance_name!r}, scalars={list(self._log_scalars)}, info={list(self._runtime_info)})"
