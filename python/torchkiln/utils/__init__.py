"""Small utilities shared by engine components (MMEngine's ``mmengine.utils`` names)."""

from __future__ import annotations

from torchkiln.utils.manager import ManagerMeta, ManagerMixin

__all__ = ["ManagerMeta", "ManagerMixin"]
