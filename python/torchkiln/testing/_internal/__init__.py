"""Test helpers for code that runs in several processes (MMEngine's ``testing._internal``)."""

from __future__ import annotations

from torchkiln.testing._internal.distributed import MultiProcessTestCase

__all__ = ["MultiProcessTestCase"]
