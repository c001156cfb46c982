"""MultiProcessTestCase runs each test in several spawned processes and reports their failures."""

from __future__ import annotations

import os
import unittest

import torch
import torch.distributed as dist

from torchkiln.testing._internal import MultiProcessTestCase


class _Cases(MultiProcessTestCase):
    """The cases the tests below run through unittest (not collected by pytest itself)."""

    __test__ = False

    def setUp(self) -> None:
        super().setUp()
        self._spawn_processes()

    def test_all_reduce(self) -> None:
        dist.init_process_group(
            "gloo", init_method=f"file://{self.file_name}", rank=self.rank, world_size=self.world_size
        )
        value = torch.tensor([float(self.rank + 1)])
        dist.all_reduce(value)
        assert value.item() == 3.0, value
        assert os.path.exists(self.file_name)

    def test_rank_one_fails(self) -> None:
        assert self.rank != 1, "rank one fails on purpose"


def _run(name: str) -> unittest.TestResult:
    result = unittest.TestResult()
    _Cases(name).run(result)
    return result


def test_each_rank_runs_the_test_and_a_process_group_works():
    result = _run("test_all_reduce")
    assert result.wasSuccessful(), result.failures + result.errors


def test_a_failing_rank_fails_the_test_with_its_traceback():
    result = _run("test_rank_one_fails")
    assert len(result.failures) == 1
    message = result.failures[0][1]
    assert "rank 1 failed" in message and "rank one fails on purpose" in message
    assert "rank 0 failed" not in message


def test_main_process_rank_and_world_size():
    case = _Cases("test_all_reduce")
    assert case.rank == MultiProcessTestCase.MAIN_PROCESS_RANK and case.world_size == 2
