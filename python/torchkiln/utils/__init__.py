"""Small utilities shared by engine components (MMEngine's ``mmengine.utils`` names)."""

from __future__ import annotations

from torchkiln.utils.manager import ManagerMeta, ManagerMixin
from torchkiln.utils.package_utils import is_installed
from torchkiln.utils.version_utils import digit_version

__all__ = ["ManagerMeta", "ManagerMixin", "digit_version", "is_installed"]
