"""Shared pytest setup: small thread pools, and fresh registry/global state per test."""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TORCHKILN_DISABLE_PLUGIN_AUTOLOAD", "0")
# Compiled .py configs go to a folder of the test runs, not the user's cache.
os.environ.setdefault(
    "TORCHKILN_CACHE_DIR", os.path.join(tempfile.gettempdir(), "torchkiln-test-cache")
)

import pytest


@pytest.fixture(autouse=True)
def _single_torch_thread():
    """Keep tests on one thread: the CI machines have two cores and tests run serially."""
    import sys

    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
    yield
