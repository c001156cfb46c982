"""The pytest plugin of :mod:`torchkiln.testing` (loaded through the ``pytest11`` entry point).

Fixtures:

- ``kiln_config``: the base config of the tiny runs (:func:`~torchkiln.testing.tiny_config`),
  a fresh dict per test, with ``work_dir`` under ``tmp_path``.
- ``kiln_run``: ``kiln_run(fragment=None, **options)`` runs
  :func:`~torchkiln.testing.run_training` in ``tmp_path/work`` (the same work dir for every
  call in a test, so ``kiln_run(fragment, resume=True)`` continues the run before it).

Importing this module imports neither torch nor the rest of torchkiln; the fixtures do.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

__all__ = ["kiln_config", "kiln_run"]


@pytest.fixture
def kiln_config(tmp_path: Path) -> dict[str, Any]:
    """The base config of :func:`kiln_run`'s trainings, ``work_dir`` under ``tmp_path``."""
    from torchkiln.testing.runs import tiny_config

    return tiny_config(tmp_path / "work")


@pytest.fixture
def kiln_run(tmp_path: Path) -> Callable[..., Any]:
    """Train the tiny config with a fragment merged in; returns a ``TrainingResult``."""
    from torchkiln.testing.runs import run_training

    def run(fragment: Mapping[str, Any] | None = None, **options: Any) -> Any:
        options.setdefault("work_dir", tmp_path / "work")
        return run_training(fragment, **options)

    return run
