"""RunnerTestCase: the unittest base class with ready-made small runner configs."""

from __future__ import annotations

import os
import unittest

from torchkiln.logging import MessageHub
from torchkiln.registry import MODELS
from torchkiln.testing import RunnerTestCase


class _Trains(RunnerTestCase):
    def test_epoch_based(self):
        runner = self.build_runner(self.epoch_based_cfg)
        runner.train()
        type(self).seen = (runner.epoch, runner.iter, self.temp_dir.name, runner.experiment_name)

    def test_iter_based(self):
        runner = self.build_runner(self.iter_based_cfg)
        runner.train()
        assert runner.iter == 12
        assert os.path.isfile(os.path.join(runner.work_dir, "iter_12.pth"))


def _run(case: type, name: str) -> unittest.TestResult:
    result = unittest.TestResult()
    case(name).run(result)
    return result


def test_the_epoch_config_trains_two_epochs_of_four_iterations_and_cleans_up():
    result = _run(_Trains, "test_epoch_based")
    assert result.wasSuccessful(), result.errors + result.failures
    epoch, iteration, temp_dir, experiment = _Trains.seen
    assert (epoch, iteration) == (2, 8)
    assert experiment.startswith("test_epoch_based_")
    assert not os.path.exists(temp_dir)
    assert "ToyModel" not in MODELS.module_dict
    assert not MessageHub._instance_dict


def test_the_iter_config_trains_twelve_iterations_with_a_checkpoint():
    result = _run(_Trains, "test_iter_based")
    assert result.wasSuccessful(), result.errors + result.failures


def test_each_test_gets_a_unique_experiment_name():
    case = _Trains("test_epoch_based")
    assert case.experiment_name != case.experiment_name


def test_setup_dist_env_sets_a_fresh_port(monkeypatch):
    for key in ("MASTER_PORT", "MASTER_ADDR", "RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    case = _Trains("test_epoch_based")
    before = case.dist_cfg["MASTER_PORT"]
    monkeypatch.setitem(case.dist_cfg, "MASTER_PORT", before)
    case.setup_dist_env()
    assert os.environ["MASTER_PORT"] == str(before + 1)
    assert (os.environ["RANK"], os.environ["WORLD_SIZE"]) == ("0", "1")


def test_mmengine_module_path_offers_the_same_classes():
    from torchkiln.testing import runner_case, runner_test_case

    for name in ("RunnerTestCase", "ToyDataset", "ToyMetric", "ToyModel"):
        assert getattr(runner_test_case, name) is getattr(runner_case, name)
