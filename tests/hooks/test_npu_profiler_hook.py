"""NPUProfilerHook: a clear error without torch_npu; profiles iterations begin..end-1 with it."""

from __future__ import annotations

import sys
import types

import pytest

from torchkiln.errors import ConfigError
from torchkiln.hooks import NPUProfilerHook
from torchkiln.registry import HOOKS


@pytest.fixture
def no_torch_npu(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch_npu", None)  # import torch_npu raises ImportError


def test_missing_torch_npu_is_a_config_error_naming_the_package(no_torch_npu):
    with pytest.raises(ConfigError, match="torch_npu") as info:
        NPUProfilerHook()
    assert isinstance(info.value, ImportError)  # what MMEngine raises there
    assert "ProfilerHook" in str(info.value)  # the hint names the alternative
    with pytest.raises(ConfigError, match="torch_npu"):
        HOOKS.build({"type": "NPUProfilerHook", "end": 2})


class FakeNpuProfile:
    """Stands in for ``torch_npu.npu.profile``: records entering and leaving."""

    instances: list[FakeNpuProfile] = []

    def __init__(self, path: str, use_e2e_profiler: bool = False) -> None:
        self.path = path
        self.use_e2e_profiler = use_e2e_profiler
        self.events: list[str] = []
        FakeNpuProfile.instances.append(self)

    def __enter__(self):
        self.events.append("enter")
        return self

    def __exit__(self, *exc) -> None:
        self.events.append("exit")


@pytest.fixture
def fake_torch_npu(monkeypatch):
    module = types.ModuleType("torch_npu")
    module.npu = types.SimpleNamespace(profile=FakeNpuProfile)
    monkeypatch.setitem(sys.modules, "torch_npu", module)
    FakeNpuProfile.instances.clear()


def test_profiles_iterations_begin_to_end_and_stops_training(fake_torch_npu, make_runner, tmp_path):
    out = tmp_path / "cann"
    hook = NPUProfilerHook(begin=1, end=3, result_path=str(out), use_e2e_profiler=True)
    assert out.is_dir()
    (profile,) = FakeNpuProfile.instances
    assert (profile.path, profile.use_e2e_profiler) == (str(out), True)
    runner = make_runner(max_epochs=1, iters_per_epoch=10)
    hook.before_run(runner)
    for it in range(4):
        runner.train_loop.iter = it
        hook.before_train_iter(runner, it)
        hook.after_train_iter(runner, it)
        if runner.train_loop.stop_training:
            break
    assert profile.events == ["enter", "exit"]
    assert runner.train_loop.iter == 2 and runner.train_loop.stop_training


def test_arguments_are_checked(fake_torch_npu, make_runner, tmp_path):
    with pytest.raises(ValueError, match="begin"):
        NPUProfilerHook(begin=2, end=2, result_path=str(tmp_path))
    hook = NPUProfilerHook(end=50, result_path=str(tmp_path), exit_after_profiling=False)
    with pytest.raises(ConfigError, match="last iteration"):
        hook.before_run(make_runner(max_epochs=1, iters_per_epoch=10))
