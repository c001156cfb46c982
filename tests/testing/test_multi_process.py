"""MultiProcessTestCase: a test method runs in one spawned process per rank."""

from __future__ import annotations

import glob
import os
import unittest

import pytest

pytestmark = pytest.mark.dist


def _run(name: str) -> tuple[unittest.TestResult, object]:
    from multi_process_cases import RankCases

    case = RankCases(name)
    result = unittest.TestResult()
    case.run(result)
    return result, case


def test_each_rank_runs_the_method_in_its_own_process(tmp_path, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    result, _ = _run("test_every_rank_runs")
    assert result.wasSuccessful(), result.failures + result.errors
    written = sorted(glob.glob(str(tmp_path / "*.rank*")))
    assert [p.rsplit(".", 1)[1] for p in written] == ["rank0", "rank1"]
    pids = {open(p, encoding="utf-8").read() for p in written}
    assert len(pids) == 2 and str(os.getpid()) not in pids


def test_a_failing_rank_fails_the_test_with_its_traceback():
    result, _ = _run("test_rank_one_fails")
    assert len(result.failures) == 1
    report = result.failures[0][1]
    assert "rank 1 of 2 failed" in report and "rank one says no" in report

