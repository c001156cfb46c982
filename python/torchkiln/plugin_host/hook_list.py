"""A read-only, ordered view of a host's hooks: what ``runner.hooks`` returns.

Code written for MMEngine treats ``runner.hooks`` as the list of hook objects in call
order: it iterates it, indexes it, takes its length, checks ``isinstance`` on the
elements and reads ``hook.priority``. :class:`HookList` offers exactly that over a
:class:`~torchkiln.plugin_host.host.HookHost`, in the host's order (priority, then
registration), always current. Calling mount points goes through the host's facade
(``runner.dispatch``), never through this view; registering goes through
``runner.register_hook``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, overload

if TYPE_CHECKING:  # pragma: no cover
    from torchkiln.plugin_host.host import HookHost

__all__ = ["HookList"]

_READ_ONLY_HINT = (
    "register hooks with runner.register_hook(hook, priority) (or default_hooks/custom_hooks "
    "in the config) and remove one with runner.hook_host.unregister(name)"
)


class HookList(Sequence[Any]):
    """The hook objects of ``host`` in call order (priority 0 first, ties by registration).

    Supports ``len``, iteration, indexing and slicing (a slice is a plain ``list``),
    ``in``, ``index`` and ``count``. It is a view: hooks registered later appear in it.
    Changing it in place raises :class:`TypeError` naming the methods to use instead.

    :param host: the hook host whose registrations it shows.
    """

    __slots__ = ("_host",)

    def __init__(self, host: HookHost) -> None:
        self._host = host

    def _hooks(self) -> list[Any]:
        return self._host.get_plugins()

    @overload
    def __getitem__(self, index: int) -> Any: ...

    @overload
    def __getitem__(self, index: slice) -> list[Any]: ...

    def __getitem__(self, index: int | slice) -> Any:
        return self._hooks()[index]

    def __len__(self) -> int:
        return len(self._host)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._hooks())

    def __contains__(self, hook: object) -> bool:
        return any(existing is hook for existing in self._hooks())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, HookList):
            return self._hooks() == other._hooks()
        if isinstance(other, (list, tuple)):
            return self._hooks() == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # a changing view: not hashable, like a list

    def __repr__(self) -> str:
        return f"HookList([{', '.join(type(hook).__name__ for hook in self._hooks())}])"

    # ------------------------------------------------------------------ read-only
    def _read_only(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Refused: the view cannot be changed in place (register hooks on the runner)."""
        raise TypeError(
            f"runner.hooks is a read-only view of the registered hooks; {_READ_ONLY_HINT}"
        )

    __setitem__ = __delitem__ = __iadd__ = _read_only
    append = extend = insert = remove = pop = clear = sort = reverse = _read_only
