"""Run logging with structlog: the console, ``log.jsonl`` and a plain text log file.

``setup_logging`` makes the run logger, an :class:`~torchkiln.logging.mm_logger.MMLogger`
(a standard ``logging.Logger``, so ``assertLogs`` and ``logging`` handlers work on it) whose
records structlog processes and renders; ``get_logger()`` (structlog's front end) and the
modules' ``logging.getLogger("torchkiln....")`` loggers write to the same handlers:

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

import logging
import os
import time
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

import structlog
from structlog.contextvars import bind_contextvars, merge_contextvars, unbind_contextvars
from structlog.stdlib import ProcessorFormatter

from torchkiln.logging.formatting import (
    TIMESTAMPER,
    check_level,
    plain_formatter,
    processor_formatter,
)

# process facts, importable from this module as from MMEngine's ``mmengine.logging.logger``
from torchkiln.logging.mm_logger import (
    MMLogger,
    _get_device_id as _get_device_id,
    _get_host_info as _get_host_info,
    _get_rank as _get_rank,
    _get_world_size as _get_world_size,
    print_log,
)
from torchkiln.logging.sinks import JsonlWriter, flush_all, register_flushable

__all__ = [
    "LOGGER_NAME",
    "MMLogger",
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
_RUN_CONTEXT = ("epoch", "iter", "mode")
_MAX_REMEMBERED = 10_000  # warning texts kept for de-duplication

_current: Any = None
_run_logger: MMLogger | None = None
_handlers: list[logging.Handler] = []
_context_source: Callable[[], Mapping[str, Any]] | None = None
_seen_warnings: set[str] = set()
_warned_once: set[str] = set()


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


def _run_logger_factory(*args: Any) -> logging.Logger:
    """structlog's logger factory: the run logger (the ``torchkiln`` logger before any)."""
    return _run_logger if _run_logger is not None else logging.getLogger(LOGGER_NAME)


def shutdown_logging() -> None:
    """Flush everything (:func:`flush_all`) and close the handlers :func:`setup_logging`
    added (the log files); the run logger stops being an ``MMLogger`` instance. Logging
    afterwards goes to a console-only setup."""
    global _current, _run_logger
    flush_all()
    std = logging.getLogger(LOGGER_NAME)
    for handler in _handlers:
        std.removeHandler(handler)
        if _run_logger is not None:
            _run_logger.removeHandler(handler)
        handler.close()
    _handlers.clear()
    if _run_logger is not None:
        MMLogger._unregister(_run_logger)
    _current = _run_logger = None


def setup_logging(
    log_dir: str | os.PathLike[str] | None,
    level: int | str = "INFO",
    rank: int = 0,
    tty: bool | None = None,
    *,
    timestamp: str | None = None,
    name: str = LOGGER_NAME,
) -> MMLogger:
    """Configure run logging and return the run logger, an :class:`MMLogger`.

    Calling it again replaces the previous setup (closing its files). The logger takes
    structlog-style keyword fields (``log.info("saved", path=p)``) and is a standard
    ``logging.Logger``; it becomes ``MMLogger.get_instance(name)`` and the current
    instance (``print_log(msg, logger='current')``).

    :param log_dir: folder for ``log.jsonl`` and ``<timestamp>.log``; ``None``: console only.
    :param level: ``'DEBUG'``, ``'INFO'``, ... or a ``logging`` level number.
    :param rank: the process rank; only rank 0 writes files and logs below WARNING.
    :param tty: console renderer on a TTY; default ``sys.stdout.isatty()``.
    :param timestamp: the text log's file name; default the current local time
        (``%Y%m%d_%H%M%S``).
    :param name: the logger's instance name (the runner uses its experiment name).
    :raises ConfigError: an unknown level.
    """
    global _current, _run_logger
    numeric = check_level(level)
    shutdown_logging()
    _seen_warnings.clear()  # a new run repeats nothing yet
    effective = numeric if rank == 0 else max(numeric, logging.WARNING)
    run_logger = MMLogger(name, LOGGER_NAME, log_level=numeric, rank=rank, tty=tty)
    run_logger.setLevel(effective)
    for handler in run_logger.handlers:  # the console; structlog drops repeated warnings
        handler.filters.clear()
        handler.setLevel(effective)  # other ranks show their warnings too
        _handlers.append(handler)
    if rank == 0 and log_dir is not None:
        os.makedirs(log_dir, exist_ok=True)
        stamp = timestamp or time.strftime("%Y%m%d_%H%M%S")
        json_file = _JsonlHandler(os.path.join(log_dir, "log.jsonl"))
        json_file.setFormatter(
            processor_formatter(
                _add_run_context,
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(default=str),
            )
        )
        text_path = os.path.join(log_dir, f"{stamp}.log")
        text_file = logging.FileHandler(text_path, encoding="utf-8")
        run_logger._log_file = text_path  # MMLogger.log_file: the run's text log
        text_file.setFormatter(plain_formatter(rank, LOGGER_NAME))
        for handler in (json_file, text_file):
            run_logger.addHandler(handler)
            _handlers.append(handler)
    # Modules log through logging.getLogger("torchkiln...."): same handlers, same files.
    std = logging.getLogger(LOGGER_NAME)
    std.setLevel(effective)
    std.propagate = False
    for handler in _handlers:
        std.addHandler(handler)
        register_flushable(handler)
    structlog.configure(
        processors=[
            merge_contextvars,
            structlog.stdlib.filter_by_level,
            structlog.stdlib.add_log_level,
            TIMESTAMPER,
            drop_repeated_warnings,
            ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=_run_logger_factory,
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,  # keeps structlog.testing.capture_logs working
    )
    MMLogger._register(run_logger)
    _run_logger = run_logger
    _current = structlog.get_logger(LOGGER_NAME)
    return run_logger


def get_logger() -> Any:
    """structlog's front end to the run logger (a ``BoundLogger``); sets up console-only
    logging when :func:`setup_logging` was not called."""
    if _current is None:
        setup_logging(None)
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
