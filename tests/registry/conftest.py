"""Registry tests start and end with no default scope and no cached ``<scope>.registry`` imports."""

from __future__ import annotations

import pytest

from torchkiln.registry import DefaultScope
from torchkiln.registry import _keys


@pytest.fixture(autouse=True)
def _fresh_default_scope():
    DefaultScope.reset_instances()
    _keys._scope_registry_imports.clear()
    yield
    DefaultScope.reset_instances()
    _keys._scope_registry_imports.clear()
