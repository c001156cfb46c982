"""``MMLogger`` and ``print_log``: MMEngine's logger API on a standard ``logging.Logger``.

An :class:`MMLogger` is a real ``logging.Logger``: ``unittest``'s ``assertLogs``, pytest and
any ``logging`` handler can attach to it. Loggers are looked up by instance name
(``MMLogger.get_instance(name, **kwargs)``; ``get_current_instance()`` is the one created
last); like MMEngine's, they live outside ``logging``'s hierarchy (no parent, so a root
configuration does not print their records twice) and log nothing below ERROR on ranks
other than 0 unless asked to.

structlog stays underneath. Every record an ``MMLogger`` passes to its handlers first goes
through structlog's configured processors (run context, level filter, dropping repeated
warnings, ``structlog.testing.capture_logs``); keyword arguments become fields of the
event (``logger.info("saved", path=p)``, as with structlog); the handlers render records
with structlog (see :mod:`torchkiln.logging.formatting`). The run logger of a
:class:`~torchkiln.runner.Runner` (``runner.logger``) is an ``MMLogger`` set up by
:func:`torchkiln.logging.logger.setup_logging`.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
import threading
import warnings
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, ClassVar

import structlog
from structlog.stdlib import ProcessorFormatter

from torchkiln.logging.formatting import (
    EVENT_ATTR,
    FIELDS_ATTR,
    DuplicateWarningFilter,
    StdoutHandler,
    check_level,
    console_formatter,
    method_name,
    plain_formatter,
)
from torchkiln.logging.history_buffer import LogArgumentError

__all__ = ["DEFAULT_LOGGER_NAME", "MMLogger", "print_log"]

#: The ``name`` attribute of loggers made without ``logger_name`` (MMEngine's is 'mmengine').
DEFAULT_LOGGER_NAME = "torchkiln"
#: Instance name of the logger ``get_current_instance`` makes when none exists.
DEFAULT_INSTANCE = "torchkiln"
#: MMEngine's name for its default instance; it names torchkiln's default instance, so code
#: written for MMEngine (``MMLogger.get_instance('mmengine')``) reaches the same logger.
MMENGINE_INSTANCE = "mmengine"


def _instance_key(name: str) -> str:
    return DEFAULT_INSTANCE if name == MMENGINE_INSTANCE else name


_lock = threading.RLock()


# ---------------------------------------------------------------------- process facts
def _get_rank() -> int:
    """This process's rank (0 unless ``torch.distributed`` is imported and initialised)."""
    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        return int(dist.get_rank())
    return 0


def _get_world_size() -> int:
    """The number of processes (1 unless ``torch.distributed`` is initialised)."""
    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        return int(dist.get_world_size())
    return 1


def _get_device_id() -> int | str:
    """This process's GPU id: ``CUDA_VISIBLE_DEVICES[LOCAL_RANK]`` when CUDA is available,
    else ``LOCAL_RANK`` (a MIG instance id stays a string)."""
    local_rank = int(os.getenv("LOCAL_RANK", "0"))
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available():
        return local_rank
    visible = os.getenv("CUDA_VISIBLE_DEVICES")
    devices = visible.split(",") if visible is not None else list(range(torch.cuda.device_count()))
    try:
        return int(devices[local_rank])
    except ValueError:
        return str(devices[local_rank])


def _get_host_info() -> str:
    """``user@host``; empty when either is unknown (in some containers)."""
    import getpass
    import socket

    try:
        return f"{getpass.getuser()}@{socket.gethostname()}"
    except Exception as exc:  # getuser raises various errors without a passwd entry
        warnings.warn(f"host or user not found: {exc}", stacklevel=2)
        return ""


def _file_handler_classes() -> dict[str, type[logging.FileHandler]]:
    """The ``FileHandler`` classes of ``logging.handlers`` by name."""
    found: dict[str, type[logging.FileHandler]] = {"FileHandler": logging.FileHandler}
    for name in dir(logging.handlers):
        obj = getattr(logging.handlers, name)
        if isinstance(obj, type) and issubclass(obj, logging.FileHandler):
            found[name] = obj
    return found


def _make_file_handler(
    log_file: str, file_mode: str, cfg: Mapping[str, Any] | None
) -> logging.FileHandler:
    if cfg is None:
        return logging.FileHandler(log_file, file_mode, encoding="utf-8")
    options = dict(cfg)
    kind = options.pop("type", None)
    classes = _file_handler_classes()
    if kind not in classes:
        raise LogArgumentError(
            f"file_handler_cfg.type {kind!r} is not a file handler of logging.handlers; "
            "one of " + ", ".join(sorted(classes))
        )
    options.setdefault("filename", log_file)
    return classes[kind](**options)


# ---------------------------------------------------------------------- the logger
def _through_structlog(logger: logging.Logger, record: logging.LogRecord) -> bool:
    """Give ``record`` its structlog event (:data:`EVENT_ATTR`); False when structlog's
    processors drop it (a repeated warning, ``capture_logs``, a level filter)."""
    if isinstance(record.msg, dict) and hasattr(record, "_logger") and hasattr(record, "_name"):
        # made by structlog (get_logger()): processed already; keep a readable message
        made = record.msg
        setattr(record, EVENT_ATTR, made)
        record.msg, record.args = str(made.get("event", "")), ()
        del record.__dict__["_logger"], record.__dict__["_name"]
        return True
    if getattr(record, EVENT_ATTR, None) is not None:  # handled once already
        return True
    event: Any = {"event": record.getMessage(), **(getattr(record, FIELDS_ATTR, None) or {})}
    if not structlog.is_configured():
        setattr(record, EVENT_ATTR, event)
        return True
    if record.exc_info:
        event["exc_info"] = record.exc_info
    method = method_name(record.levelno)
    try:
        for processor in structlog.get_config()["processors"]:
            if processor is ProcessorFormatter.wrap_for_formatter:
                break  # rendering is the handlers' job
            event = processor(logger, method, event)
    except structlog.DropEvent:
        return False
    if isinstance(event, dict):
        event.pop("exc_info", None)  # the record keeps it; formatters render it
        setattr(record, EVENT_ATTR, event)
    return True


class MMLogger(logging.Logger):
    """A ``logging.Logger`` found by instance name, rank-aware, rendered by structlog.

    :param name: the instance name (:meth:`get_instance` finds the logger by it).
    :param logger_name: the ``name`` attribute of the logger, shown in every line.
    :param log_file: also write plain lines to this file (its folder is created).
    :param log_level: the level of the handlers (a name or a number); the logger itself
        stays at ``NOTSET``, as in MMEngine.
    :param file_mode: ``'w'`` (a new file) or ``'a'`` (append).
    :param distributed: every rank writes its own file
        (``<stem>_<user@host>_device<id>_rank<r><suffix>``); otherwise only rank 0 writes.
        A ``DEBUG`` level does the same when there is more than one process.
    :param file_handler_cfg: another file handler of ``logging.handlers``:
        ``{type: 'RotatingFileHandler', maxBytes: ..., ...}``.
    :param rank: the process rank; default from ``torch.distributed``.
    :param tty: colourful console lines; default ``sys.stdout.isatty()``.

    Ranks other than 0 print only ERROR and above on the console (the run logger of
    :func:`~torchkiln.logging.logger.setup_logging` prints their warnings too). Warnings
    with the same text are printed once per handler.
    """

    _instance_dict: ClassVar[OrderedDict[str, MMLogger]] = OrderedDict()

    def __init__(
        self,
        name: str,
        logger_name: str = DEFAULT_LOGGER_NAME,
        log_file: str | os.PathLike[str] | None = None,
        log_level: int | str = "INFO",
        file_mode: str = "w",
        distributed: bool = False,
        file_handler_cfg: Mapping[str, Any] | None = None,
        *,
        rank: int | None = None,
        tty: bool | None = None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise LogArgumentError(f"an MMLogger needs a non-empty str name, got {name!r}")
        super().__init__(logger_name)
        self._instance_name = name
        level = check_level(log_level)
        rank = _get_rank() if rank is None else rank
        if tty is None:
            tty = bool(getattr(sys.stdout, "isatty", lambda: False)())
        console = StdoutHandler()
        console.setFormatter(console_formatter(tty, rank, logger_name))
        console.setLevel(level if rank == 0 else max(level, logging.ERROR))
        console.addFilter(DuplicateWarningFilter())
        self.handlers.append(console)
        self._log_file: str | None = None
        if log_file is None:
            return
        path = os.fspath(log_file)
        per_rank = (level <= logging.DEBUG or distributed) and _get_world_size() > 1
        if per_rank:
            stem, suffix = os.path.splitext(os.path.basename(path))
            host = _get_host_info()
            tag = f"{host}_" if host else ""
            path = os.path.join(
                os.path.dirname(path), f"{stem}_{tag}device{_get_device_id()}_rank{rank}{suffix}"
            )
        self._log_file = path
        if rank == 0 or per_rank:
            if os.path.dirname(path):
                os.makedirs(os.path.dirname(path), exist_ok=True)
            handler = _make_file_handler(path, file_mode, file_handler_cfg)
            handler.setFormatter(plain_formatter(rank, logger_name))
            handler.setLevel(level)
            handler.addFilter(DuplicateWarningFilter())
            self.handlers.append(handler)

    # ------------------------------------------------------------------ instances
    @property
    def instance_name(self) -> str:
        """The name :meth:`get_instance` finds this logger by."""
        return self._instance_name

    @property
    def log_file(self) -> str | None:
        """The log file path (with the rank suffix when every rank writes one), or None."""
        return self._log_file

    @classmethod
    def get_instance(cls, name: str, **kwargs: Any) -> MMLogger:
        """The logger called ``name``; created with ``kwargs`` if there is none yet
        (``kwargs`` for an existing logger are ignored, with a warning). ``'mmengine'``
        (MMEngine's default instance) names the default instance, ``'torchkiln'``."""
        if not isinstance(name, str):
            raise LogArgumentError(f"the instance name must be a str, got {type(name).__name__}")
        name = _instance_key(name)
        with _lock:
            logger = cls._instance_dict.get(name)
            if logger is None:
                logger = cls._instance_dict[name] = cls(name, **kwargs)
            elif kwargs:
                warnings.warn(
                    f"MMLogger {name!r} exists already; get_instance ignores {sorted(kwargs)}",
                    stacklevel=2,
                )
            return logger

    @classmethod
    def get_current_instance(cls) -> MMLogger:
        """The logger created last (a console logger named ``'torchkiln'`` if none is)."""
        with _lock:
            if not cls._instance_dict:
                cls.get_instance(DEFAULT_INSTANCE)
            return next(reversed(cls._instance_dict.values()))

    @classmethod
    def check_instance_created(cls, name: str) -> bool:
        """Whether a logger called ``name`` exists (``'mmengine'``: the default instance)."""
        return _instance_key(name) in cls._instance_dict

    @classmethod
    def _register(cls, logger: MMLogger) -> None:
        """Make ``logger`` the instance of its name and the current one."""
        with _lock:
            cls._instance_dict.pop(logger.instance_name, None)
            cls._instance_dict[logger.instance_name] = logger

    @classmethod
    def _unregister(cls, logger: MMLogger) -> None:
        with _lock:
            if cls._instance_dict.get(logger.instance_name) is logger:
                del cls._instance_dict[logger.instance_name]

    # ------------------------------------------------------------------ logging
    def _log(  # type: ignore[override,unused-ignore]
        self,
        level: int,
        msg: object,
        args: Any,
        exc_info: Any = None,
        extra: Mapping[str, object] | None = None,
        stack_info: bool = False,
        stacklevel: int = 1,
        **fields: Any,
    ) -> None:
        """``logging.Logger._log``, plus keyword fields for the structlog event."""
        if fields:
            extra = {**(extra or {}), FIELDS_ATTR: fields}
        super()._log(level, msg, args, exc_info, extra, stack_info, stacklevel + 1)

    def callHandlers(self, record: logging.LogRecord) -> None:
        """Run structlog's processors on ``record``, then hand it to this logger's own
        handlers (no parents, no ``logging.lastResort``)."""
        if not _through_structlog(self, record):
            return
        for handler in self.handlers:
            if record.levelno >= handler.level:
                handler.handle(record)

    def setLevel(self, level: int | str) -> None:
        """Set the logger's level (and forget the level caches of every ``MMLogger``)."""
        self.level = logging._checkLevel(level)  # type: ignore[attr-defined]
        with _lock:
            for logger in [self, *MMLogger._instance_dict.values()]:
                logger._cache.clear()  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        level = logging.getLevelName(self.getEffectiveLevel())
        return f"<MMLogger {self.instance_name!r} name={self.name!r} ({level})>"


# ---------------------------------------------------------------------- print_log
def print_log(msg: Any, logger: Any = None, level: int | str = logging.INFO) -> None:
    """Print or log ``msg`` (MMEngine's ``print_log``).

    :param msg: the message.
    :param logger: ``None``: ``print`` it; ``'silent'``: drop it; ``'current'``: the logger
        created last (:meth:`MMLogger.get_current_instance`, the run logger during a run);
        another str: the ``MMLogger`` of that instance name; a ``logging.Logger``: that
        logger; any other object with ``debug``/``info``/... methods (a structlog logger):
        the method of the level.
    :param level: a ``logging`` level number or name.
    :raises ValueError: no ``MMLogger`` has the given name.
    :raises TypeError: ``logger`` is none of the above.
    """
    if logger is None:
        print(msg)
        return
    if isinstance(logger, logging.Logger):
        logger.log(check_level(level), msg)
        return
    if isinstance(logger, str):
        if logger == "silent":
            return
        if logger == "current":
            MMLogger.get_current_instance().log(check_level(level), msg)
            return
        if not MMLogger.check_instance_created(logger):
            known = ", ".join(repr(n) for n in MMLogger._instance_dict) or "none yet"
            raise ValueError(
                f"print_log: no MMLogger named {logger!r} was created (created: {known}); "
                "use 'current' for the run logger"
            )
        MMLogger.get_instance(logger).log(check_level(level), msg)
        return
    numeric = check_level(level)
    method = getattr(logger, method_name(numeric), None)
    if callable(method) and not isinstance(logger, type):
        method(msg)
        return
    raise TypeError(
        "print_log: logger must be None, 'silent', 'current', a logger name, a logging.Logger "
        f"or an object with info/warning/... methods, got {type(logger).__name__}"
    )
