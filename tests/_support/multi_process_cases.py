"""MultiProcessTestCase subclasses for tests/testing/test_multi_process.py.

They live on the test path (``tests/_support``) so that the spawned rank processes can
import them by module name.
"""

from __future__ import annotations

import os

from torchkiln.testing._internal import MultiProcessTestCase


class RankCases(MultiProcessTestCase):
    """Each test runs once per rank; the files they write show which ranks ran."""

    def setUp(self) -> None:
        super().setUp()
        self._spawn_processes()

    def prepare_subprocess(self) -> None:
        self.prepared = True

    def test_every_rank_runs(self) -> None:
        assert self.prepared and self.rank in range(self.world_size)
        with open(f"{self.file_name}.rank{self.rank}", "w", encoding="utf-8") as fh:
            fh.write(str(os.getpid()))

    def test_rank_one_fails(self) -> None:
        assert self.rank != 1, "rank one says no"
