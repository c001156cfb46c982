"""``torchkiln new-plugin NAME``: write a plugin distribution that passes its own tests.

The new folder holds a ``pyproject.toml`` declaring a model, a metric, a hook, a hook plugin
and a config folder as entry points, the package with those parts, a YAML config using them,
a README and tests using :mod:`torchkiln.testing`. ``pip install -e FOLDER`` then ``pytest``
in it passes. Imports neither torch nor the rest of torchkiln.
"""

from __future__ import annotations

import importlib.metadata as md
import importlib.util
import keyword
import os
import re
from dataclasses import dataclass
from pathlib import Path
from string import Template

from torchkiln.errors import UsageError
from torchkiln.scaffold_templates import TEMPLATES

__all__ = ["PluginNames", "plugin_names", "scaffold_plugin"]

# PEP 508 names: letters, digits, '.', '_', '-', starting and ending with a letter or digit.
_DIST_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")
_WHERE = "new-plugin NAME"


@dataclass(frozen=True)
class PluginNames:
    """The names derived from a distribution name.

    :param dist: the distribution name as given (``torchkiln-foo-bar``).
    :param pkg: the import package (``torchkiln_foo_bar``).
    :param prefix: the lower-case prefix of metric keys (``foo_bar``).
    :param component_prefix: the prefix of component class names (``FooBar``).
    """

    dist: str
    pkg: str
    prefix: str
    component_prefix: str


def plugin_names(name: str) -> PluginNames:
    """Check ``name`` as a new distribution name and derive the package and component names.

    :raises UsageError: not a valid distribution name, no valid package name follows from
        it, or a module or distribution of that name is installed already.
    """
    if not _DIST_NAME.match(name):
        raise UsageError(
            f"{name!r} is not a valid distribution name",
            where=_WHERE,
            hint="use letters, digits, '-', '_' or '.', starting and ending with a letter or "
            "digit, e.g. torchkiln-foo",
        )
    pkg = re.sub(r"[-_.]+", "_", name).lower()
    if not pkg.isidentifier() or keyword.iskeyword(pkg):
        raise UsageError(
            f"{name!r} gives the package name {pkg!r}, which is not a Python identifier",
            where=_WHERE,
            hint="start the name with a letter, e.g. torchkiln-foo",
        )
    if importlib.util.find_spec(pkg) is not None:
        raise UsageError(
            f"a module named {pkg!r} can be imported already; the plugin's package would clash",
            where=_WHERE,
            hint="pick another name, e.g. torchkiln-" + pkg.removeprefix("torchkiln_") + "-ext",
        )
    try:
        md.distribution(name)
    except md.PackageNotFoundError:
        pass
    else:
        raise UsageError(
            f"a distribution named {name!r} is installed already",
            where=_WHERE,
            hint="pick another name",
        )
    stem = pkg.removeprefix("torchkiln_") or pkg
    component_prefix = "".join(part.capitalize() for part in stem.split("_") if part)
    if not component_prefix[0].isalpha():
        component_prefix = "Plugin" + component_prefix
    return PluginNames(name, pkg, stem, component_prefix)


def _target_dir(name: str, directory: str | os.PathLike[str] | None) -> Path:
    target = Path(directory if directory is not None else name)
    if target.exists() and not target.is_dir():
        raise UsageError(
            f"{target} exists and is not a folder", where="--dir", hint="give a new folder"
        )
    if target.is_dir() and any(target.iterdir()):
        raise UsageError(
            f"{target} exists and is not empty",
            where="--dir" if directory is not None else _WHERE,
            hint="give a new or empty folder with --dir, or another NAME",
        )
    return target


def scaffold_plugin(name: str, directory: str | os.PathLike[str] | None = None) -> Path:
    """Write the plugin distribution ``name`` into ``directory`` (default: ``./name``).

    :param name: the distribution name, e.g. ``torchkiln-foo``.
    :param directory: the folder to create; it may exist if it is empty.
    :returns: the folder written.
    :raises UsageError: a bad name, or a folder that exists and is not empty.
    """
    from torchkiln import __version__

    names = plugin_names(name)
    target = _target_dir(name, directory)
    major_minor = ".".join(__version__.split(".")[:2])
    values = {
        "dist": names.dist,
        "pkg": names.pkg,
        "prefix": names.prefix,
        "Prefix": names.component_prefix,
        "requires": f"torchkiln>={major_minor}",
    }
    for rel, text in TEMPLATES.items():
        path = target / rel.format(pkg=names.pkg)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(Template(text).substitute(values), encoding="utf-8")
    return target
