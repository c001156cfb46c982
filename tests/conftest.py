"""Shared pytest setup: small thread pools, and fresh registry/global state per test."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TORCHKILN_DISABLE_PLUGIN_AUTOLOAD", "0")
