"""Setup's objects are collected out of the young generations before the first iteration."""

from __future__ import annotations

import gc

from kiln_toys import ToyModel, make_loader

from torchkiln import Hook, Runner
from torchkiln.runner.gc_phase import promote_setup_objects


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_promote_collects_young_cycles_and_empties_generation_one():
    gc.collect()
    marker = _Cycle()
    marker_id = id(marker)
    del marker
    promote_setup_objects()
    assert gc.get_count()[1] == 0
    assert all(id(o) != marker_id for o in gc.get_objects(generation=0))
    assert all(id(o) != marker_id for o in gc.get_objects(generation=1))


def test_promote_does_nothing_with_the_collector_disabled():
    gc.disable()
    try:
        collections = []
        gc.callbacks.append(lambda phase, info: collections.append(info["generation"]))
        promote_setup_objects()
    finally:
        gc.callbacks.pop()
        gc.enable()
    assert collections == []


class _Events(Hook):
    def __init__(self, events):
        self.events = events

    def before_run(self, runner):
        self.events.append("before_run")

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.events.append("before_train_iter")


def test_a_young_collection_runs_between_before_run_and_the_first_iteration(tmp_path):
    events: list[str] = []

    def on_gc(phase, info):
        if phase == "start" and info["generation"] == 1:
            events.append("gen1")

    runner = Runner(
        model=ToyModel(),
        work_dir=str(tmp_path),
        train_dataloader=make_loader(8, 2),
        train_cfg=dict(by_epoch=True, max_epochs=1),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1)),
        default_hooks=dict(checkpoint=None, progress_bar=None),
        custom_hooks=[_Events(events)],
    )
    gc.callbacks.append(on_gc)
    try:
        runner.train()
    finally:
        gc.callbacks.remove(on_gc)
    first_iter = events.index("before_train_iter")
    assert "gen1" in events[events.index("before_run") : first_iter]
