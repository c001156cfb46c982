"""Dispatch functions: one generated Python function per mount point and call list.

Whenever a registration changes a mount point's call list, the host builds a function with
the mount point's signature whose body calls each implementation by name, in order, with
exactly the arguments it takes. For ``after_train_iter`` with a hook that takes every
argument and one that takes only ``runner``::

    def after_train_iter(runner, batch_idx, data_batch=None, outputs=None):
        k = 0
        try:
            h0(runner, batch_idx, data_batch, outputs)
            k = 1
            h1(runner)
        except PASS_THROUGH as exc:
            note(exc, records[k], 'after_train_iter')
            raise
        except Exception as exc:
            raise hook_error(records[k], 'after_train_iter', exc) from exc

Why generated: the iteration mount points run every step, and a generic loop over call
entries paid per hook for unpacking the entry, testing its argument plan and packing the
arguments, plus a frame of its own: about 7,000 machine instructions per step for the default
hooks against about 3,000 for this (callgrind, CPython 3.11). The source is registered with
:mod:`linecache`, so tracebacks through a dispatch function show its lines.
"""

from __future__ import annotations

import linecache
import zlib
from collections.abc import Callable, Sequence
from functools import lru_cache
from types import CodeType
from typing import Any

__all__ = ["build_dispatcher"]


def _call_source(name: str, params: Sequence[str], positional: Sequence[int] | None,
                 keywords: Sequence[tuple[str, int]]) -> str:
    """``name(args)`` passing the mount point's parameters by the implementation's plan."""
    chosen = list(params) if positional is None else [params[i] for i in positional]
    chosen += [f"{keyword}={params[i]}" for keyword, i in keywords]
    return f"{name}({', '.join(chosen)})"


def build_dispatcher(
    mount_point: str,
    signature: str,
    params: Sequence[str],
    calls: Sequence[tuple[Callable[..., Any], Sequence[int] | None, Sequence[tuple[str, int]], Any]],
    pass_through: tuple[type[BaseException], ...],
    note: Callable[[BaseException, Any, str], None],
    hook_error: Callable[[Any, str, BaseException], BaseException],
) -> Callable[..., None]:
    """A function calling ``calls`` in order, with ``signature``; a hook's exception is
    attributed to the hook that raised it.

    :param mount_point: the mount point's name (also the function's name).
    :param signature: the parameter list as source, defaults included
        (``"runner, batch_idx, data_batch=None"``); its defaults must be literals.
    :param params: the parameter names in order (``runner`` first).
    :param calls: ``(function, positional, keywords, record)`` per implementation, in call
        order: ``positional`` lists the indices into ``params`` passed by position (None: all,
        in order), ``keywords`` the ``(name, index)`` pairs passed by name.
    :param pass_through: exception types re-raised unchanged after ``note(exc, record,
        mount_point)``.
    :param note: called on a pass-through exception before it propagates.
    :param hook_error: builds the exception raised (from the original) for any other
        ``Exception``; ``BaseException`` that is not an ``Exception`` propagates unchanged.
    """
    namespace: dict[str, Any] = {
        "PASS_THROUGH": pass_through,
        "note": note,
        "hook_error": hook_error,
        "records": tuple(record for *_, record in calls),
    }
    lines = [f"def {mount_point}({signature}):"]
    if not calls:
        lines.append("    pass")
    else:
        lines += ["    k = 0", "    try:"]
        for index, (function, positional, keywords, _record) in enumerate(calls):
            name = f"h{index}"
            namespace[name] = function
            if index:
                lines.append(f"        k = {index}")
            lines.append("        " + _call_source(name, params, positional, keywords))
        lines += [
            "    except PASS_THROUGH as exc:",
            f"        note(exc, records[k], {mount_point!r})",
            "        raise",
            "    except Exception as exc:",
            f"        raise hook_error(records[k], {mount_point!r}, exc) from exc",
        ]
    source = "\n".join(lines) + "\n"
    code = _compile(source)
    # The source, for tracebacks through the function (mtime None: linecache never checks it
    # against a file). Set on every build, in case something cleared linecache meanwhile.
    linecache.cache[code.co_filename] = (len(source), None, source.splitlines(keepends=True), code.co_filename)
    exec(code, namespace)  # noqa: S102 - source built above from names and indices only
    return namespace[mount_point]  # type: ignore[no-any-return]


@lru_cache(maxsize=512)
def _compile(source: str) -> CodeType:
    """Compile a dispatch function's source once (the same call plans give the same source),
    under a file name of its own."""
    return compile(source, f"<torchkiln dispatch {zlib.crc32(source.encode()):08x}>", "exec")
