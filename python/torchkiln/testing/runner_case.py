"""``RunnerTestCase``: a ``unittest.TestCase`` with small ready-made runner configs.

Tests written against MMEngine's ``mmengine.testing.RunnerTestCase`` run unchanged: the case
registers a toy model, dataset and metric under the names ``ToyModel``, ``ToyDataset`` and
``ToyMetric`` for the length of each test, offers an epoch-based and an iteration-based
config (``self.epoch_based_cfg``, ``self.iter_based_cfg``) writing into a fresh temporary
folder, and clears the process-wide instances (message hubs, loggers, visualizers, default
scopes) afterwards so tests do not see each other's state.
"""

from __future__ import annotations

import copy
import logging
import os
import shutil
import tempfile
import time
from typing import Any, ClassVar
from unittest import TestCase

import torch
from torch import nn
from torch.utils.data import Dataset

from torchkiln.config import Config
from torchkiln.evaluation import BaseMetric
from torchkiln.model import BaseModel

__all__ = ["RunnerTestCase", "ToyDataset", "ToyMetric", "ToyModel"]


def _batched(value: Any) -> torch.Tensor:
    """A list of per-sample tensors (pseudo collate) or an already batched tensor, batched."""
    return torch.stack(list(value)) if isinstance(value, (list, tuple)) else value


class ToyModel(BaseModel):
    """Two linear layers, 2 -> 2 -> 1; the loss is the sum of ``label - output``."""

    def __init__(self, data_preprocessor: Any = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor)
        self.linear1 = nn.Linear(2, 2)
        self.linear2 = nn.Linear(2, 1)

    def forward(self, inputs: Any, data_samples: Any = None, mode: str = "tensor") -> Any:
        """``'loss'``: ``{'loss': sum(label - output)}``; other modes: the outputs."""
        outputs = self.linear2(self.linear1(_batched(inputs)))
        if mode == "loss":
            return {"loss": (_batched(data_samples) - outputs).sum()}
        return outputs


class ToyDataset(Dataset):
    """Twelve random 2-feature samples with label 1: ``{'inputs': x, 'data_samples': 1.0}``."""

    METAINFO: ClassVar[dict[str, Any]] = {}
    data = torch.randn(12, 2)
    label = torch.ones(12)

    @property
    def metainfo(self) -> dict[str, Any]:
        """The dataset's meta information (empty)."""
        return self.METAINFO

    def __len__(self) -> int:
        return self.data.size(0)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"inputs": self.data[index], "data_samples": self.label[index]}


class ToyMetric(BaseMetric):
    """A metric that always reports ``acc = 1``."""

    def __init__(self, collect_device: str = "cpu", dummy_metrics: Any = None) -> None:
        super().__init__(collect_device=collect_device)
        self.dummy_metrics = dummy_metrics

    def process(self, data_batch: Any, data_samples: Any) -> None:
        """Record one result per batch."""
        self.results.append({"acc": 1})

    def compute_metrics(self, results: list[Any]) -> dict[str, float]:
        """``{'acc': 1}``."""
        return {"acc": 1}


def _toy_loader(sampler: str, shuffle: bool) -> dict[str, Any]:
    return {
        "dataset": {"type": "ToyDataset"},
        "sampler": {"type": sampler, "shuffle": shuffle},
        "batch_size": 3,
        "num_workers": 0,
    }


def _clear_instances() -> None:
    """Forget every process-wide named instance (hubs, loggers, visualizers, scopes)."""
    from torchkiln.logging import MessageHub, MMLogger
    from torchkiln.registry import DefaultScope
    from torchkiln.visualization import Visualizer

    for managed in (MessageHub, MMLogger, Visualizer, DefaultScope):
        managed._instance_dict.clear()


class RunnerTestCase(TestCase):
    """Base class for tests that build runners from small configs.

    ``self.epoch_based_cfg`` trains :class:`ToyModel` for 2 epochs of 4 iterations with
    validation every epoch; ``self.iter_based_cfg`` trains it for 12 iterations with an
    infinite sampler and a checkpoint at iteration 12. Both write into ``self.temp_dir``.
    :meth:`build_runner` gives each runner a unique experiment name.
    """

    dist_cfg: ClassVar[dict[str, Any]] = {
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": 29600,
        "RANK": "0",
        "WORLD_SIZE": "1",
        "LOCAL_RANK": "0",
    }

    def setUp(self) -> None:
        """Register the toy components and prepare both configs in a temporary folder."""
        from torchkiln.registry import DATASETS, METRICS, MODELS

        self.temp_dir = tempfile.TemporaryDirectory()
        MODELS.register_module(module=ToyModel, force=True)
        METRICS.register_module(module=ToyMetric, force=True)
        DATASETS.register_module(module=ToyDataset, force=True)
        self.epoch_based_cfg = Config(
            {
                "work_dir": self.temp_dir.name,
                "model": {"type": "ToyModel"},
                "train_dataloader": _toy_loader("DefaultSampler", shuffle=True),
                "val_dataloader": _toy_loader("DefaultSampler", shuffle=False),
                "val_evaluator": [{"type": "ToyMetric"}],
                "test_dataloader": _toy_loader("DefaultSampler", shuffle=False),
                "test_evaluator": [{"type": "ToyMetric"}],
                "optim_wrapper": {"optimizer": {"type": "SGD", "lr": 0.1}},
                "train_cfg": {"by_epoch": True, "max_epochs": 2, "val_interval": 1},
                "val_cfg": {},
                "test_cfg": {},
                "default_hooks": {"logger": {"type": "LoggerHook", "interval": 1}},
                "custom_hooks": [],
                "env_cfg": {"dist_cfg": {"backend": "nccl"}},
                "experiment_name": "test1",
            }
        )
        self.iter_based_cfg = copy.deepcopy(self.epoch_based_cfg)
        self.iter_based_cfg.train_dataloader = _toy_loader("InfiniteSampler", shuffle=True)
        self.iter_based_cfg.log_processor = {"by_epoch": False}
        self.iter_based_cfg.train_cfg = {"by_epoch": False, "max_iters": 12}
        self.iter_based_cfg.default_hooks = {
            "logger": {"type": "LoggerHook", "interval": 1},
            "checkpoint": {"type": "CheckpointHook", "interval": 12, "by_epoch": False},
        }

    def tearDown(self) -> None:
        """Close log files, forget named instances and the toy components, remove the folder."""
        from torchkiln.registry import DATASETS, METRICS, MODELS

        logging.shutdown()
        _clear_instances()
        for registry, toy in ((MODELS, ToyModel), (METRICS, ToyMetric), (DATASETS, ToyDataset)):
            registry.module_dict.pop(toy.__name__, None)
        self.temp_dir.cleanup()

    def build_runner(self, cfg: Config) -> Any:
        """``Runner.from_cfg(cfg)`` under a unique experiment name."""
        from torchkiln.runner import Runner

        cfg.experiment_name = self.experiment_name
        return Runner.from_cfg(cfg)

    def build_epoch_based_runner(self, cfg: Config) -> Any:
        """A runner from ``cfg`` (expected to be an epoch-based config), as :meth:`build_runner`."""
        return self.build_runner(cfg)

    def build_iter_based_runner(self, cfg: Config) -> Any:
        """A runner from ``cfg`` (expected to be an iteration-based config), as :meth:`build_runner`."""
        return self.build_runner(cfg)

    def clear_work_dir(self) -> None:
        """Close the log files and empty ``self.temp_dir``, keeping the folder itself."""
        logging.shutdown()
        for entry in os.scandir(self.temp_dir.name):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.remove(entry.path)

    @property
    def experiment_name(self) -> str:
        """The test's name and a timestamp: unique per runner."""
        return f"{self._testMethodName}_{time.time_ns()}"

    def setup_dist_env(self) -> None:
        """Set the environment variables of a one-process distributed group (a new port)."""
        self.dist_cfg["MASTER_PORT"] += 1
        os.environ["MASTER_PORT"] = str(self.dist_cfg["MASTER_PORT"])
        for key in ("MASTER_ADDR", "RANK", "WORLD_SIZE", "LOCAL_RANK"):
            os.environ[key] = str(self.dist_cfg[key])
