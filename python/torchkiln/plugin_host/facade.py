"""The hook facade: the one place the runner calls mount points through.

``facade.<mount point>`` exists for every name in :data:`torchkiln.hookspecs.MOUNT_POINTS`
and takes that hookspec's arguments, by position or by name (any but ``runner`` left out is
``None``): ``hooks.after_train_iter(runner, batch_idx, data_batch, outputs)``. It is the
mount point's dispatch function (see :mod:`torchkiln.plugin_host.dispatch`), which the
:class:`~torchkiln.plugin_host.host.HookHost` rebuilds whenever a registration changes the
mount point's call list. A mount point without implementations calls nothing.

Errors: see :mod:`torchkiln.plugin_host.errors`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from torchkiln.hookspecs import MOUNT_POINTS
from torchkiln.plugin_host.discovery import SPEC_ARGS, unknown_mount_point
from torchkiln.plugin_host.dispatch import build_dispatcher
from torchkiln.plugin_host.errors import PASS_THROUGH, HookError, note_hook

__all__ = ["PASS_THROUGH", "HookError", "HookFacade", "note_hook"]


class HookFacade:
    """One callable attribute per mount point, each calling its implementations in order."""

    def __init__(self) -> None:
        for mount_point in MOUNT_POINTS:
            setattr(self, mount_point, build_dispatcher(mount_point, ()))

    def install(self, mount_point: str, dispatch: Callable[..., None]) -> None:
        """Make ``dispatch`` (from :func:`~torchkiln.plugin_host.dispatch.build_dispatcher`)
        the facade's ``mount_point``.

        :raises UsageError: an unknown mount point.
        """
        if mount_point not in SPEC_ARGS:
            raise unknown_mount_point(mount_point)
        setattr(self, mount_point, dispatch)

    def call(self, mount_point: str, **kwargs: Any) -> None:
        """Call ``mount_point`` with keyword arguments (MMEngine's ``call_hook``).

        Arguments left out are passed as ``None``; ``runner`` is required.

        :raises UsageError: an unknown mount point or argument.
        """
        if mount_point not in SPEC_ARGS:
            raise unknown_mount_point(mount_point)
        getattr(self, mount_point)(**kwargs)

    if TYPE_CHECKING:  # the mount points are set in __init__, one per hookspec

        def __getattr__(self, mount_point: str) -> Callable[..., None]: ...
