"""``is_installed``: whether a package can be used, by distribution or import name."""

from __future__ import annotations

import importlib.metadata
import importlib.util

__all__ = ["is_installed"]


def is_installed(package: str) -> bool:
    """Whether ``package`` is installed: a distribution of that name exists, or a module of
    that name can be imported (found without importing it).

    :param package: a distribution name (``'opencv-python'``) or a top-level module name
        (``'cv2'``).
    """
    if not package:
        return False
    try:
        importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        pass
    else:
        return True
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):  # a dotted name whose parent is missing
        return False
