"""Small utilities shared by engine components (MMEngine's ``mmengine.utils`` names)."""

from __future__ import annotations

from torchkiln.utils.manager import ManagerMeta, ManagerMixin
from torchkiln.utils.misc import is_list_of, is_seq_of, is_tuple_of

__all__ = ["ManagerMeta", "ManagerMixin", "is_list_of", "is_seq_of", "is_tuple_of"]
