"""MMEngine's ``mmengine.runner.priority`` import path for the hook priorities.

``Priority`` and ``get_priority`` are defined in :mod:`torchkiln.plugin_host.priority`.
"""

from __future__ import annotations

from torchkiln.plugin_host.priority import Priority, get_priority

__all__ = ["Priority", "get_priority"]
