"""Small utilities shared by engine components (MMEngine's ``mmengine.utils`` names)."""

from __future__ import annotations

from torchkiln.utils.manager import ManagerMeta, ManagerMixin
from torchkiln.utils.misc import is_list_of, is_seq_of, is_tuple_of
from torchkiln.utils.package_utils import is_installed
from torchkiln.utils.path import mkdir_or_exist, scandir
from torchkiln.utils.version_utils import digit_version

__all__ = [
    "ManagerMeta",
    "ManagerMixin",
    "digit_version",
    "is_installed",
    "is_list_of",
    "is_seq_of",
    "is_tuple_of",
    "mkdir_or_exist",
    "scandir",
]
