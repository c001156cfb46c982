"""Details of ``torchkiln plugins`` that go beyond the entry points themselves.

The mount points of each hook plugin (``torchkiln.plugins`` group) are read from the
plugin's source file, never by importing it: a hook plugin may import torch or a tracker's
client at module level, and listing what is installed must stay instant and must not run
plugin code. The module is located with the import system's finders (which import nothing
for a top-level name and read only paths for submodules) and parsed with :mod:`ast`:

- an entry point naming a module counts the module-level functions, assignments and
  imported names that are called after a mount point;
- one naming a class (``pkg.mod:MyHook``), or an instance of a class of the same module,
  counts the methods of that class and of its bases defined in the same module; an
  instance of a class the module imports by name (``from pkg.base import Tracker``) is
  read from that class's own module.

Mount points a class inherits from a base class in another module are not seen; such a
plugin shows the ones it defines itself. When no source is found (a compiled module, a
missing file) the mount points are ``None``: unknown.

Clashes are names offered by more than one distribution (torchkiln itself included) in the
same entry-point group: a config must pick one with ``scope::Name``.
"""

from __future__ import annotations

import ast
import importlib.machinery
import importlib.util
import json
from pathlib import Path
from typing import Any

from torchkiln.hookspecs import MOUNT_POINTS
from torchkiln.registry import _index

__all__ = [
    "add_details",
    "clash_lines",
    "find_clashes",
    "hook_plugin_label",
    "report_json",
    "source_mount_points",
]


def _module_source(module: str) -> Path | None:
    """The ``.py`` file of ``module``, found without importing it or its parent packages."""
    parts = module.split(".")
    try:
        spec = importlib.util.find_spec(parts[0])
    except (ImportError, ValueError):
        return None
    for i in range(1, len(parts)):
        locations = spec.submodule_search_locations if spec is not None else None
        if not locations:
            return None
        spec = importlib.machinery.PathFinder.find_spec(".".join(parts[: i + 1]), list(locations))
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    path = Path(spec.origin)
    return path if path.is_file() else None


def _bound_names(body: list[ast.stmt]) -> set[str]:
    """Names a module or class body binds: functions, assignments, imports."""
    names: set[str] = set()
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.ImportFrom):
            names.update(alias.asname or alias.name for alias in node.names)
    return names


def _class_names(tree: ast.Module, name: str, seen: set[str]) -> set[str] | None:
    """Names bound by class ``name`` of ``tree`` and its same-module bases; ``None`` if the
    module has no such class."""
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    node = classes.get(name)
    if node is None or name in seen:
        return None if node is None else set()
    seen.add(name)
    names = {n.name for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    for base in node.bases:
        if isinstance(base, ast.Name) and base.id in classes:
            names |= _class_names(tree, base.id, seen) or set()
    return names


def _instance_class(tree: ast.Module, name: str) -> str | None:
    """For ``name = SomeClass(...)`` at module level, ``SomeClass``."""
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == name for t in node.targets)
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Name)
        ):
            return node.value.func.id
    return None


def _imported_from(tree: ast.Module, name: str) -> str | None:
    """``"pkg.mod:Original"`` when ``tree`` binds ``name`` by ``from pkg.mod import Original``."""
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                if (alias.asname or alias.name) == name:
                    return f"{node.module}:{alias.name}"
    return None


def source_mount_points(value: str) -> list[str] | None:
    """The mount points an entry point ``"pkg.module"`` or ``"pkg.module:Attr"`` implements,
    in lifecycle order, read from source; ``None`` when the source cannot be read."""
    module, _, attr = value.partition(":")
    path = _module_source(module.strip())
    if path is None:
        return None
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return None
    attr = attr.strip()
    if not attr:
        names: set[str] | None = _bound_names(tree.body)
    else:
        names = _class_names(tree, attr, set())
        if names is None:
            cls = _instance_class(tree, attr)
            names = _class_names(tree, cls, set()) if cls else None
            origin = _imported_from(tree, cls) if cls and names is None else None
            if origin is not None and origin != value:
                return source_mount_points(origin)
    if names is None:
        return None
    return [mp for mp in MOUNT_POINTS if mp in names]


def find_clashes() -> list[dict[str, Any]]:
    """Every name offered by more than one distribution in one ``torchkiln.*`` group:
    ``[{"group", "name", "distributions"}]``, sorted by group and name."""
    out = []
    names: dict[int, str] = {}  # a distribution's name is parsed from its metadata file each time

    def dist_name(dist: Any) -> str:
        if dist is None:
            return "unknown"
        if id(dist) not in names:
            names[id(dist)] = _index.normalise_dist(dist.name)
        return names[id(dist)]

    for group, eps in sorted(_index.entry_points_by_group().items()):
        offered: dict[str, set[str]] = {}
        for ep in eps:
            offered.setdefault(ep.name, set()).add(dist_name(getattr(ep, "dist", None)))
        for name, dists in sorted(offered.items()):
            if len(dists) > 1:
                out.append({"group": group, "name": name, "distributions": sorted(dists)})
    return out


def add_details(report: dict[str, Any], values: dict[tuple[str, str], str]) -> dict[str, Any]:
    """Add ``mount_points`` (hook plugin -> mount points or ``None``) to each distribution of
    ``report`` and the report-wide ``clashes``; ``values`` maps ``(distribution, plugin)`` to
    the entry point's value. Returns ``report``."""
    for entry in report["distributions"]:
        entry["mount_points"] = {
            name: source_mount_points(values.get((entry["name"], name), ""))
            for name in entry["hook_plugins"]
        }
    report["clashes"] = find_clashes()
    return report


def clash_lines(report: dict[str, Any]) -> list[str]:
    """The clashes section of the plain listing (empty when the report has none computed)."""
    if "clashes" not in report:
        return []
    if not report["clashes"]:
        return ["", "clashes: none"]
    lines = ["", "clashes (pick one provider with scope::Name):"]
    for clash in report["clashes"]:
        lines.append(f"  {clash['group']}: {clash['name']} ({', '.join(clash['distributions'])})")
    return lines


def hook_plugin_label(entry: dict[str, Any], name: str) -> str:
    """``name [mount, points]`` for one hook plugin of a distribution's report entry."""
    mount_points = entry.get("mount_points", {})
    if name not in mount_points:
        return name
    found = mount_points[name]
    if found is None:
        return f"{name} [mount points unknown: no source]"
    return f"{name} [{', '.join(found) or 'no mount points'}]"


def report_json(report: dict[str, Any]) -> str:
    """The report as JSON, with torchkiln's version (config packages as ``{name, package}``)."""
    from torchkiln import __version__

    data = {
        "torchkiln": __version__,
        "builtin": report["builtin"],
        "distributions": [
            {**entry, "configs": [{"name": n, "package": p} for n, p in entry["configs"]]}
            for entry in report["distributions"]
        ],
        "clashes": report.get("clashes", []),
    }
    return json.dumps(data, indent=2) + "\n"
