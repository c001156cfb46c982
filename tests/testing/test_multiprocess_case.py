"""MultiProcessTestCase: each test runs once per rank in spawned processes; the parent reports."""

from __future__ import annotations

import unittest

import kiln_multiprocess_cases as cases
import pytest


@pytest.mark.dist
def test_ranks_run_the_body_and_the_parent_reports_failures_and_skips() -> None:
    suite = unittest.TestSuite(
        [
            cases.RanksMeet("test_all_reduce"),
            cases.RunTestOverridden("test_sees_the_state"),
            cases.OneRankFails("test_fails_in_rank_one"),
            cases.EveryRankSkips("test_skips"),
        ]
    )
    result = unittest.TestResult()
    suite.run(result)
    assert result.testsRun == 4
    assert [str(case) for case, _ in result.failures] == [
        "test_fails_in_rank_one (kiln_multiprocess_cases.OneRankFails.test_fails_in_rank_one)"
    ]
    text = result.failures[0][1]
    assert "failed in 1 rank(s)" in text and "rank 1 of pid" in text and "rank 0 of pid" not in text
    assert [reason for _, reason in result.skipped] == ["nothing to do here"]
    assert not result.errors
