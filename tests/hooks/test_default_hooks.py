"""merge_default_hooks semantics, the component table, priorities and hook names."""

from __future__ import annotations

import subprocess
import sys
import types

import pytest

from torchkiln.errors import ConfigError
from torchkiln.hooks import DEFAULT_HOOKS, Hook, get_priority, merge_default_hooks
from torchkiln.registry._index import builtin_components
from torchkiln.plugin_host.discovery import find_misspellings, implemented_mount_points
from torchkiln.registry import HOOKS

EXPECTED_PRIORITIES = {
    "RuntimeInfoHook": "VERY_HIGH",
    "IterTimerHook": "NORMAL",
    "DistSamplerSeedHook": "NORMAL",
    "LoggerHook": "BELOW_NORMAL",
    "ProgressBarHook": "VERY_LOW",
    "ParamSchedulerHook": "LOW",
    "CheckpointHook": "VERY_LOW",
    "EMAHook": "NORMAL",
    "EarlyStoppingHook": "LOWEST",
    "EmptyCacheHook": "NORMAL",
    "SyncBuffersHook": "NORMAL",
    "ProfilerHook": "VERY_LOW",
    "NonFiniteLossHook": "NORMAL",
    "CheckInvalidLossHook": "NORMAL",
    "GradientMonitorHook": "NORMAL",
    "PrepareTTAHook": "NORMAL",
    "NaiveVisualizationHook": "NORMAL",
    "NPUProfilerHook": "VERY_LOW",
}

REQUIRED_ARGS = {
    "EarlyStoppingHook": {"monitor": "acc"},
    "PrepareTTAHook": {"tta_cfg": {"type": "MyTTAModel"}},
}


def test_defaults_unchanged():
    merged = merge_default_hooks(None)
    assert merged == DEFAULT_HOOKS and merged is not DEFAULT_HOOKS
    assert list(merged) == [
        "runtime_info", "timer", "sampler_seed", "logger", "param_scheduler", "checkpoint", "progress_bar"]
    assert merged["logger"] == {"type": "LoggerHook", "interval": 10}
    assert merged["checkpoint"] == {"type": "CheckpointHook", "interval": 1}


def test_merge_updates_replaces_removes_and_adds():
    user = {
        "checkpoint": {"interval": 2, "save_best": "auto"},
        "logger": {"type": "MyLogger", "x": 1},
        "timer": None,
        "ema": {"type": "EMAHook", "momentum": 0.001},
        "nope": None,
    }
    merged = merge_default_hooks(user)
    assert merged["checkpoint"] == {"type": "CheckpointHook", "interval": 2, "save_best": "auto"}
    assert merged["logger"] == {"type": "MyLogger", "x": 1}
    assert "timer" not in merged
    assert list(merged) == [
        "runtime_info", "sampler_seed", "logger", "param_scheduler", "checkpoint", "progress_bar", "ema"]
    assert DEFAULT_HOOKS["checkpoint"] == {"type": "CheckpointHook", "interval": 1}  # untouched
    assert user["checkpoint"] == {"interval": 2, "save_best": "auto"}


def test_merge_same_type_spelled_differently_merges():
    from torchkiln.hooks.logger_hook import LoggerHook

    assert merge_default_hooks({"logger": {"type": "torchkiln::LoggerHook", "ignore_last": False}})["logger"] == {
        "type": "torchkiln::LoggerHook", "interval": 10, "ignore_last": False}
    assert merge_default_hooks({"logger": {"type": LoggerHook}})["logger"]["interval"] == 10


def test_merge_hook_objects_and_errors():
    obj = Hook()
    assert merge_default_hooks({"logger": obj})["logger"] is obj
    with pytest.raises(ConfigError, match="needs a 'type'"):
        merge_default_hooks({"extra": {"interval": 3}})
    with pytest.raises(ConfigError, match="mapping"):
        merge_default_hooks(["logger"])  # type: ignore[arg-type]


def test_every_default_builds():
    for cfg in merge_default_hooks(None).values():
        assert isinstance(HOOKS.build(cfg), Hook)


@pytest.mark.parametrize("name", sorted(builtin_components("torchkiln.hooks")))
def test_component_table_resolves(name, monkeypatch, tmp_path):
    if name == "NPUProfilerHook":  # needs torch_npu: a stand-in with its profile() API
        fake = types.ModuleType("torch_npu")
        fake.npu = types.SimpleNamespace(profile=lambda path, use_e2e_profiler=False: None)
        monkeypatch.setitem(sys.modules, "torch_npu", fake)
        monkeypatch.chdir(tmp_path)  # it creates its result_path folder
    cls = HOOKS.get(name)
    module, _, attr = builtin_components("torchkiln.hooks")[name].partition(":")
    assert cls.__module__ == module and cls.__name__ == attr
    assert issubclass(cls, Hook)
    assert get_priority(cls.priority) == get_priority(EXPECTED_PRIORITIES[name])
    hook = cls(**REQUIRED_ARGS.get(name, {}))
    assert find_misspellings(hook) == []
    assert implemented_mount_points(hook)


def test_component_table_and_defaults_do_not_import_torch():
    code = (
        "import sys, torchkiln.hooks.defaults, torchkiln.hooks; from torchkiln.registry import HOOKS; HOOKS.names(); "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_misspelled_default_key_is_refused_not_added_twice():
    from torchkiln.hooks.defaults import merge_default_hooks

    with pytest.raises(ConfigError, match="adds a second CheckpointHook next to the default one under 'checkpoint'") as info:
        merge_default_hooks({"chekpoint": {"type": "CheckpointHook", "interval": 2}})
    assert "did you mean 'checkpoint'?" in str(info.value)
    # A key that only looks alike but adds another kind of hook is fine.
    assert "loggers" in merge_default_hooks({"loggers": {"type": "EMAHook"}})


def test_config_validate_reports_the_misspelled_default_key(tmp_path, capsys):
    from torchkiln.cli import main

    cfg = tmp_path / "c.yaml"
    cfg.write_text("model: {type: DigitsMLP}\ndefault_hooks:\n  chekpoint: {type: CheckpointHook, interval: 2}\n")
    assert main(["config", "validate", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "default_hooks.chekpoint" in err and "did you mean 'checkpoint'?" in err
