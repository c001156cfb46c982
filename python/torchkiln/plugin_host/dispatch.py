"""Dispatch functions: one generated Python function per mount point and call list.

Whenever a registration changes a mount point's call list, the host builds a function with
the mount point's signature whose body calls each implementation by name, in order, with
exactly the arguments it takes. For ``after_train_iter`` with a hook that takes every
argument and one that takes only ``runner``::

    def dispatch_after_train_iter(runner, batch_idx, data_batch=None, outputs=None):
        _tk_k = 0
        try:
            _tk_h0(runner, batch_idx, data_batch, outputs)
            _tk_k = 1
            _tk_h1(runner)
        except _tk_PASS_THROUGH as _tk_exc:
            _tk_note(_tk_exc, _tk_records[_tk_k], 'after_train_iter')
            raise
        except Exception as _tk_exc:
            raise _tk_hook_error(_tk_records[_tk_k], 'after_train_iter', _tk_exc) from _tk_exc

Why generated: the iteration mount points run every step, and a generic loop over call
entries paid per hook for unpacking the entry, testing its argument plan and packing the
arguments, plus a frame of its own: about 7,000 machine instructions per step for the default
hooks against about 3,000 for this (callgrind, CPython 3.11). The source is registered with
:mod:`linecache`, so tracebacks through a dispatch function show its lines.
"""

from __future__ import annotations

import hashlib
import linecache
from collections.abc import Callable, Sequence
from functools import lru_cache
from types import CodeType
from typing import Any

__all__ = ["build_dispatcher"]

# Prefix of every name the generated code defines, so none can clash with a parameter.
_PREFIX = "_tk_"


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
) -> Callable[..., None] | None:
    """A function calling ``calls`` in order, with ``signature``; a hook's exception is
    attributed to the hook that raised it. None when ``calls`` is empty.

    :param mount_point: the mount point's name (the function is ``dispatch_<mount_point>``).
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
    if not calls:
        return None  # nothing to call: the facade skips the mount point
    if not mount_point.isidentifier() or not all(name.isidentifier() for name in params):
        raise ValueError(f"not a mount point name and parameters: {mount_point!r}, {list(params)!r}")
    if any(name.startswith(_PREFIX) for name in params):
        raise ValueError(f"mount point parameters must not start with {_PREFIX!r}: {list(params)!r}")
    namespace: dict[str, Any] = {
        "__name__": __name__,
        f"{_PREFIX}PASS_THROUGH": pass_through,
        f"{_PREFIX}note": note,
        f"{_PREFIX}hook_error": hook_error,
        f"{_PREFIX}records": tuple(record for *_, record in calls),
    }
    function_name = f"dispatch_{mount_point}"
    lines = [f"def {function_name}({signature}):", f"    {_PREFIX}k = 0", "    try:"]
    for index, (function, positional, keywords, _record) in enumerate(calls):
        if any(keyword not in params for keyword, _ in keywords):
            raise ValueError(f"keyword arguments {[k for k, _ in keywords]!r} are not all in {list(params)!r}")
        name = f"{_PREFIX}h{index}"
        namespace[name] = function
        if index:
            lines.append(f"        {_PREFIX}k = {index}")
        lines.append("        " + _call_source(name, params, positional, keywords))
    lines += [
        f"    except {_PREFIX}PASS_THROUGH as {_PREFIX}exc:",
        f"        {_PREFIX}note({_PREFIX}exc, {_PREFIX}records[{_PREFIX}k], {mount_point!r})",
        "        raise",
        f"    except Exception as {_PREFIX}exc:",
        f"        raise {_PREFIX}hook_error({_PREFIX}records[{_PREFIX}k], {mount_point!r}, {_PREFIX}exc) "
        f"from {_PREFIX}exc",
    ]
    source = "\n".join(lines) + "\n"
    code = _compile(source)
    # The source, for tracebacks through the function (mtime None: linecache never checks it
    # against a file). Set on every build, in case something cleared linecache meanwhile.
    linecache.cache[code.co_filename] = (len(source), None, source.splitlines(keepends=True), code.co_filename)
    exec(code, namespace)  # noqa: S102 - source built above from identifiers and indices only
    # Popped, not read: the function must not stay in its own globals (a reference cycle that
    # would keep the hooks alive after they are unregistered, until the cycle collector ran).
    return namespace.pop(function_name)  # type: ignore[no-any-return]


@lru_cache(maxsize=512)
def _compile(source: str) -> CodeType:
    """Compile a dispatch function's source once (the same call plans give the same source),
    under a file name of its own."""
    digest = hashlib.blake2b(source.encode(), digest_size=8).hexdigest()
    return compile(source, f"<torchkiln dispatch {digest}>", "exec")
