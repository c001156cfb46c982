"""``pkg::path.yaml`` bases: config folders that installed distributions declare.

A distribution offers configs with an entry point in the ``torchkiln.configs`` group whose
value names a package (``torchkiln_example.configs``). ``pkg`` in ``pkg::path`` is the entry
point's name or the distribution's name, in any spelling packaging treats as the same (case
and runs of ``-``, ``_``, ``.`` do not matter: ``torchkiln-example``, ``Torchkiln_Example``).
The folder is found from import specs without importing the package itself.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from torchkiln.errors import ConfigError, did_you_mean

__all__ = ["CONFIGS_GROUP", "config_packages", "resolve_package"]

CONFIGS_GROUP = "torchkiln.configs"


def config_packages() -> dict[str, tuple[str, str]]:
    """``{name: (distribution, package)}`` for every ``torchkiln.configs`` entry point."""
    from torchkiln.registry import _index  # entry points are read only when a pkg:: base appears

    out: dict[str, tuple[str, str]] = {}
    for ep in _index.entry_points_by_group().get(CONFIGS_GROUP, []):
        dist = getattr(ep, "dist", None)
        dist_name = dist.name if dist is not None else "unknown"
        out[ep.name] = (dist_name, ep.value)
    return out


def _package_dir(module_path: str) -> Path | None:
    """The folder of package ``a.b.c``, found without running any ``__init__``.

    ``importlib.util.find_spec("a.b")`` would import ``a``; walking the search locations
    of the top-level spec by hand keeps a plugin's heavy ``__init__`` unexecuted.
    """
    module_path = module_path.partition(":")[0].strip()
    head, *rest = module_path.split(".")
    try:
        spec = importlib.util.find_spec(head)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    locations = list(spec.submodule_search_locations or [])
    if not locations:
        return None  # a plain module cannot hold a config folder
    for part in rest:
        found = [
            os.path.join(loc, part) for loc in locations if os.path.isdir(os.path.join(loc, part))
        ]
        if not found:
            return None
        locations = found
    return Path(locations[0])


def resolve_package(pkg: str) -> str:
    """The config folder of the installed package ``pkg`` (for ``pkg::path`` bases).

    :param pkg: an entry-point name or a distribution name from ``torchkiln.configs``.
    :raises ConfigError: when no installed distribution offers it, listing those that do.
    """
    from torchkiln.registry import _index

    packages = config_packages()
    wanted = _index.normalise_dist(pkg)
    target = None
    if pkg in packages:
        target = packages[pkg][1]
    else:
        for name, (dist_name, value) in packages.items():
            if _index.normalise_dist(name) == wanted or _index.normalise_dist(dist_name) == wanted:
                target = value
                break
    if target is None:
        names = sorted(packages)
        suggestion = did_you_mean(pkg, names)
        hint = (suggestion + " " if suggestion else "") + (
            "installed config packages: " + ", ".join(names)
            if names
            else "no installed distribution offers configs"
        )
        raise ConfigError(f"unknown config package {pkg!r} in '{pkg}::...'", hint=hint)
    folder = _package_dir(target)
    if folder is None:
        raise ConfigError(
            f"config package {pkg!r} points to {target!r}, which is not an importable folder",
            hint="reinstall the distribution that provides it",
        )
    return str(folder)
