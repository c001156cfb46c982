"""Each run controls installed hook plugins: disable, configure, and no double registration."""

from __future__ import annotations

import pytest
from kiln_toys import ToyModel, make_loader

from torchkiln import Runner
from torchkiln.config import validate
from torchkiln.errors import ConfigError


@pytest.fixture(autouse=True)
def _autoload(monkeypatch):
    monkeypatch.setenv("TORCHKILN_DISABLE_PLUGIN_AUTOLOAD", "0")
    monkeypatch.delenv("TORCHKILN_DISABLE_PLUGINS", raising=False)


def _runner(tmp_path, **kw):
    return Runner(
        model=ToyModel(),
        work_dir=str(tmp_path),
        train_dataloader=make_loader(8, 4),
        train_cfg=dict(by_epoch=True, max_epochs=2),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1)),
        default_hooks=dict(checkpoint=None, progress_bar=None),
        **kw,
    )


def _counters(runner):
    return [h for h in runner.hook_host.get_plugins() if type(h).__name__ == "EpochCounterHook"]


def test_a_class_plugin_is_built_with_its_options(tmp_path):
    [default] = _counters(_runner(tmp_path / "a"))
    assert default.every == 1
    runner = _runner(tmp_path / "b", plugins=dict(options=dict(example_counter=dict(every=2))))
    [configured] = _counters(runner)
    assert configured.every == 2
    runner.train()
    assert configured.counted == 1  # epoch 2 only


def test_a_plugin_the_config_lists_runs_once_with_the_configs_arguments(tmp_path):
    runner = _runner(tmp_path, custom_hooks=[dict(type="torchkiln_example.counter_hook.EpochCounterHook", every=3)])
    [only] = _counters(runner)
    assert only.every == 3
    assert "example_counter" not in [name for name, _ in runner._entry_point_plugins]


def test_disable_by_config_and_by_environment(tmp_path, monkeypatch):
    assert _counters(_runner(tmp_path / "a", plugins=dict(disable=["example_counter"]))) == []
    monkeypatch.setenv("TORCHKILN_DISABLE_PLUGINS", "example_counter, other")
    runner = _runner(tmp_path / "b")
    assert _counters(runner) == []
    assert "example_logger" in [name for name, _ in runner._entry_point_plugins]  # the rest still load


def test_options_for_a_plugin_that_is_not_installed(tmp_path):
    with pytest.raises(ConfigError, match="plugins.options names 'example_countr'") as info:
        _runner(tmp_path, plugins=dict(options=dict(example_countr=dict(every=2))))
    assert "did you mean 'example_counter'" in str(info.value)
    errors = validate({"model": {"type": "DigitsMLP"}, "plugins": {"options": {"example_countr": {}}}})
    assert any("example_countr" in str(e) for e in errors)


def test_disable_and_options_take_names_in_any_spelling_packaging_accepts(tmp_path, monkeypatch):
    """``Example-Counter`` is the entry point ``example_counter``; ``Torchkiln--Example`` is the
    distribution ``torchkiln-example``."""
    runner = _runner(tmp_path / "a", plugins=dict(options={"Example-Counter": dict(every=2)}))
    [configured] = _counters(runner)
    assert configured.every == 2
    assert validate({"model": {"type": "DigitsMLP"}, "plugins": {"options": {"Example.Counter": {}}}}) == []
    runner = _runner(tmp_path / "b", plugins=dict(disable=["Torchkiln--Example"]))
    assert _counters(runner) == []
    assert "example_logger" not in [name for name, _ in runner._entry_point_plugins]
    monkeypatch.setenv("TORCHKILN_DISABLE_PLUGINS", "EXAMPLE.counter")
    assert _counters(_runner(tmp_path / "c")) == []
