"""How log records look: structlog renders every record the standard ``logging`` handlers get.

The handlers of a run (console, text file, ``log.jsonl``) carry structlog
``ProcessorFormatter``\\ s, so a record looks the same whether it came from structlog
(``get_logger()``), from a :class:`~torchkiln.logging.mm_logger.MMLogger` or from a module's
``logging.getLogger(__name__)``. A record an ``MMLogger`` processed already carries its
structlog event (fields given as keyword arguments, run context, level) in the attribute
:data:`EVENT_ATTR`; the formatters start from it.

Plain lines read ``<date> <time> - <logger name> - <LEVEL> - <message> key=value ...``
(prefixed with ``[rank N]`` on ranks other than 0); a TTY console gets structlog's
colourful renderer.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog
from structlog.contextvars import get_contextvars, merge_contextvars
from structlog.stdlib import ProcessorFormatter

from torchkiln.errors import ConfigError, did_you_mean

__all__ = [
    "EVENT_ATTR",
    "FIELDS_ATTR",
    "LEVELS",
    "DuplicateWarningFilter",
    "StdoutHandler",
    "check_level",
    "console_formatter",
    "method_name",
    "plain_formatter",
    "processor_formatter",
]

#: Record attribute holding the structlog event an ``MMLogger`` made for the record.
EVENT_ATTR = "kiln_event"
#: Record attribute holding the keyword fields of an ``MMLogger`` call (``log.info(msg, k=v)``).
FIELDS_ATTR = "kiln_fields"

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

TIMESTAMPER = structlog.processors.TimeStamper(fmt="iso", utc=False)  # local, like the console


def check_level(level: int | str) -> int:
    """A ``logging`` level number from a number or a name (any case).

    :raises ConfigError: an unknown name (with a suggestion).
    """
    if isinstance(level, int) and not isinstance(level, bool):
        return level
    if isinstance(level, str) and level.upper() in LEVELS:
        return int(logging.getLevelName(level.upper()))
    raise ConfigError(
        f"unknown log level {level!r}",
        where="log_level",
        hint=did_you_mean(str(level).upper(), LEVELS) or "one of " + ", ".join(LEVELS),
    )


def method_name(levelno: int) -> str:
    """The structlog method name for a level number (custom levels round down)."""
    for threshold, name in (
        (logging.CRITICAL, "critical"),
        (logging.ERROR, "error"),
        (logging.WARNING, "warning"),
        (logging.INFO, "info"),
    ):
        if levelno >= threshold:
            return name
    return "debug"


def _start_event(logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> Any:
    """First step for records structlog did not make: adopt the event an ``MMLogger``
    prepared, then add the run context, the level and a timestamp."""
    record = event_dict.get("_record")
    prepared = getattr(record, EVENT_ATTR, None)
    if prepared is not None:
        adopted = dict(prepared)
        for key in ("_record", "_from_structlog", "exc_info", "stack_info"):
            if key in event_dict:
                adopted.setdefault(key, event_dict[key])
        event_dict = adopted
    for processor in (merge_contextvars, structlog.stdlib.add_log_level, TIMESTAMPER):
        event_dict = processor(logger, method, event_dict)
    return event_dict


def hide_context(logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> Any:
    """Leave the run context out of human-readable lines (the JSON file keeps it)."""
    for key in get_contextvars():
        event_dict.pop(key, None)
    return event_dict


def plain_renderer(rank: int, name: str) -> Any:
    """``<date> <time> - <name> - <LEVEL> - <message> key=value ...`` (and the traceback)."""
    prefix = f"[rank {rank}] " if rank else ""

    def render(logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> str:
        stamp = str(event_dict.pop("timestamp", ""))[:19].replace("T", " ")
        level = str(event_dict.pop("level", method)).upper()
        event = event_dict.pop("event", "")
        exception = event_dict.pop("exception", None)
        extras = "".join(f" {key}={value}" for key, value in event_dict.items())
        line = f"{prefix}{stamp} - {name} - {level} - {event}{extras}"
        return f"{line}\n{exception}" if exception else line

    return render


def processor_formatter(*processors: Any) -> ProcessorFormatter:
    """A formatter rendering every record (structlog's or not) with ``processors``."""
    return ProcessorFormatter(
        processors=[ProcessorFormatter.remove_processors_meta, *processors],
        foreign_pre_chain=[_start_event],
    )


def plain_formatter(rank: int, name: str) -> ProcessorFormatter:
    """Plain lines without the run context (text files, consoles that are not a TTY)."""
    return processor_formatter(
        hide_context, structlog.processors.format_exc_info, plain_renderer(rank, name)
    )


def console_formatter(tty: bool, rank: int, name: str) -> ProcessorFormatter:
    """structlog's colourful renderer on a TTY, plain lines otherwise."""
    if tty:
        renderer = structlog.dev.ConsoleRenderer(
            colors=True, exception_formatter=structlog.dev.RichTracebackFormatter(show_locals=False)
        )
        return processor_formatter(hide_context, renderer)
    return plain_formatter(rank, name)


class StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg,unused-ignore]
    """Writes to ``sys.stdout`` as it is at each record (a progress bar may redirect it)."""

    terminator = "\n"

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    @property  # type: ignore[override,unused-ignore]
    def stream(self) -> Any:
        return sys.stdout

    @stream.setter
    def stream(self, value: Any) -> None:
        pass  # always the current sys.stdout

    def emit(self, record: logging.LogRecord) -> None:
        """Write the formatted record and a newline to the current ``sys.stdout``."""
        try:
            stream = sys.stdout
            stream.write(self.format(record) + self.terminator)
            stream.flush()
        except RecursionError:
            raise
        except Exception:  # logging's own policy
            self.handleError(record)

    def flush(self) -> None:
        """Flush the current ``sys.stdout`` (never raises)."""
        with contextlib.suppress(Exception):
            sys.stdout.flush()


class DuplicateWarningFilter(logging.Filter):
    """Let a warning through the first time its text is seen only (other levels pass)."""

    def __init__(self, limit: int = 10_000) -> None:
        super().__init__()
        self.limit = limit
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        """Whether to pass ``record``: False for a warning whose text was seen before."""
        if record.levelno != logging.WARNING:
            return True
        text = record.getMessage()
        if text in self.seen:
            return False
        if len(self.seen) >= self.limit:  # bounded: forget everything when full
            self.seen.clear()
        self.seen.add(text)
        return True
