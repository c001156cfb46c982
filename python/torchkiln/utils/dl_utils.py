"""Deep-learning environment facts: ``TORCH_VERSION``, the installed torch version string,
and ``mmcv_full_available()``, whether mmcv's compiled ops (``mmcv.ops``) can be imported.

Importing this module imports torch.
"""

from __future__ import annotations

import importlib.util

import torch

__all__ = ["TORCH_VERSION", "mmcv_full_available"]

#: ``torch.__version__`` (``'parrots'`` under SenseTime's parrots, never here).
TORCH_VERSION: str = str(torch.__version__)


def mmcv_full_available() -> bool:
    """Whether mmcv with its compiled ops is installed (``mmcv._ext`` is importable), which
    model code checks before using ops such as deformable convolution."""
    try:
        return importlib.util.find_spec("mmcv._ext") is not None
    except (ImportError, ValueError):  # no mmcv at all, or a broken install
        return False
