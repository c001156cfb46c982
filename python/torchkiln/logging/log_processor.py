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
        bad_method: tuple[str, Any] | None = None
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
            # ``method_name`` is MMEngine's spelling of ``method``; checked after the
            # duplicates (MMEngine's order of complaints).
            method = item.get("method", item.get("method_name"))
            if method not in _METHODS and bad_method is None:
                bad_method = (where, method)
            checked.append(
                {
                    "data_src": item["data_src"],
                    "method": method,
                    "window_size": window,
                    "log_name": log_name or item["data_src"],
                }
            )
        if bad_method is not None:
            where, method = bad_method
            raise ConfigValueError(
                f"custom_cfg method must be one of {', '.join(_METHODS)}, got {method!r}",
                where=f"{where}.method",
                hint=did_you_mean(str(method), _METHODS),
            )
        return checked

    # ------------------------------------------------------------------ statistics
    def _statistic(self, buffer: Any, method: str, window: int | str | None) -> Any:
        if method == "current":
            return buffer.current()
        if window is None or window == "global":
            return buffer.global_mean if method == "mean" else buffer.statistics(method, None)
        return buffer.statistics(method, window)

    def _parse_windows_size(
        self, runner: Any, batch_idx: int, custom_cfg: Sequence[Mapping[str, Any]] | None = None
    ) -> list[dict[str, Any]]:
        """``custom_cfg`` (the processor's own when None) with ``'epoch'`` windows made the
        number of iterations of the current epoch (``batch_idx + 1``) and ``'global'`` ones
        the whole run (``runner.iter + 1``).

        :raises TypeError: a window that is neither an int, ``'epoch'`` nor ``'global'``.
        """
        items = [dict(item) for item in (self.custom_cfg if custom_cfg is None else custom_cfg)]
        for item in items:
            window = item.get("window_size")
            if window is None or (isinstance(window, int) and not isinstance(window, bool)):
                continue
            if window == "epoch":
                item["window_size"] = batch_idx + 1
            elif window == "global":
                item["window_size"] = runner.iter + 1
            else:
                raise TypeError(
                    f"custom_cfg window_size should be an int, 'epoch' or 'global', got {window!r}"
                )
        return items

    def _collect_scalars(
        self,
        custom_cfg: Sequence[Mapping[str, Any]],
        runner: Any,
        mode: str,
        reserve_prefix: bool = False,
    ) -> dict[str, Any]:
        """The ``<mode>/`` scalars of the message hub: smoothed over ``window_size`` when the
        name matches ``mean_pattern``, else the latest value; then the ``custom_cfg`` items
        (windows already ints, see :meth:`_parse_windows_size`).

        :param reserve_prefix: keep the ``<mode>/`` prefix in the keys.
        """
        prefix = f"{mode}/"
        tag: dict[str, Any] = {}
        buffers: dict[str, Any] = {}
        for key, buffer in runner.message_hub.log_scalars.items():
            if key.startswith(prefix):
                buffers[key[len(prefix) :]] = buffer
        for name, buffer in buffers.items():
            value = (
                buffer.mean(self.window_size) if self._mean_re.search(name) else buffer.current()
            )
            tag[prefix + name if reserve_prefix else name] = value
        for item in custom_cfg:
            source = item["data_src"]
            buffer = buffers.get(source)
            if buffer is None:
                continue
            name = item.get("log_name") or source
            method = item.get("method", item.get("method_name"))
            tag[prefix + name if reserve_prefix else name] = self._statistic(
                buffer, method, item.get("window_size")
            )
        return tag

    def _collect_non_scalars(self, runner: Any, mode: str) -> dict[str, Any]:
        """The ``<mode>/`` runtime information of the message hub (metrics that are not
        scalars, such as a confusion matrix); prefixed keys with ``log_with_hierarchy``."""
        prefix = f"{mode}/"
        return {
            (key if self.log_with_hierarchy else key[len(prefix) :]): value
            for key, value in runner.message_hub.runtime_info.items()
            if key.startswith(prefix)
        }

    def _format(self, name: str, value: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            if hasattr(value, "shape") and hasattr(value, "dtype"):  # tensor or array
                return f"{name}: \n{value}\n"
            return f"{name}: {value}"
        if isinstance(value, int):
            return f"{name}: {value}"
        return f"{name}: {value:.{self.num_digits}f}"

    # ------------------------------------------------------------------ runner facts
    def _get_max_memory(self, runner: Any) -> int:
        """Peak memory allocated on the model's CUDA device since the last call, in MiB
        (the peak is reset). Reads the caching allocator's counters: no synchronisation."""
        import torch

        device = getattr(runner.model, "output_device", None)
        peak = torch.cuda.max_memory_allocated(device=device)
        torch.cuda.reset_peak_memory_stats()
        return int(peak) // (1024 * 1024)

    def _memory(self, runner: Any) -> int | None:
        """Peak memory for the line, or None when CUDA is not in use (never initialises
        CUDA)."""
        torch = sys.modules.get("torch")
        if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
            return None
        return self._get_max_memory(runner)

    def _get_iter(self, runner: Any, batch_idx: int) -> int:
        """The iteration the line reports (1-based): within the epoch when ``by_epoch``, else
        of the whole run."""
        return batch_idx + 1 if self.by_epoch else runner.iter + 1

    @staticmethod
    def _train_loop_built(runner: Any) -> bool:
        """Whether the runner trains (an object without ``_train_loop`` is taken to)."""
        loop = getattr(runner, "_train_loop", True)
        return loop is not None and not isinstance(loop, Mapping)

    def _get_epoch(self, runner: Any, mode: str) -> int:
        """The epoch a train line reports (1-based), or the epoch a validation follows (0
        when nothing was trained).

        :raises ValueError: ``mode`` is neither ``'train'`` nor ``'val'``.
        """
        if mode == "train":
            return runner.epoch + 1
        if mode == "val":
            return runner.epoch if self._train_loop_built(runner) else 0
        raise ValueError(f"runner mode should be 'train' or 'val', but got {mode!r}")

    def _get_cur_loop(self, runner: Any, mode: str) -> Any:
        """The runner's train, val or test loop."""
        if mode == "train":
            return runner.train_loop
        return runner.val_loop if mode == "val" else runner.test_loop

    def _get_dataloader_size(self, runner: Any, mode: str) -> int | None:
        """Batches in an epoch of ``mode``'s dataloader (None when it has no length)."""
        loop = getattr(runner, f"{mode}_loop", None)
        dataloader = getattr(loop, "dataloader", None)
        if dataloader is None:
            dataloader = getattr(runner, f"{mode}_dataloader", None)
        return _length(dataloader)

    def _epoch_header(self, runner: Any, mode: str, epoch: int) -> str:
        """``Epoch(train) [e]``, the epoch right-aligned to the width of ``max_epochs``."""
        text = f"[{epoch}]"
        max_epochs = getattr(runner, "max_epochs", None) if self._train_loop_built(runner) else None
        if isinstance(max_epochs, int) and not isinstance(max_epochs, bool):
            text = text.rjust(len(str(max_epochs)) + 3)
        else:
            text = f" {text}"
        return f"Epoch({mode}){text}"

    # ------------------------------------------------------------------ lines
    def get_log_after_iter(
        self, runner: Any, batch_idx: int, mode: str
    ) -> tuple[dict[str, Any], str]:
        """The tag and the log line after iteration ``batch_idx`` of ``mode``.

        Train lines show every ``train/`` scalar (smoothed when it matches ``mean_pattern``),
        lr first, then eta, time, data_time, memory (on CUDA) and the rest; val and test lines
        show eta, time, data_time and memory. The tag has ``iter`` (and ``epoch`` by epoch).

        :param runner: the runner (``message_hub``, ``epoch``, ``iter``, ``max_iters``,
            dataloaders).
        :param batch_idx: index of the batch in the current epoch (0-based).
        :param mode: ``'train'``, ``'val'`` or ``'test'``.
        :returns: ``(tag, log_str)``: the values (for scalar files) and the line.
        """
        parsed = self._parse_windows_size(runner, batch_idx, self.custom_cfg)
        values = self._collect_scalars(parsed, runner, mode)
        tag = (
            self._collect_scalars(parsed, runner, mode, True)
            if self.log_with_hierarchy
            else dict(values)
        )
        lr_items = []
        for key, value in tag.items():
            if _is_lr(key):
                name = key[len(mode) + 1 :] if key.startswith(f"{mode}/") else key
                values.pop(name, None)
                lr_items.append(f"{name}: {value:.{self.num_digits}e}")

        if self.by_epoch:
            total = self._get_dataloader_size(runner, mode)
            current = str(self._get_iter(runner, batch_idx)).rjust(len(str(total)))
            if mode in ("train", "val"):
                epoch = self._get_epoch(runner, mode)
                tag["epoch"] = epoch
                if epoch or mode == "train":
                    header = f"{self._epoch_header(runner, mode, epoch)}[{current}/{total}]"
                else:  # validation without training: no epoch to show
                    header = f"Epoch({mode}) [{current}/{total}]"
            else:
                header = f"Epoch({mode}) [{current}/{total}]"
        elif mode == "train":
            current = str(self._get_iter(runner, batch_idx)).rjust(len(str(runner.max_iters)))
            header = f"Iter({mode}) [{current}/{runner.max_iters}]"
        else:
            total = self._get_dataloader_size(runner, mode)
            current = str(batch_idx + 1).rjust(len(str(total)))
            header = f"Iter({mode}) [{current}/{total}]"
        tag["iter"] = runner.iter + 1 if self._train_loop_built(runner) else 0

        log_str = f"{header}  {' '.join(lr_items)}  "
        if "time" in values:
            eta = runner.message_hub.runtime_info.get("eta")
            if eta is None:  # no IterTimerHook estimate: from the smoothed iteration time
                left = (
                    runner.max_iters - runner.iter - 1
                    if mode == "train"
                    else (self._get_dataloader_size(runner, mode) or 0) - batch_idx - 1
                )
                eta = values["time"] * max(left, 0)
            log_str += f"eta: {datetime.timedelta(seconds=int(eta))}  "
            for name in _TIMING:
                if name in values:
                    log_str += f"{name}: {values.pop(name):.{self.num_digits}f}  "
        memory = self._memory(runner)
        if memory is not None:
            log_str += f"memory: {memory}  "
            tag["memory"] = memory
        if mode == "train":
            log_str += "  ".join(self._format(name, value) for name, value in values.items())
        return tag, log_str

    def get_log_after_epoch(
        self, runner: Any, batch_idx: int, mode: str, with_non_scalar: bool = False
    ) -> tuple[dict[str, Any], str]:
        """The tag and the log line at the end of an epoch of ``mode`` (val or test).

        Metrics (every ``<mode>/`` scalar but the timings, then the non-scalar ``<mode>/``
        runtime information such as a confusion matrix) show their latest value, then
        ``data_time`` and ``time`` averaged over the epoch.

        :param runner: the runner.
        :param batch_idx: the number of iterations in the epoch (``len(dataloader)``).
        :param mode: ``'val'`` or ``'test'`` (``'train'`` is accepted too).
        :param with_non_scalar: also put the non-scalar information in the tag.
        :returns: ``(tag, log_str)``.
        """
        total = self._get_dataloader_size(runner, mode)
        if self.by_epoch:
            epoch = self._get_epoch(runner, mode) if mode in ("train", "val") else 0
            position = f"[{epoch}][{total}/{total}]" if epoch else f"[{total}/{total}]"
            log_str = f"Epoch({mode}) {position}  "
        else:
            log_str = f"Iter({mode}) [{total}/{total}]  "
        items = [dict(item) for item in self.custom_cfg]
        sources = {item["data_src"] for item in items}
        for name in _TIMING:  # averaged over the epoch unless configured
            if name not in sources:
                items.append({"data_src": name, "method": "mean", "window_size": "epoch"})
        parsed = self._parse_windows_size(runner, max(batch_idx - 1, 0), items)
        scalars = self._collect_scalars(parsed, runner, mode, self.log_with_hierarchy)
        non_scalars = self._collect_non_scalars(runner, mode)
        timing_keys = {*_TIMING, *(f"{mode}/{name}" for name in _TIMING)}
        tag = {key: value for key, value in scalars.items() if key not in timing_keys}
        timing = {  # data_time, then time
            key: scalars[key]
            for name in ("data_time", "time")
            for key in (name, f"{mode}/{name}")
            if key in scalars
        }
        shown = [*tag.items(), *non_scalars.items(), *timing.items()]
        log_str += "  " + "  ".join(self._format(name, value) for name, value in shown)
        if with_non_scalar:
            tag.update(non_scalars)
        tag.update(timing)
        return tag, log_str
