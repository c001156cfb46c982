"""Run logging with structlog: the console, ``log.jsonl`` and a plain text log file.

``setup_logging`` routes structlog through the standard ``logging`` logger ``torchkiln``:

- console (``sys.stdout`` as it is when a record is written, so a progress bar that
  redirects stdout prints log lines above itself): structlog's colourful renderer on a TTY,
  plain lines otherwise;
- ``<log_dir>/log.jsonl``: one JSON object per event, with the run context (``epoch``,
  ``iter``, ``mode``) in every record made during a run. Values bound with
  :func:`bind_run_context` win; the rest come from the context source a run installs with
  :func:`set_run_context_source` (read only when a record is written, so keeping the
  context current costs nothing per iteration). The file is written through the Rust
  JSON-lines sink (:mod:`torchkiln.logging.sinks`): off the caller's thread, flushed every
  second, on :func:`flush_all` and on :func:`shutdown_logging`;
- ``<log_dir>/<timestamp>.log``: the plain lines.

Files are written by rank 0 only; other ranks print warnings and errors to the console.
A warning with the same text as an earlier one is dropped. Nothing here imports torch.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

import structlog
from structlog.contextvars import (
    bind_contextvars,
    get_contextvars,
    merge_contextvars,
    unbind_contextvars,
)
from structlog.stdlib import ProcessorFormatter

from torchkiln.errors import ConfigError, did_you_mean
from torchkiln.logging.sinks import JsonlWriter, flush_all, register_flushable

__all__ = [
    "LOGGER_NAME",
    "bind_run_context",
    "clear_run_context",
    "get_logger",
    "print_log",
    "set_run_context_source",
    "setup_logging",
    "shutdown_logging",
    "warn_once",
]

LOGGER_NAME = "torchkiln"
_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_RUN_CONTEXT = ("epoch", "iter", "mode")
_MAX_REMEMBERED = 10_000  # warning texts kept for de-duplication

_TIMESTAMPER = structlog.processors.TimeStamper(
    fmt="iso", utc=False
)  # local time, like the console

_current: Any = None
_handlers: list[logging.Handler] = []
_context_source: Callable[[], Mapping[str, Any]] | None = None
_seen_warnings: set[str] = set()
_warned_once: set[str] = set()


def _level(level: int | str) -> int:
    if isinstance(level, int) and not isinstance(level, bool):
        return level
    if isinstance(level, str) and level.upper() in _LEVELS:
        return logging.getLevelName(level.upper())
    raise ConfigError(
        f"unknown log level {level!r}",
        where="log_level",
        hint=did_you_mean(str(level).upper(), _LEVELS) or "one of " + ", ".join(_LEVELS),
    )


def _remember(seen: set[str], text: str) -> bool:
    """Add ``text``; False when it was there already. Bounded: forgets all when full."""
    if text in seen:
        return False
    if len(seen) >= _MAX_REMEMBERED:
        seen.clear()
    seen.add(text)
    return True


def drop_repeated_warnings(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> Any:
    """structlog processor: drop a warning whose text was already logged."""
    if method_name in ("warning", "warn") and not _remember(
        _seen_warnings, str(event_dict.get("event"))
    ):
        raise structlog.DropEvent
    return event_dict


def _hide_context(logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> Any:
    """Leave the run context out of human-readable lines (the JSON file keeps it)."""
    for key in get_contextvars():
        event_dict.pop(key, None)
    return event_dict


def set_run_context_source(source: Callable[[], Mapping[str, Any]] | None) -> None:
    """Where ``log.jsonl`` records take the run context not bound explicitly.

    :param source: called once per record written to ``log.jsonl``; returns e.g.
        ``{"epoch": 2, "iter": 230, "mode": "train"}``. ``None`` removes it.
    """
    global _context_source
    _context_source = source


def _add_run_context(logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> Any:
    """Fill ``epoch``/``iter``/``mode`` from the run's context source (bound values win)."""
    source = _context_source
    if source is None:
        return event_dict
    try:
        context = source()
    except Exception:  # a record is never lost because its context is
        return event_dict
    for key in _RUN_CONTEXT:
        value = context.get(key)
        if value is not None:
            event_dict.setdefault(key, value)
    return event_dict


class _StdoutHandler(logging.Handler):
    """Writes to ``sys.stdout`` as it is at each record (a progress bar may redirect it)."""

    terminator = "\n"

    def emit(self, record: logging.LogRecord) -> None:
        try:
            stream = sys.stdout
            stream.write(self.format(record) + self.terminator)
            stream.flush()
        except RecursionError:
            raise
        except Exception:  # logging's own policy
            self.handleError(record)

    def flush(self) -> None:
        with contextlib.suppress(Exception):
            sys.stdout.flush()


class _JsonlHandler(logging.Handler):
    """Hands each formatted record (one JSON line) to a :class:`JsonlWriter`."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.writer = JsonlWriter(path)

    def emit(self, record: logging.LogRecord) -> None:
        if self.writer.closed:  # closed at interpreter exit; a late record has nowhere to go
            return
        try:
            self.writer.write_line(self.format(record))
        except RecursionError:
            raise
        except Exception:  # logging's own policy
            self.handleError(record)

    def flush(self) -> None:
        if not self.writer.closed:
            self.writer.flush()

    def close(self) -> None:
        self.writer.close()
        super().close()


def _plain_renderer(rank: int) -> Any:
    prefix = f"[rank {rank}] " if rank else ""

    def render(logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> str:
        stamp = str(event_dict.pop("timestamp", ""))[:19].replace("T", " ")
        level = str(event_dict.pop("level", method_name)).upper()
        event = event_dict.pop("event", "")
        exception = event_dict.pop("exception", None)
        extras = "".join(f" {key}={value}" for key, value in event_dict.items())
        line = f"{prefix}{stamp} - {LOGGER_NAME} - {level} - {event}{extras}"
        return f"{line}\n{exception}" if exception else line

    return render


def _formatter(*processors: Any) -> ProcessorFormatter:
    pre_chain: list[Any] = [merge_contextvars, structlog.stdlib.add_log_level, _TIMESTAMPER]
    return ProcessorFormatter(
        processors=[ProcessorFormatter.remove_processors_meta, *processors],
        foreign_pre_chain=pre_chain,
    )


def _console_formatter(tty: bool, rank: int) -> ProcessorFormatter:
    if tty:
        renderer = structlog.dev.ConsoleRenderer(
            colors=True, exception_formatter=structlog.dev.RichTracebackFormatter(show_locals=False)
        )
        return _formatter(_hide_context, renderer)
    return _formatter(_hide_context, structlog.processors.format_exc_info, _plain_renderer(rank))


def shutdown_logging() -> None:
    """Flush everything (:func:`flush_all`) and close the handlers :func:`setup_logging`
    added (the log files). Logging afterwards goes to a console-only setup."""
    global _current
    flush_all()
    std = logging.getLogger(LOGGER_NAME)
    for handler in _handlers:
        std.removeHandler(handler)
        handler.close()
    _handlers.clear()
    _current = None


def setup_logging(
    log_dir: str | os.PathLike[str] | None,
    level: int | str = "INFO",
    rank: int = 0,
    tty: bool | None = None,
    *,
    timestamp: str | None = None,
) -> Any:
    """Configure run logging and return the run logger (a structlog ``BoundLogger``).

    Calling it again replaces the previous setup (closing its files).

    :param log_dir: folder for ``log.jsonl`` and ``<timestamp>.log``; ``None``: console only.
    :param level: ``'DEBUG'``, ``'INFO'``, ... or a ``logging`` level number.
    :param rank: the process rank; only rank 0 writes files and logs below WARNING.
    :param tty: console renderer on a TTY; default ``sys.stdout.isatty()``.
    :param timestamp: the text log's file name; default the current local time
        (``%Y%m%d_%H%M%S``).
    :raises ConfigError: an unknown level.
    """
    global _current
    numeric = _level(level)
    shutdown_logging()
    _seen_warnings.clear()  # a new run repeats nothing yet
    std = logging.getLogger(LOGGER_NAME)
    std.setLevel(numeric if rank == 0 else max(numeric, logging.WARNING))
    std.propagate = False
    if tty is None:
        tty = bool(getattr(sys.stdout, "isatty", lambda: False)())
    console = _StdoutHandler()
    console.setFormatter(_console_formatter(tty, rank))
    _handlers.append(console)
    if rank == 0 and log_dir is not None:
        os.makedirs(log_dir, exist_ok=True)
        stamp = timestamp or time.strftime("%Y%m%d_%H%M%S")
        json_file = _JsonlHandler(os.path.join(log_dir, "log.jsonl"))
        json_file.setFormatter(
            _formatter(
                _add_run_context,
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(default=str),
            )
        )
        text_file = logging.FileHandler(os.path.join(log_dir, f"{stamp}.log"), encoding="utf-8")
        text_file.setFormatter(
            _formatter(_hide_context, structlog.processors.format_exc_info, _plain_renderer(rank))
        )
        _handlers.extend([json_file, text_file])
    for handler in _handlers:
        std.addHandler(handler)
        register_flushable(handler)
    structlog.configure(
        processors=[
            merge_contextvars,
            structlog.stdlib.filter_by_level,
            structlog.stdlib.add_log_level,
            _TIMESTAMPER,
            drop_repeated_warnings,
            ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,  # keeps structlog.testing.capture_logs working
    )
    _current = structlog.get_logger(LOGGER_NAME)
    return _current


def get_logger() -> Any:
    """The run logger; a console-only one when :func:`setup_logging` was not called."""
    if _current is None:
        return setup_logging(None)
    return _current


def bind_run_context(**values: Any) -> None:
    """Bind run context (``epoch``, ``iter``, ``mode``, ...) to every later log record."""
    bind_contextvars(**values)


def clear_run_context(*keys: str) -> None:
    """Unbind ``keys`` (default: ``epoch``, ``iter``, ``mode``)."""
    unbind_contextvars(*(keys or _RUN_CONTEXT))


def warn_once(logger: Any, msg: str) -> None:
    """Log ``msg`` as a warning the first time only (``logger=None``: the run logger)."""
    if _remember(_warned_once, msg):
        (logger or get_logger()).warning(msg)


def print_log(msg: str, logger: Any = None, level: int | str = "INFO") -> None:
    """MMEngine's ``print_log``: ``logger`` None prints, ``'silent'`` drops, ``'current'``
    (or any other name) uses the run logger, an object with ``info``/``warning``/... logs.

    :param msg: the message.
    :param logger: where to: see above.
    :param level: ``'INFO'``, ``'WARNING'``, ... or a ``logging`` level number.
    """
    if logger == "silent":
        return
    if logger is None:
        print(msg)
        return
    target = get_logger() if isinstance(logger, str) else logger
    numeric = _level(level)
    name = logging.getLevelName(numeric).lower()
    method = getattr(
        target, name if name in ("debug", "info", "warning", "error", "critical") else "info"
    )
    method(msg)
