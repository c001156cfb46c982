"""RUNNERS and PARAM_SCHEDULERS build with MMEngine's build functions."""

from __future__ import annotations

import pytest
import torch

from torchkiln.errors import BuildError
from torchkiln.registry import PARAM_SCHEDULERS, RUNNERS, build_scheduler_from_cfg


def _optimizer():
    return torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=0.1)


def test_convert_to_iter_based_builds_in_iterations():
    scheduler = PARAM_SCHEDULERS.build(
        {"type": "MultiStepLR", "milestones": [1, 2], "convert_to_iter_based": True},
        default_args={"optimizer": _optimizer(), "epoch_length": 10},
    )
    assert scheduler.by_epoch is False
    assert sorted(scheduler.milestones) == [10, 20]


def test_convert_to_iter_based_needs_the_epoch_length():
    with pytest.raises(KeyError) as info:
        build_scheduler_from_cfg(
            {"type": "MultiStepLR", "milestones": [1], "convert_to_iter_based": True},
            PARAM_SCHEDULERS,
            {"optimizer": _optimizer()},
        )
    assert isinstance(info.value, BuildError) and "epoch length" in str(info.value)


def test_a_plain_scheduler_config_builds_as_before():
    scheduler = PARAM_SCHEDULERS.build(
        {"type": "MultiStepLR", "milestones": [3], "convert_to_iter_based": False},
        default_args={"optimizer": _optimizer()},
    )
    assert scheduler.by_epoch is True


def test_runners_build_a_runner_from_a_whole_config(tmp_path):
    from torchkiln.runner import Runner

    runner = RUNNERS.build({"model": {"type": "DigitsMLP"}, "work_dir": str(tmp_path)})
    assert type(runner) is Runner and runner.work_dir == str(tmp_path)
    with pytest.raises(TypeError):
        RUNNERS.build("not a config")
