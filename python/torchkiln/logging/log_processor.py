"""``LogProcessor``: turns the message hub's scalars into log lines and scalar tags.

Lines have MMEngine's shape::

    Epoch(train) [1][ 50/115]  lr: 1.0000e-01  eta: 0:00:31  time: 0.0123  data_time: 0.0011  memory: 812  loss: 0.4321
    Iter(train) [  50/1000]  lr: 1.0000e-01  eta: ...
    Epoch(val) [1][8/8]  accuracy/top1: 96.1000  data_time: 0.0011  time: 0.0052

It reads the hub keys ``<mode>/<name>`` (``train/loss``, ``train/lr``, ``train/time``,
``train/data_time``, ``val/<metric>``, ...) and the runner's ``epoch``, ``iter``,
``max_iters`` and dataloader lengths. Reading statistics here is where pending device
values are converted (once per log interval).
"""

from __future__ import annotations

import datetime
import math
import re
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from torchkiln.errors import (
    ConfigAssertionError,
    ConfigKeyError,
    ConfigTypeError,
    ConfigValueError,
    did_you_mean,
)
from torchkiln.registry import LOG_PROCESSORS

__all__ = ["LogProcessor"]

_METHODS = ("mean", "min", "max", "median", "current")
_CUSTOM_KEYS = ("data_src", "method", "method_name", "window_size", "log_name")
_TIMING = ("time", "data_time")


def _is_lr(name: str) -> bool:
    return name.endswith("lr")


def _max_memory_mb() -> int | None:
    """Peak CUDA memory since the last call, in MiB; ``None`` when CUDA is not in use.

    Reads the caching allocator's counters: no device synchronisation.
    """
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return None
    peak = torch.cuda.max_memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    return math.ceil(peak / (1024 * 1024))


def _length(obj: Any) -> int | None:
    try:
        return len(obj)
    except TypeError:
        return None


@LOG_PROCESSORS.register_module()
class LogProcessor:
    """Formats training, validation and test logs from the message hub.

    :param window_size: iterations the smoothed values (keys matching ``mean_pattern``)
        average over.
    :param by_epoch: ``Epoch(train) [e][i/n]`` headers (epoch-based training) or
        ``Iter(train) [i/n]`` (iteration-based).
    :param custom_cfg: extra or replaced statistics: a list of ``{data_src, method,
        window_size, log_name}``; ``method`` is mean, min, max, median or current;
        ``window_size`` an int, ``'epoch'`` (the iterations of the current epoch) or
        ``'global'`` (the whole run); without ``log_name`` the item replaces the default
        statistic of ``data_src``.
    :param num_digits: digits after the point (``lr`` in scientific notation).
    :param log_with_hierarchy: keep the ``train/``, ``val/`` prefix in the returned tags.
    :param mean_pattern: keys matching this regular expression are smoothed over
        ``window_size``; the others show their latest value.
    """

    def __init__(
        self,
        window_size: int = 10,
        by_epoch: bool = True,
        custom_cfg: Sequence[Mapping[str, Any]] | None = None,
        num_digits: int = 4,
        log_with_hierarchy: bool = False,
        mean_pattern: str = r".*(loss|time|data_time|grad_norm).*",
    ) -> None:
        if isinstance(window_size, bool) or not isinstance(window_size, int) or window_size < 1:
            raise ConfigValueError(
                f"log_processor.window_size must be a positive int, got {window_size!r}",
                where="log_processor.window_size",
            )
        if isinstance(num_digits, bool) or not isinstance(num_digits, int) or num_digits < 0:
            raise ConfigValueError(
                f"log_processor.num_digits must be an int >= 0, got {num_digits!r}",
                where="log_processor.num_digits",
            )
        try:
            self._mean_re = re.compile(mean_pattern)
        except re.error as exc:
            raise ConfigValueError(
                f"log_processor.mean_pattern is not a valid regular expression: {exc}",
                where="log_processor.mean_pattern",
            ) from None
        self.window_size = window_size
        self.by_epoch = by_epoch
        self.num_digits = num_digits
        self.log_with_hierarchy = log_with_hierarchy
        self.mean_pattern = mean_pattern
        self.custom_cfg = self._check_custom_cfg(custom_cfg or [])

    # ------------------------------------------------------------------ config
    def _check_custom_cfg(
        self, custom_cfg: Sequence[Mapping[str, Any]] | None = None
    ) -> list[dict[str, Any]]:
        """Check ``custom_cfg`` items and return them normalised (``method``, ``window_size``
        and ``log_name`` filled in).

        Without an argument (as a subclass written for MMEngine calls it) the processor's own
        ``custom_cfg`` is checked and replaced by the normalised list.

        :raises AssertionError: a duplicate ``log_name``, a ``data_src`` replaced twice, or
            ``window_size='epoch'`` without ``by_epoch``.
        """
        if custom_cfg is None:
            self.custom_cfg = self._check_custom_cfg(getattr(self, "custom_cfg", None) or [])
            return self.custom_cfg
        checked = []
        replaced: set[str] = set()
        names: set[str] = set()
        for i, item in enumerate(custom_cfg):
            where = f"log_processor.custom_cfg[{i}]"
            if not isinstance(item, Mapping):
                raise ConfigTypeError(f"custom_cfg items must be dicts, got {item!r}", where=where)
            for key in item:
                if key not in _CUSTOM_KEYS:
                    raise ConfigKeyError(
                        f"unknown custom_cfg key {key!r}",
                        where=f"{where}.{key}",
                        hint=did_you_mean(key, _CUSTOM_KEYS) or "keys: " + ", ".join(_CUSTOM_KEYS),
                    )
            if not isinstance(item.get("data_src"), str):
                raise ConfigAssertionError(
                    "custom_cfg items need data_src: the logged name, e.g. 'loss'", where=where
                )
            window = item.get("window_size", self.window_size)
            if window == "epoch" and not self.by_epoch:
                raise ConfigAssertionError(
                    "window_size 'epoch' needs by_epoch=True",
                    where=f"{where}.window_size",
                    hint="use an int or 'global' for iteration-based training",
                )
            if window not in ("epoch", "global") and (
                isinstance(window, bool) or not isinstance(window, int) or window < 1
            ):
                raise ConfigTypeError(
                    f"window_size must be a positive int, 'epoch' or 'global', got {window!r}",
                    where=f"{where}.window_size",
                )
            log_name = item.get("log_name")
            if log_name is None:
                if item["data_src"] in replaced:
                    raise ConfigAssertionError(
                        f"data_src {item['data_src']!r} is replaced twice",
                        where=where,
                        hint="give one of the two items a log_name",
                    )
                replaced.add(item["data_src"])
            elif log_name in names:
                raise ConfigAssertionError(
                    f"log_name {log_name!r} is used twice", where=f"{where}.log_name"
                )
            else:
                names.add(log_name)
            # ``method_name`` is MMEngine's spelling of ``method``.
            method = item.get("method", item.get("method_name"))
            if method not in _METHODS:
                raise ConfigValueError(
                    f"custom_cfg method must be one of {', '.join(_METHODS)}, got {method!r}",
                    where=f"{where}.method",
                    hint=did_you_mean(str(method), _METHODS),
                )
            checked.append(
                {
                    "data_src": item["data_src"],
                    "method": method,
                    "window_size": window,
                    "log_name": log_name or item["data_src"],
                }
            )
        return checked

    # ------------------------------------------------------------------ statistics
    def _statistic(self, buffer: Any, method: str, window: int | str, epoch_window: int) -> float:
        if method == "current":
            return buffer.current()
        if window == "global":
            return buffer.global_mean if method == "mean" else getattr(buffer, method)(None)
        if window == "epoch":
            window = max(epoch_window, 1)
        return getattr(buffer, method)(window)

    def _apply_custom(
        self, scalars: Mapping[str, Any], prefix: str, values: dict[str, Any], epoch_window: int
    ) -> None:
        for item in self.custom_cfg:
            buffer = scalars.get(prefix + item["data_src"])
            if buffer is not None:
                values[item["log_name"]] = self._statistic(
                    buffer, item["method"], item["window_size"], epoch_window
                )

    def _format(self, name: str, value: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"{name}: {value}"
        spec = "e" if _is_lr(name) else "f"
        return f"{name}: {value:.{self.num_digits}{spec}}"

    def _tag(self, values: Mapping[str, Any], mode: str) -> dict[str, Any]:
        if self.log_with_hierarchy:
            return {f"{mode}/{name}": value for name, value in values.items()}
        return dict(values)

    # ------------------------------------------------------------------ headers
    def _dataloader_len(self, runner: Any, mode: str) -> int | None:
        loop = getattr(runner, f"{mode}_loop", None)
        dataloader = getattr(loop, "dataloader", None)
        if dataloader is None:
            dataloader = getattr(runner, f"{mode}_dataloader", None)
        return _length(dataloader)

    def _header(self, runner: Any, mode: str, current: int, total: int | None) -> str:
        position = f"{current:>{len(str(total))}}/{total}" if total is not None else f"{current}"
        if mode == "train":
            if self.by_epoch:
                return f"Epoch(train) [{runner.epoch + 1}][{position}]"
            return f"Iter(train) [{position}]"
        if not self.by_epoch:
            return f"Iter({mode}) [{position}]"
        epoch = getattr(runner, "epoch", 0) if mode == "val" else 0
        if epoch:  # validation during training: the epoch just finished
            return f"Epoch({mode}) [{epoch}][{position}]"
        return f"Epoch({mode}) [{position}]"

    # ------------------------------------------------------------------ lines
    def get_log_after_iter(
        self, runner: Any, batch_idx: int, mode: str
    ) -> tuple[dict[str, Any], str]:
        """The tag and the log line after iteration ``batch_idx`` of ``mode``.

        Train lines show every ``train/`` scalar (smoothed when it matches ``mean_pattern``),
        lr first, then eta, time, data_time, memory (on CUDA) and the rest; val and test lines
        show eta, time, data_time and memory.

        :param runner: the runner (``message_hub``, ``epoch``, ``iter``, ``max_iters``,
            dataloaders).
        :param batch_idx: index of the batch in the current epoch (0-based).
        :param mode: ``'train'``, ``'val'`` or ``'test'``.
        :returns: ``(tag, log_str)``: the values as floats (for scalar files) and the line.
        """
        scalars = runner.message_hub.log_scalars
        prefix = f"{mode}/"
        if mode == "train":
            names = [key[len(prefix) :] for key in scalars if key.startswith(prefix)]
        else:  # per-iteration numbers only; metrics belong to the epoch line
            names = [name for name in _TIMING if prefix + name in scalars]
        values: dict[str, Any] = {}
        for name in names:
            buffer = scalars[prefix + name]
            values[name] = (
                buffer.mean(self.window_size) if self._mean_re.search(name) else buffer.current()
            )
        self._apply_custom(scalars, prefix, values, batch_idx + 1)

        if mode == "train" and not self.by_epoch:
            current, total = runner.iter + 1, runner.max_iters
        else:
            current, total = batch_idx + 1, self._dataloader_len(runner, mode)
        if mode == "train":
            remaining = runner.max_iters - runner.iter - 1
        else:
            remaining = (total - batch_idx - 1) if total is not None else None
        eta = None
        if "time" in values and remaining is not None:
            eta = str(datetime.timedelta(seconds=int(values["time"] * max(remaining, 0))))
        memory = _max_memory_mb()

        items = [self._format(name, value) for name, value in values.items() if _is_lr(name)]
        if eta is not None:
            items.append(f"eta: {eta}")
        items.extend(self._format(name, values[name]) for name in _TIMING if name in values)
        if memory is not None:
            items.append(f"memory: {memory}")
        items.extend(
            self._format(name, value)
            for name, value in values.items()
            if not _is_lr(name) and name not in _TIMING
        )
        tag = self._tag(values, mode)
        if memory is not None:
            tag["memory"] = memory
        return tag, "  ".join([self._header(runner, mode, current, total), *items])

    def get_log_after_epoch(
        self, runner: Any, batch_idx: int, mode: str, with_non_scalar: bool = False
    ) -> tuple[dict[str, Any], str]:
        """The tag and the log line at the end of an epoch of ``mode`` (usually val or test).

        Metrics (every ``<mode>/`` scalar but the timings) show their latest value, then
        ``data_time`` and ``time`` averaged over the epoch.

        :param runner: the runner.
        :param batch_idx: the number of iterations in the epoch (``len(dataloader)``).
        :param mode: ``'train'``, ``'val'`` or ``'test'``.
        :param with_non_scalar: also report non-scalar ``<mode>/`` runtime information
            (e.g. a confusion matrix) in the tag and the line.
        :returns: ``(tag, log_str)``.
        """
        hub = runner.message_hub
        scalars = hub.log_scalars
        prefix = f"{mode}/"
        values: dict[str, Any] = {}
        timing: dict[str, Any] = {}
        for key, buffer in scalars.items():
            if not key.startswith(prefix):
                continue
            name = key[len(prefix) :]
            if name in _TIMING:
                timing[name] = buffer.mean(max(batch_idx, 1))
            else:
                values[name] = buffer.current()
        self._apply_custom(scalars, prefix, values, batch_idx)
        for name in _TIMING:  # a custom statistic of a timing moves it to the timing group
            if name in values:
                timing[name] = values.pop(name)
        if with_non_scalar:
            for key, value in hub.runtime_info.items():
                if key.startswith(prefix) and key[len(prefix) :] not in values:
                    values[key[len(prefix) :]] = value

        items = [self._format(name, value) for name, value in values.items()]
        items.extend(
            self._format(name, timing[name]) for name in ("data_time", "time") if name in timing
        )
        header = self._header(runner, mode, batch_idx, self._dataloader_len(runner, mode))
        return self._tag({**values, **timing}, mode), "  ".join([header, *items])
