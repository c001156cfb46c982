"""Lazy re-exports for package ``__init__`` modules (PEP 562 ``__getattr__``/``__dir__``).

Packages re-export their public names without importing the defining modules (and so
torch) until a name is first used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Return ``(__getattr__, __dir__)`` resolving ``exports`` (name -> module) on first use.

    A resolved name is cached in ``namespace`` (the package's globals), so later lookups
    are plain attribute reads.
    """

    def __getattr__(name: str) -> Any:
        module_name = exports.get(name)
        if module_name is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module_name), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
