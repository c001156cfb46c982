"""IterTimerHook (times, ETA) and DistSamplerSeedHook (set_epoch on everything that has it)."""

from __future__ import annotations

import types

import pytest

from torchkiln.hooks.iter_timer_hook import IterTimerHook
from torchkiln.hooks.sampler_seed_hook import DistSamplerSeedHook


def test_timer_records_floats_and_eta(make_runner, drive, monkeypatch):
    clock = iter(float(t) for t in range(100))
    monkeypatch.setattr("torchkiln.hooks.iter_timer_hook.perf_counter", lambda: next(clock))
    runner = make_runner(max_epochs=2, iters_per_epoch=2)
    hook = IterTimerHook()
    hook.before_train(runner)
    drive.train_epoch(runner, [hook])
    scalars = runner.message_hub.scalars
    # Clock ticks: epoch start 0; iter 1: before 1, after 2; iter 2: before 3, after 4.
    assert scalars["train/data_time"] == [1.0, 1.0]
    assert scalars["train/time"] == [2.0, 2.0]
    assert all(type(v) is float for v in scalars["train/time"])
    # After 2 of 4 iterations at 2 s each: 2 left -> 4 s.
    assert runner.message_hub.get_info("eta") == pytest.approx(4.0)


def test_timer_eval_eta(make_runner, monkeypatch):
    clock = iter(float(t) for t in range(100))
    monkeypatch.setattr("torchkiln.hooks.iter_timer_hook.perf_counter", lambda: next(clock))
    runner = make_runner()
    runner.val_loop = types.SimpleNamespace(dataloader=[0, 1, 2, 3])
    hook = IterTimerHook()
    hook.before_val_epoch(runner)  # t=0
    hook.before_val_iter(runner, 0)  # t=1
    hook.after_val_iter(runner, 0)  # t=2
    assert runner.message_hub.scalars["val/time"] == [2.0]
    assert runner.message_hub.get_info("eta") == pytest.approx(6.0)  # 3 batches left x 2 s



def test_timer_generic_methods_and_eta_without_before_train(make_runner, monkeypatch):
    """Driven by hand (no ``before_train``), the generic methods time every mode; the training
    ETA reads the iterations left from the runner, and an evaluation epoch's ETA restarts
    after the epoch ends."""
    clock = iter(float(t) for t in range(100))
    monkeypatch.setattr("torchkiln.hooks.iter_timer_hook.perf_counter", lambda: next(clock))
    runner = make_runner(max_epochs=1, iters_per_epoch=4)
    runner.val_loop = types.SimpleNamespace(dataloader=[0, 1])
    hook = IterTimerHook()
    hook._before_epoch(runner)  # t=0
    hook._before_iter(runner, 0, mode="val")  # t=1: one timestamp serves every mode
    assert runner.message_hub.scalars["val/data_time"] == [1.0]
    hook.before_train_iter(runner, 0)  # t=2
    hook.after_train_iter(runner, 0)  # t=3
    assert runner.message_hub.scalars["train/time"] == [3.0]  # since the epoch started
    assert runner.message_hub.get_info("eta") == pytest.approx(3 * 3.0)  # 3 of 4 left
    for _ in range(2):
        hook.before_val_iter(runner, 0)
        hook.after_val_iter(runner, 0)  # 2 s each, accumulated: eta = 4/1 * 1
    assert runner.message_hub.get_info("eta") == pytest.approx(4.0)
    hook.after_val_epoch(runner)
    hook.before_val_iter(runner, 0)
    hook.after_val_iter(runner, 0)
    assert runner.message_hub.get_info("eta") == pytest.approx(2.0)  # the sum started over

class Seeded:
    def __init__(self) -> None:
        self.epochs: list[int] = []

    def set_epoch(self, epoch: int) -> None:
        self.epochs.append(epoch)


def test_sampler_seed_sets_epoch_everywhere(make_runner, drive):
    runner = make_runner(max_epochs=2, iters_per_epoch=1)
    sampler, inner, dataset = Seeded(), Seeded(), Seeded()
    loader = types.SimpleNamespace(sampler=sampler, batch_sampler=types.SimpleNamespace(sampler=inner), dataset=dataset)
    runner.train_loop.dataloader = loader
    hook = DistSamplerSeedHook()
    for epoch in range(2):
        runner.train_loop.epoch = epoch
        hook.before_train_epoch(runner)
    assert sampler.epochs == [0, 1] and inner.epochs == [0, 1] and dataset.epochs == [0, 1]


def test_sampler_seed_calls_a_shared_sampler_once(make_runner):
    runner = make_runner()
    shared = Seeded()
    runner.train_loop.dataloader = types.SimpleNamespace(
        sampler=shared, batch_sampler=types.SimpleNamespace(sampler=shared), dataset=object()
    )
    runner.train_loop.epoch = 3
    DistSamplerSeedHook().before_train_epoch(runner)
    assert shared.epochs == [3]


def test_sampler_seed_with_a_real_dataloader(make_runner):
    import torch
    from torch.utils.data import DataLoader

    from torchkiln.data.samplers import DefaultSampler

    dataset = list(range(8))
    sampler = DefaultSampler(dataset, shuffle=True, seed=0)
    loader = DataLoader(dataset, batch_size=4, sampler=sampler)
    runner = make_runner()
    runner.train_loop.dataloader = loader
    orders = []
    for epoch in range(2):
        runner.train_loop.epoch = epoch
        DistSamplerSeedHook().before_train_epoch(runner)
        orders.append(torch.cat(list(loader)).tolist())
    assert sorted(orders[0]) == sorted(orders[1]) == dataset
    assert orders[0] != orders[1]
