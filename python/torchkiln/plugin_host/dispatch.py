"""Dispatch functions: what the facade runs for a mount point.

For each mount point the host keeps the implementations in call order and builds one
function from them (:func:`build_dispatcher`): it completes the arguments (the hookspec's, in
order; any but ``runner`` left out is ``None``), then calls each implementation in a plain
loop. An implementation that takes only some of the arguments, or takes them by keyword, is
wrapped once at registration (:func:`select_arguments`), so the loop always passes the full
argument tuple.

An exception in a hook becomes a :class:`~torchkiln.plugin_host.errors.HookError` naming the
plugin, its distribution and the mount point, with the original as ``__cause__``;
pass-through exceptions only gain a note (see :mod:`torchkiln.plugin_host.errors`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from torchkiln.errors import UsageError, did_you_mean
from torchkiln.plugin_host.discovery import SPEC_ARGS
from torchkiln.plugin_host.errors import PASS_THROUGH, HookError, note_hook

if TYPE_CHECKING:  # pragma: no cover
    from torchkiln.plugin_host.host import PluginRecord

__all__ = ["build_dispatcher", "complete_arguments", "select_arguments"]


def complete_arguments(
    mount_point: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, ...]:
    """The full argument tuple of ``mount_point`` from a call's positional and keyword arguments.

    Arguments left out are ``None``; ``runner`` is required.

    :raises UsageError: too many arguments, an unknown or repeated one, or no ``runner``.
    """
    params = SPEC_ARGS[mount_point]
    if len(args) > len(params):
        raise UsageError(
            f"mount point {mount_point} takes {len(params)} arguments ({', '.join(params)}), "
            f"got {len(args)}"
        )
    for key in kwargs:
        if key not in params:
            raise UsageError(
                f"mount point {mount_point} has no argument {key!r}",
                hint=(did_you_mean(key, params) or "") + f" its arguments: {', '.join(params)}",
            )
        if params.index(key) < len(args):
            raise UsageError(
                f"mount point {mount_point} got argument {key!r} twice (by position and by name)"
            )
    if not args and "runner" not in kwargs:
        raise UsageError(f"calling mount point {mount_point} needs runner=...")
    return args + tuple(kwargs.get(name) for name in params[len(args) :])


def select_arguments(
    function: Callable[..., Any],
    positional: Sequence[int] | None,
    keywords: Sequence[tuple[str, int]],
) -> Callable[..., Any]:
    """``function`` made to take the full argument tuple.

    :param positional: indices of the arguments ``function`` takes by position; None when
        it takes all of them in order (then ``function`` is returned as it is).
    :param keywords: ``(name, index)`` of the arguments it takes by name.
    """
    if positional is None:  # the plan for "every argument, in order": never with keywords
        return function
    chosen = tuple(positional)
    named = tuple(keywords)

    def call_with_its_arguments(*args: Any) -> Any:
        return function(*[args[i] for i in chosen], **{name: args[i] for name, i in named})

    call_with_its_arguments.__qualname__ = getattr(
        function, "__qualname__", call_with_its_arguments.__qualname__
    )
    return call_with_its_arguments


def build_dispatcher(
    mount_point: str, calls: Sequence[tuple[PluginRecord, Callable[..., Any]]]
) -> Callable[..., None]:
    """A function calling ``calls`` in order with the mount point's arguments.

    :param mount_point: the mount point's name (the function is ``dispatch_<mount_point>``).
    :param calls: ``(record, function)`` per implementation, in call order; each function
        takes the mount point's full argument tuple (see :func:`select_arguments`).
    """
    calls = tuple(calls)
    arity = len(SPEC_ARGS[mount_point])

    def dispatch(*args: Any, **kwargs: Any) -> None:
        if kwargs or len(args) != arity:
            args = complete_arguments(mount_point, args, kwargs)
        try:
            for record, function in calls:  # noqa: B007 (record names the raiser below)
                function(*args)
        except PASS_THROUGH as exc:
            note_hook(exc, record, mount_point)  # record: the loop's current entry, the raiser
            raise
        except Exception as exc:
            raise HookError(record, mount_point, exc) from exc

    dispatch.__name__ = dispatch.__qualname__ = f"dispatch_{mount_point}"
    return dispatch
