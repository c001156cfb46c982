"""How registry keys are read: scope names in their one compared form, ``scope::Name`` and
dotted import paths, and MMEngine's ``<scope>.registry`` modules imported on demand."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import Any

from torchkiln.registry import _index

__all__ = [
    "SCOPE_SEP",
    "import_dotted",
    "import_scope_registry",
    "import_target",
    "infer_scope",
    "scope_key",
    "scope_of",
]

SCOPE_SEP = "::"

# Scopes written in MMEngine's words that mean torchkiln's own (root) scope.
_SCOPE_ALIASES = {"mmengine": _index.BUILTIN_SCOPE}


def scope_key(scope: str) -> str:
    """The form scopes are compared in: packaging's rule for distribution names, and
    ``mmengine`` as torchkiln's own scope (``Acme-Kiln.Zoo`` -> ``acme_kiln_zoo``)."""
    key = _index.normalise_dist(scope)
    return _SCOPE_ALIASES.get(key, key)


def scope_of(obj: Any) -> str:
    """The scope of an object registered by decorator: its top-level package name."""
    module = getattr(obj, "__module__", None) or "__main__"
    return module.split(".", 1)[0]


def import_target(target: str) -> Any:
    """Import ``pkg.mod:attr`` or ``pkg.mod.attr`` and return the attribute."""
    if ":" in target:
        module_name, _, attr = target.partition(":")
    else:
        module_name, _, attr = target.rpartition(".")
    module = importlib.import_module(module_name)
    obj: Any = module
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def import_dotted(key: str) -> Any:
    """``key`` as an importable object (``torch.nn.Linear``, ``pkg.mod:Class``, a module), or
    None when it names nothing importable."""
    try:
        return importlib.import_module(key) if ":" not in key else import_target(key)
    except ImportError:
        pass
    try:
        return import_target(key)
    except (ImportError, AttributeError, ValueError):
        return None


_scope_registry_imports: dict[str, bool] = {}


def import_scope_registry(scope: str) -> bool:
    """Import ``<scope>.registry`` once, as MMEngine does, so that a package declaring its
    registries there joins the tree before its scope is looked up. True if it imported."""
    if scope in _scope_registry_imports:
        return _scope_registry_imports[scope]
    found = False
    if scope.isidentifier() and scope_key(scope) != _index.BUILTIN_SCOPE:
        try:
            if importlib.util.find_spec(scope) is not None:
                found = importlib.util.find_spec(f"{scope}.registry") is not None
                if found:
                    importlib.import_module(f"{scope}.registry")
        except (ImportError, ValueError):
            found = False
    _scope_registry_imports[scope] = found
    return found


def infer_scope(frame_depth: int) -> str:
    """The top-level package of the module that creates a registry (MMEngine's rule)."""
    try:
        frame = sys._getframe(frame_depth + 1)
    except ValueError:
        return "__main__"
    module = frame.f_globals.get("__name__") or "__main__"
    return str(module).split(".", 1)[0]
