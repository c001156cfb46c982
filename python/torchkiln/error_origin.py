"""Where an unexpected exception came from: torchkiln itself, or the user's or a plugin's code.

An exception that is not a :class:`~torchkiln.errors.TorchkilnError` is a bug in torchkiln
only when torchkiln's own code raised it. Walking the traceback from the innermost frame
outwards, frames of the standard library and of torch/numpy are passed over (user code calls
into them); the first other frame decides: inside the ``torchkiln`` package it is an
internal error, anywhere else it is the user's (or a plugin's) code. An error raised in a
DataLoader worker reaches the main process as text (torch's ``Original Traceback``); its
frames are read from that text.
"""

from __future__ import annotations

import os
import re
import sys
import sysconfig
import traceback
from dataclasses import dataclass
from types import TracebackType

__all__ = ["UserFrame", "find_user_frame", "format_user_error", "print_traceback"]

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_LIBRARY_PACKAGES = ("torch", "numpy", "importlib")
_WORKER_FRAME = re.compile(r'^\s*File "([^"]+)", line (\d+), in (\S+)\s*$')


@dataclass(frozen=True)
class UserFrame:
    """The innermost frame of user or plugin code where an error was raised."""

    filename: str
    lineno: int
    function: str
    line: str
    component: str | None  # the class whose method raised, when there is one
    distribution: str | None  # the installed distribution the file belongs to, if any

    def describe(self) -> str:
        """``file:line, in Class.method (distribution x)`` for an error message."""
        where = f"{self.filename}:{self.lineno}, in "
        where += f"{self.component}.{self.function}" if self.component else self.function
        if self.distribution:
            where += f" (distribution {self.distribution})"
        return where


def _stdlib_dirs() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    return tuple(os.path.realpath(paths[key]) for key in ("stdlib", "platstdlib") if key in paths)


def _is_library(filename: str, stdlib: tuple[str, ...]) -> bool:
    """Standard library, torch, numpy, or no file at all (built-ins, generated code)."""
    if filename.startswith("<") or not os.path.isabs(filename):
        return True
    real = os.path.realpath(filename)
    if real.startswith(stdlib) and "site-packages" not in real and "dist-packages" not in real:
        return True
    installed = "site-packages" in real or "dist-packages" in real
    return installed and any(f"{os.sep}{package}{os.sep}" in real for package in _LIBRARY_PACKAGES)


def _in_torchkiln(filename: str) -> bool:
    return os.path.realpath(filename).startswith(_PACKAGE_DIR + os.sep)


def _distribution_of(filename: str) -> str | None:
    """The installed distribution whose top-level package holds ``filename``, if any."""
    import importlib.metadata as md

    real = os.path.realpath(filename)
    for entry in sys.path:
        root = os.path.realpath(entry or os.getcwd())
        if not real.startswith(root + os.sep):
            continue
        top = os.path.relpath(real, root).split(os.sep)[0].removesuffix(".py")
        names = md.packages_distributions().get(top)
        if names:
            version = md.version(names[0])
            return f"{names[0]} {version}"
    return None


def _frames(tb: TracebackType | None) -> list[tuple[str, int, str, str | None]]:
    """``(filename, lineno, function, component)`` from the outermost frame to the innermost."""
    out = []
    while tb is not None:
        frame = tb.tb_frame
        self_obj = frame.f_locals.get("self")
        component = type(self_obj).__name__ if self_obj is not None else None
        out.append((frame.f_code.co_filename, tb.tb_lineno, frame.f_code.co_name, component))
        tb = tb.tb_next
    return out


def _worker_frames(exc: BaseException) -> list[tuple[str, int, str, str | None]]:
    """Frames of an error re-raised from a DataLoader worker (they are only in its text)."""
    text = str(exc)
    if "Original Traceback" not in text:
        return []
    return [
        (m.group(1), int(m.group(2)), m.group(3), None)
        for m in map(_WORKER_FRAME.match, text.splitlines())
        if m
    ]


def find_user_frame(exc: BaseException) -> UserFrame | None:
    """The user or plugin frame that raised ``exc``, or None when torchkiln raised it."""
    stdlib = _stdlib_dirs()
    for frames in (_worker_frames(exc), _frames(exc.__traceback__)):
        for filename, lineno, function, component in reversed(frames):
            if _is_library(filename, stdlib):
                continue
            if _in_torchkiln(filename):
                break  # torchkiln's own code raised it (or called the library that did)
            import linecache

            return UserFrame(
                filename=filename,
                lineno=lineno,
                function=function,
                line=linecache.getline(filename, lineno).strip(),
                component=component,
                distribution=_distribution_of(filename),
            )
    return None


def format_user_error(exc: BaseException, frame: UserFrame) -> str:
    """The message for an error in user or plugin code (no traceback)."""
    lines = [
        f"error in user code: {type(exc).__name__}: {_first_line(exc)}",
        f"  at: {frame.describe()}",
    ]
    if frame.line:
        lines.append(f"      {frame.line}")
    lines.append(
        "  hint: this error was raised by your code or a plugin's, not by torchkiln; "
        "rerun with --debug for the full traceback"
    )
    return "\n".join(lines)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    if "Original Traceback" in text:  # a DataLoader worker's error: its last line is the error
        last = [line for line in text.splitlines() if line.strip()][-1]
        return last.split(": ", 1)[1] if ": " in last else last
    return text.splitlines()[0] if text else ""


def print_traceback(exc: BaseException) -> None:
    """The full traceback (for ``--debug``)."""
    traceback.print_exception(type(exc), exc, exc.__traceback__)
