"""Test cases run by tests/testing/test_multiprocess_case.py (importable by name, as the
ranks' spawned processes need)."""

from __future__ import annotations

import os
import unittest

from torchkiln.testing._internal import MultiProcessTestCase


class _Spawning(MultiProcessTestCase):
    timeout = 120.0

    def setUp(self) -> None:
        super().setUp()
        self._spawn_processes()


class RanksMeet(_Spawning):
    def prepare_subprocess(self) -> None:
        self.prepared_in = os.getpid()  # setUp does not run in the ranks' processes

    def test_all_reduce(self) -> None:
        import torch
        import torch.distributed as dist

        assert self.prepared_in == os.getpid()

        dist.init_process_group(
            "gloo", init_method=f"file://{self.file_name}", rank=self.rank, world_size=self.world_size
        )
        total = torch.tensor(float(self.rank))
        dist.all_reduce(total)
        assert total.item() == 1.0 and self.world_size == 2


class RunTestOverridden(_Spawning):
    def run_test(self, test_name: str, parent_pipe: object) -> None:
        self.built_in = os.getpid()  # per-process state, then the test
        super().run_test(test_name, parent_pipe)

    def test_sees_the_state(self) -> None:
        assert self.built_in == os.getpid()


class OneRankFails(_Spawning):
    def test_fails_in_rank_one(self) -> None:
        assert self.rank != 1, f"rank {self.rank} of pid {os.getpid()} fails"


class EveryRankSkips(_Spawning):
    def test_skips(self) -> None:
        raise unittest.SkipTest("nothing to do here")
