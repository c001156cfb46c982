"""The typed hook facade: the one place the runner calls mount points through.

Each mount point is a method with the hookspec's arguments. The
:class:`~torchkiln.plugin_host.host.HookHost` generates one dispatch function per mount point
from the ordered call list, with the argument selection of every implementation decided at
registration (see :mod:`torchkiln.plugin_host.dispatch`), and installs it on the facade under
the mount point's name: ``facade.after_train_iter`` *is* that function, with the same
parameters as the method it shadows.

Cost: a mount point with implementations is one call to its dispatch function, then one call
per implementation; one with none is a call to an empty method.

An exception in a hook becomes a :class:`HookError` naming the plugin, its distribution and
the mount point, with the original as ``__cause__`` (its traceback is kept). Interrupts
(``KeyboardInterrupt``, ``SystemExit``, :class:`~torchkiln.errors.RunInterrupted`), user
errors (:class:`~torchkiln.errors.ConfigError` and subclasses, which only gain a note) and a
``HookError`` from a nested call pass through unchanged.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from torchkiln.errors import ConfigError, PluginError, RunInterrupted, UsageError, did_you_mean
from torchkiln.plugin_host.discovery import SPEC_ARGS, unknown_mount_point

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable, Mapping, Sequence

    from torchkiln.plugin_host.host import HookHost, PluginRecord

__all__ = ["DISPATCH_SIGNATURES", "PASS_THROUGH", "HookError", "HookFacade", "note_hook"]


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
            hint = (f"the plugin comes from the distribution {record.dist!r}: update or report it, or "
                    f"disable it with `plugins: {{disable: [{record.name}]}}`")
        elif self.dist == "built-in":
            hint = "the original traceback is chained above; if it ends in torchkiln itself, please report it"
        else:
            hint = "the original traceback is chained above (the CLI prints it with --debug)"
        reason = f"{type(original).__name__}: {original}" if str(original) else type(original).__name__
        super().__init__(
            f"hook {record.label} ({self.dist}) failed in {mount_point}: {reason}",
            where=f"plugin {record.name!r}, distribution {self.dist}, mount point {mount_point}",
            hint=hint,
        )


# Exceptions a hook may raise on purpose that must reach the runner unchanged.
PASS_THROUGH = (HookError, ConfigError, RunInterrupted)
_NOTED = "_torchkiln_hook_noted"


def note_hook(exc: BaseException, record: PluginRecord, mount_point: str) -> None:
    """Add a note naming the hook to a pass-through exception (once: nested calls re-raise it)."""
    if not isinstance(exc, HookError) and not getattr(exc, _NOTED, False):
        setattr(exc, _NOTED, True)
        exc.add_note(f"raised by hook {record.label} ({record.source}) in {mount_point}")


class HookFacade:
    """One method per mount point; calls the host's ordered implementations.

    The host rebuilds a mount point's dispatch function (see
    :mod:`torchkiln.plugin_host.dispatch`) whenever a registration changes its call list and
    installs it here (:meth:`install`), where it shadows the method of the same name: the runner's
    ``hooks.after_train_iter(...)`` calls it without a frame in between (this runs every
    iteration). A mount point with no implementations has no dispatch function, so its method
    here runs, and does nothing.

    :param host: the host whose dispatch functions this facade starts with; the host installs
        every later rebuild.
    """

    # Only __dict__, which holds the installed dispatch functions.
    __slots__ = ("__dict__",)

    def __init__(self, host: HookHost) -> None:
        for mount_point, dispatch in host.dispatchers.items():
            self.install(mount_point, dispatch)

    def install(self, mount_point: str, dispatch: Callable[..., None] | None) -> None:
        """Make ``dispatch`` the facade's ``mount_point`` (None: the method, a no-op, again).

        :param mount_point: a mount point name.
        :param dispatch: its dispatch function, taking exactly the method's parameters.
        """
        if mount_point not in SPEC_ARGS:
            raise unknown_mount_point(mount_point)
        if dispatch is None:
            self.__dict__.pop(mount_point, None)
        else:
            self.__dict__[mount_point] = dispatch

    def call(self, mount_point: str, **kwargs: Any) -> None:
        """Call ``mount_point`` with keyword arguments (MMEngine's ``call_hook``).

        Arguments left out are passed as ``None``; ``runner`` is required.

        :raises UsageError: an unknown mount point or argument.
        """
        if mount_point not in SPEC_ARGS:
            raise unknown_mount_point(mount_point)
        spec = SPEC_ARGS[mount_point]
        for key in kwargs:
            if key not in spec:
                raise UsageError(f"mount point {mount_point} has no argument {key!r}",
                                 hint=(did_you_mean(key, spec) or "") + f" its arguments: {', '.join(spec)}")
        if "runner" not in kwargs:
            raise UsageError(f"calling mount point {mount_point} needs runner=...")
        getattr(self, mount_point)(*(kwargs.get(name) for name in spec))

    # ------------------------------------------------------------------ run
    def before_run(self, runner: Any) -> None:
        """Call the ``before_run`` hooks."""

    def after_run(self, runner: Any) -> None:
        """Call the ``after_run`` hooks."""

    # ------------------------------------------------------------------ phases
    def before_train(self, runner: Any) -> None:
        """Call the ``before_train`` hooks."""

    def after_train(self, runner: Any) -> None:
        """Call the ``after_train`` hooks."""

    def before_val(self, runner: Any) -> None:
        """Call the ``before_val`` hooks."""

    def after_val(self, runner: Any) -> None:
        """Call the ``after_val`` hooks."""

    def before_test(self, runner: Any) -> None:
        """Call the ``before_test`` hooks."""

    def after_test(self, runner: Any) -> None:
        """Call the ``after_test`` hooks."""

    # ------------------------------------------------------------------ checkpoints
    def after_load_checkpoint(self, runner: Any, checkpoint: dict[str, Any]) -> None:
        """Call the ``after_load_checkpoint`` hooks."""

    def before_save_checkpoint(self, runner: Any, checkpoint: dict[str, Any]) -> None:
        """Call the ``before_save_checkpoint`` hooks."""

    # ------------------------------------------------------------------ epochs
    def before_train_epoch(self, runner: Any) -> None:
        """Call the ``before_train_epoch`` hooks."""

    def after_train_epoch(self, runner: Any) -> None:
        """Call the ``after_train_epoch`` hooks."""

    def before_val_epoch(self, runner: Any) -> None:
        """Call the ``before_val_epoch`` hooks."""

    def after_val_epoch(self, runner: Any, metrics: Mapping[str, Any] | None = None) -> None:
        """Call the ``after_val_epoch`` hooks."""

    def before_test_epoch(self, runner: Any) -> None:
        """Call the ``before_test_epoch`` hooks."""

    def after_test_epoch(self, runner: Any, metrics: Mapping[str, Any] | None = None) -> None:
        """Call the ``after_test_epoch`` hooks."""

    # ------------------------------------------------------------------ iterations (hot)
    def before_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None) -> None:
        """Call the ``before_train_iter`` hooks."""

    def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None,
                         outputs: Mapping[str, Any] | None = None) -> None:
        """Call the ``after_train_iter`` hooks."""

    def before_val_iter(self, runner: Any, batch_idx: int, data_batch: Any = None) -> None:
        """Call the ``before_val_iter`` hooks."""

    def after_val_iter(self, runner: Any, batch_idx: int, data_batch: Any = None,
                       outputs: Sequence[Any] | None = None) -> None:
        """Call the ``after_val_iter`` hooks."""

    def before_test_iter(self, runner: Any, batch_idx: int, data_batch: Any = None) -> None:
        """Call the ``before_test_iter`` hooks."""

    def after_test_iter(self, runner: Any, batch_idx: int, data_batch: Any = None,
                        outputs: Sequence[Any] | None = None) -> None:
        """Call the ``after_test_iter`` hooks."""


def _signature_source(name: str) -> str:
    """The facade method ``name``'s parameters after ``self`` as source, defaults included.

    :raises AssertionError: the method's parameter names are not the hookspec's (the
        dispatch functions pass the hookspec's names).
    """
    params = list(inspect.signature(getattr(HookFacade, name)).parameters.values())[1:]
    if tuple(p.name for p in params) != SPEC_ARGS[name]:
        raise AssertionError(f"HookFacade.{name} takes {[p.name for p in params]}, the hookspec {list(SPEC_ARGS[name])}")
    return ", ".join(p.name if p.default is p.empty else f"{p.name}={p.default!r}" for p in params)


#: Each mount point's parameter list as source (``"runner, batch_idx, data_batch=None"``):
#: the dispatch functions take exactly what the facade's methods take.
DISPATCH_SIGNATURES: dict[str, str] = {name: _signature_source(name) for name in SPEC_ARGS}
