"""MMEngine's module paths and loop attributes: ``torchkiln.dataset``, ``runner.loops``,
``runner.priority``, ``runner.log_processor``, ``IterBasedTrainLoop.dataloader_iterator``."""

from __future__ import annotations

import logging

import pytest
from kiln_toys import ToyModel, make_loader

from torchkiln import Runner


@pytest.fixture(autouse=True)
def _no_entry_point_plugins(monkeypatch):
    monkeypatch.setenv("TORCHKILN_DISABLE_PLUGIN_AUTOLOAD", "1")


def test_mmengine_module_paths_name_the_same_objects():
    import torchkiln.data as data
    import torchkiln.dataset as dataset
    from torchkiln.logging import LogProcessor
    from torchkiln.plugin_host.priority import Priority, get_priority
    from torchkiln.runner import LogProcessor as RunnerLogProcessor
    from torchkiln.runner import loops, log_processor, priority, train_loops

    assert dataset.DefaultSampler is data.DefaultSampler
    assert dataset.pseudo_collate is data.pseudo_collate
    assert set(dataset.__all__) == set(data.__all__)
    from torchkiln.data.builder import worker_init_fn
    from torchkiln.dataset import utils as dataset_utils

    assert dataset_utils.pseudo_collate is data.pseudo_collate
    assert dataset_utils.COLLATE_FUNCTIONS is data.COLLATE_FUNCTIONS
    assert dataset_utils.worker_init_fn is worker_init_fn
    assert priority.Priority is Priority and priority.get_priority is get_priority
    assert log_processor.LogProcessor is LogProcessor is RunnerLogProcessor
    assert loops.IterBasedTrainLoop is train_loops.IterBasedTrainLoop
    assert loops._InfiniteDataloaderIterator is train_loops._InfiniteDataloaderIterator


def test_utils_sequence_checks():
    from torchkiln.utils import is_list_of, is_seq_of, is_tuple_of

    assert is_list_of([1, 2], int) and not is_list_of((1, 2), int)
    assert is_tuple_of((1, "a"), (int, str)) and not is_tuple_of((1, 2.0), int)
    assert is_seq_of([], dict) and not is_seq_of("ab", int) and not is_seq_of(3, int)


def _iter_runner(tmp_path, max_iters):
    return Runner(
        model=ToyModel(),
        work_dir=str(tmp_path),
        train_dataloader=make_loader(8, 4),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1)),
        default_hooks=dict(progress_bar=None, checkpoint=None),
    )


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_iter_loop_exposes_its_endless_iterator_and_warns_once_on_restart(tmp_path):
    from torchkiln.runner.loops import _InfiniteDataloaderIterator

    runner = _iter_runner(tmp_path, max_iters=7)  # 2 batches per pass: restarts 3 times
    handler = _Records()
    runner.logger.addHandler(handler)
    try:
        runner.train()
    finally:
        runner.logger.removeHandler(handler)
    loop = runner.train_loop
    assert isinstance(loop.dataloader_iterator, _InfiniteDataloaderIterator)
    assert loop.dataloader_iterator is loop.dataloader_iterator
    restarts = [r for r in handler.records if "InfiniteSampler" in r.getMessage()]
    assert len(restarts) == 1 and restarts[0].levelno == logging.WARNING
    assert runner.iter == 7


def test_custom_run_draws_batches_from_dataloader_iterator(tmp_path):
    runner = _iter_runner(tmp_path, max_iters=3)
    loop = runner.train_loop
    batches = [next(loop.dataloader_iterator) for _ in range(5)]
    assert len(batches) == 5 and loop.epoch == 2  # two passes finished, third begun
