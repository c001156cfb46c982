"""Test-case machinery for distributed tests (MMEngine's ``mmengine.testing._internal``)."""

from __future__ import annotations

from torchkiln.testing._internal.multi_process import MultiProcessTestCase

__all__ = ["MultiProcessTestCase"]
