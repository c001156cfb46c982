"""How an exception raised by a hook reaches the runner.

An exception in a hook becomes a :class:`HookError` naming the plugin, its distribution and
the mount point, with the original as ``__cause__`` (its traceback is kept). Interrupts
(``KeyboardInterrupt``, ``SystemExit``, :class:`~torchkiln.errors.RunInterrupted`), user
errors (:class:`~torchkiln.errors.ConfigError` and subclasses, which only gain a note) and a
``HookError`` from a nested call pass through unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torchkiln.errors import ConfigError, PluginError, RunInterrupted, add_note

if TYPE_CHECKING:  # pragma: no cover
    from torchkiln.plugin_host.host import PluginRecord

__all__ = ["PASS_THROUGH", "HookError", "note_hook"]


class HookError(PluginError):
    """A hook raised: names the plugin, its distribution and the mount point.

    The original exception is ``__cause__`` (and :attr:`original`).

    :param record: the registration of the plugin that raised.
    :param mount_point: the mount point being called.
    :param original: the exception the hook raised.
    """

    def __init__(self, record: PluginRecord, mount_point: str, original: BaseException) -> None:
        self.plugin_name = record.name
        self.plugin_type = record.type_name
        self.dist = record.source
        self.mount_point = mount_point
        self.original = original
        if record.dist:
            hint = (
                f"the plugin comes from the distribution {record.dist!r}: update or report it, or "
                f"disable it with `plugins: {{disable: [{record.name}]}}`"
            )
        elif self.dist == "built-in":
            hint = "the original traceback is chained above; if it ends in torchkiln itself, please report it"
        else:
            hint = "the original traceback is chained above (the CLI prints it with --debug)"
        reason = (
            f"{type(original).__name__}: {original}" if str(original) else type(original).__name__
        )
        super().__init__(
            f"hook {record.label} ({self.dist}) failed in {mount_point}: {reason}",
            where=f"plugin {record.name!r}, distribution {self.dist}, mount point {mount_point}",
            hint=hint,
        )


#: Exceptions a hook may raise on purpose that must reach the runner unchanged.
PASS_THROUGH = (HookError, ConfigError, RunInterrupted)
_NOTED = "_torchkiln_hook_noted"


def note_hook(exc: BaseException, record: PluginRecord, mount_point: str) -> None:
    """Add a note naming the hook to a pass-through exception (once: nested calls re-raise it)."""
    if not isinstance(exc, HookError) and not getattr(exc, _NOTED, False):
        setattr(exc, _NOTED, True)
        add_note(exc, f"raised by hook {record.label} ({record.source}) in {mount_point}")
