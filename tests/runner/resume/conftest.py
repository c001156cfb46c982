"""Resume tests: put this folder on sys.path (helpers and the subprocess plugin live here)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))


@pytest.fixture(autouse=True)
def _no_test_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process runs never sleep or record progress, and load no installed plugins
    (training subprocesses do not either)."""
    for name in ("RESUME_TEST_PROGRESS", "RESUME_TEST_SLEEP_S"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TORCHKILN_DISABLE_PLUGIN_AUTOLOAD", "1")
