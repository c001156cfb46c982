"""Logging: the message hub, scalar histories, log lines and the structlog setup.

``MessageHub`` holds the run's scalars (bounded histories; tensors are read only at log
intervals) and runtime information; ``LogProcessor`` formats them into MMEngine-shaped
lines; ``setup_logging`` sends the lines to the console, ``log.jsonl`` and a text file
through the run logger, an ``MMLogger`` (a standard ``logging.Logger`` that structlog
processes and renders; ``print_log`` writes to it as in MMEngine).
JSON-lines files are written by a background thread (:mod:`torchkiln.logging.sinks`);
``flush_all()`` pushes every log, scalar and visualizer record to disk (the signal and
crash paths call it), ``shutdown_logging()`` also closes the log files.

The structlog side (:mod:`torchkiln.logging.logger`) is imported on first use: importing
structlog costs more than everything else here together.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from torchkiln.logging.history_buffer import DEFAULT_MAX_LENGTH, HistoryBuffer
from torchkiln.logging.log_processor import LogProcessor
from torchkiln.logging.message_hub import MessageHub
from torchkiln.logging.sinks import JsonlWriter, close_all, flush_all

_LOGGER_EXPORTS = (
    "MMLogger",
    "bind_run_context",
    "clear_run_context",
    "get_logger",
    "print_log",
    "set_run_context_source",
    "setup_logging",
    "shutdown_logging",
    "warn_once",
)

__all__ = [
    "DEFAULT_MAX_LENGTH",
    "HistoryBuffer",
    "JsonlWriter",
    "LogProcessor",
    "MessageHub",
    "close_all",
    "flush_all",
    *_LOGGER_EXPORTS,
]


def __getattr__(name: str) -> Any:
    if name in _LOGGER_EXPORTS:
        value = getattr(importlib.import_module("torchkiln.logging.logger"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'torchkiln.logging' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # pragma: no cover
    from torchkiln.logging.logger import (
        MMLogger as MMLogger,
        bind_run_context as bind_run_context,
        clear_run_context as clear_run_context,
        get_logger as get_logger,
        print_log as print_log,
        set_run_context_source as set_run_context_source,
        setup_logging as setup_logging,
        shutdown_logging as shutdown_logging,
        warn_once as warn_once,
    )
