"""Small utilities shared by engine components (MMEngine's ``mmengine.utils`` names)."""

from __future__ import annotations

from torchkiln.utils.manager import ManagerMeta, ManagerMixin
from torchkiln.utils.path import mkdir_or_exist, scandir

__all__ = ["ManagerMeta", "ManagerMixin", "mkdir_or_exist", "scandir"]
