"""The pluggy hook host: registration, priorities, the typed facade and entry-point plugins.

Usage by the runner::

    host = HookHost()
    host.register(RuntimeInfoHook())                 # priority from the hook, or given
    load_entry_point_plugins(host, disabled=cfg_disabled)
    dispatch = host.facade
    dispatch.before_train_iter(runner, batch_idx, data_batch)
    hooks = HookList(host)                           # the hook objects, in call order
"""

from __future__ import annotations

from torchkiln.plugin_host.describe import format_hook_table
from torchkiln.plugin_host.discovery import SPEC_ARGS, find_misspellings, implemented_mount_points
from torchkiln.plugin_host.entry_points import (
    AUTOLOAD_ENV,
    GROUP,
    autoload_disabled,
    load_entry_point_plugins,
)
from torchkiln.plugin_host.errors import HookError
from torchkiln.plugin_host.facade import HookFacade
from torchkiln.plugin_host.hook_list import HookList
from torchkiln.plugin_host.host import HookHost, PluginRecord
from torchkiln.plugin_host.priority import PRIORITIES, get_priority, priority_label

__all__ = [
    "AUTOLOAD_ENV",
    "GROUP",
    "PRIORITIES",
    "SPEC_ARGS",
    "HookError",
    "HookFacade",
    "HookHost",
    "HookList",
    "PluginRecord",
    "autoload_disabled",
    "find_misspellings",
    "format_hook_table",
    "get_priority",
    "implemented_mount_points",
    "load_entry_point_plugins",
    "priority_label",
]
