"""EmptyCacheHook, SyncBuffersHook and ProfilerHook."""

from __future__ import annotations

import json
import os

import pytest
import torch

from torchkiln.errors import ConfigError
from torchkiln.hooks.empty_cache_hook import EmptyCacheHook
from torchkiln.hooks.profiler_hook import ProfilerHook
from torchkiln.hooks.sync_buffer_hook import SyncBuffersHook, all_reduce_buffers


def test_empty_cache_moments(make_runner, drive, monkeypatch):
    calls = []
    monkeypatch.setattr("torchkiln.hooks.empty_cache_hook._empty_cache", lambda: calls.append(1))
    runner = make_runner(max_epochs=1, iters_per_epoch=3)
    drive.train_epoch(runner, [EmptyCacheHook()])
    assert len(calls) == 1  # after the epoch only
    calls.clear()
    drive.train_epoch(runner, [EmptyCacheHook(before_epoch=True, after_epoch=False, after_iter=True)])
    assert len(calls) == 1 + 3
    calls.clear()
    drive.val(runner, [EmptyCacheHook(before_epoch=True)], {})
    assert len(calls) == 2


def test_empty_cache_without_cuda_is_harmless(make_runner, drive):
    drive.train_epoch(make_runner(max_epochs=1, iters_per_epoch=1), [EmptyCacheHook(after_iter=True)])


def test_sync_buffers_single_process_is_a_no_op(make_runner, drive):
    model = torch.nn.BatchNorm1d(3)
    model.running_mean.fill_(2.0)
    runner = make_runner(model=model, max_epochs=1, iters_per_epoch=1)
    hook = SyncBuffersHook()
    drive.train_epoch(runner, [hook])
    drive.val(runner, [hook], {})
    assert torch.equal(model.running_mean, torch.full((3,), 2.0))


def test_sync_buffers_averages_across_ranks(monkeypatch):
    # Pretend to be rank 0 of 2 whose peer holds zeros: the mean halves each float buffer.
    import torchkiln.dist as kdist

    def fake_all_reduce(tensor, op="sum"):
        assert op == "mean"
        return tensor.div_(2)

    monkeypatch.setattr(kdist, "get_world_size", lambda: 2)
    monkeypatch.setattr(kdist, "all_reduce", fake_all_reduce)
    model = torch.nn.Sequential(torch.nn.BatchNorm1d(2), torch.nn.BatchNorm1d(3))
    for bn in model:
        bn.running_mean.fill_(4.0)
        bn.running_var.fill_(2.0)
        bn.num_batches_tracked.fill_(5)
    all_reduce_buffers(model)
    for bn in model:
        assert torch.equal(bn.running_mean, torch.full_like(bn.running_mean, 2.0))
        assert torch.equal(bn.running_var, torch.full_like(bn.running_var, 1.0))
        assert int(bn.num_batches_tracked) == 2  # integer buffers: mean 2.5, rounded (to even)
    # A boolean buffer is left alone.
    flags = torch.nn.Module()
    flags.register_buffer("mask", torch.tensor([True, False]))
    all_reduce_buffers(flags)
    assert flags.mask.tolist() == [True, False]


def test_sync_buffers_before_val_only_when_needed(make_runner, drive, monkeypatch):
    calls = []
    monkeypatch.setattr("torchkiln.hooks.sync_buffer_hook.all_reduce_buffers", lambda model: calls.append("sync"))
    runner = make_runner(max_epochs=1, iters_per_epoch=1)
    hook = SyncBuffersHook()
    drive.train_epoch(runner, [hook])
    drive.val(runner, [hook], {})
    assert calls == ["sync"]  # the epoch end synced; validation did not sync again
    drive.val(runner, [hook], {})  # validation mid-epoch (iteration-based loops)
    assert calls == ["sync", "sync"]


def _profile_run(runner, hook, iters):
    hook.before_run(runner)
    x = torch.randn(8, 8)
    for _ in range(iters):
        torch.mm(x, x)
        hook.after_train_iter(runner, runner.iter, None, None)
        runner.train_loop.iter += 1
    hook.after_run(runner)


@pytest.mark.slow  # the first profiler start initialises kineto (seconds on some machines)
def test_profiler_writes_trace_and_logs_table(make_runner):
    runner = make_runner(max_epochs=1, iters_per_epoch=4)
    hook = ProfilerHook(by_epoch=False, profile_times=2)
    _profile_run(runner, hook, 4)
    assert hook.trace_path == os.path.join(runner.log_dir, "profiler_trace.json")
    with open(hook.trace_path, encoding="utf-8") as fh:
        trace = json.load(fh)
    assert any("mm" in str(event.get("name", "")) for event in trace["traceEvents"])
    assert any("profiler summary" in m and "aten::mm" in m for m in runner.logger.messages("info"))


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*clears events at the end of each cycle")
def test_profiler_log_trace_handler(make_runner):
    runner = make_runner(max_epochs=1, iters_per_epoch=4)
    hook = ProfilerHook(by_epoch=False, profile_times=4, schedule={"wait": 0, "warmup": 1, "active": 2},
                        on_trace_ready={"type": "log_trace", "sort_by": "cpu_time_total", "row_limit": 5})
    _profile_run(runner, hook, 4)
    assert any(m.startswith("profiler cycle:") for m in runner.logger.messages("info"))
    assert hook.trace_path is None


def test_profiler_arguments(make_runner):
    with pytest.raises(ConfigError, match="profile_times"):
        ProfilerHook(profile_times=0)
    with pytest.raises(ConfigError, match="on_trace_ready"):
        ProfilerHook(on_trace_ready={"type": "html"})
    runner = make_runner(max_epochs=2)
    with pytest.raises(ConfigError, match="exceeds"):
        ProfilerHook(profile_times=3).before_run(runner)
    # The exception types MMEngine raises at the same checks.
    with pytest.raises(ValueError, match="profile_times"):
        ProfilerHook(profile_times=0)
    with pytest.raises(TypeError, match="schedule"):
        ProfilerHook(schedule={})
    with pytest.raises(ValueError, match="on_trace_ready"):
        ProfilerHook(on_trace_ready=0)
    with pytest.raises(ValueError, match="exceeds"):
        ProfilerHook(profile_times=3).before_run(runner)


class _FakeProfiler:
    """Counts the calls ProfilerHook makes on ``torch.profiler.profile``."""

    def __init__(self) -> None:
        self.steps = 0
        self.exits = 0

    def step(self) -> None:
        self.steps += 1

    def __exit__(self, *exc) -> None:
        self.exits += 1

    def key_averages(self):
        raise RuntimeError("no events")

    def export_chrome_trace(self, path: str) -> None:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write("{}")


def test_profiler_stops_at_the_training_iteration_profile_times(make_runner):
    runner = make_runner(max_epochs=1, iters_per_epoch=20)
    hook = ProfilerHook(by_epoch=False, profile_times=10)
    hook.before_run(runner)
    hook.profiler.__exit__(None, None, None)  # the real one started by before_run
    fake = hook.profiler = _FakeProfiler()
    runner.train_loop.iter = 9  # the tenth iteration (counted from the start of training)
    hook.after_train_iter(runner, 9)
    assert (fake.steps, fake.exits) == (1, 1)
    assert os.path.isfile(hook.trace_path)
    hook.after_train_iter(runner, 10)  # stopped: no more steps
    hook.after_run(runner)
    assert (fake.steps, fake.exits) == (1, 1)


def test_profiler_starts_before_the_run_and_parses_trace_config(make_runner):
    runner = make_runner(max_epochs=1, iters_per_epoch=2)
    hook = ProfilerHook()
    hook.before_run(runner)
    assert hook.profiler is not None
    hook.profiler.__exit__(None, None, None)
    hook.profiler = _FakeProfiler()
    hook.after_run(runner)  # the run ended before the epoch did: stop and write the trace
    assert hook.profiler.exits == 1

    def handler(prof):
        return None

    hook.on_trace_ready = handler
    assert hook._parse_trace_config(runner) is handler
    hook.on_trace_ready = {"type": "log_trace", "row_limit": 3}
    assert callable(hook._parse_trace_config(runner))
    hook.on_trace_ready = {"type": "unknown"}
    with pytest.raises(ValueError, match="log_trace"):
        hook._parse_trace_config(runner)


def test_profiler_handed_a_profiler_steps_it_without_before_run(make_runner):
    """A profiler set by hand (no ``before_run``) is stepped and stopped like one the hook
    started; a hook with no profiler does nothing."""
    runner = make_runner(max_epochs=1, iters_per_epoch=10)
    ProfilerHook(by_epoch=False).after_train_iter(runner, 0)  # no profiler: nothing to step
    hook = ProfilerHook(by_epoch=False, profile_times=10)
    hook.profiler = fake = _FakeProfiler()
    runner.train_loop.iter = 9
    hook.after_train_iter(runner, 9)
    assert (fake.steps, fake.exits) == (1, 1)
    hook.after_train_iter(runner, 9)  # stopped: no more steps
    assert fake.steps == 1


def test_profiler_without_activities_uses_torch_defaults_and_kineto_check():
    from torchkiln.hooks.profiler_hook import check_kineto

    assert check_kineto() == torch.autograd.kineto_available()
    hook = ProfilerHook(activity_with_cpu=False, activity_with_cuda=False)
    assert hook._activities() is None
