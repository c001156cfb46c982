"""Hook plugins from the ``torchkiln.plugins`` entry-point group of a (fake) installed dist."""

from __future__ import annotations

import sys
import textwrap

import pytest

from torchkiln.errors import PluginError
from torchkiln.plugin_host import HookHost, autoload_disabled, format_hook_table, load_entry_point_plugins
from torchkiln.registry import _index

PLUGIN_MODULE = '''
calls = []

def before_run(runner):
    calls.append("module.before_run")


class CountingHook:
    priority = "HIGH"

    def before_run(self, runner):
        calls.append("class.before_run")


INSTANCE = CountingHook()
'''


def _others(*names: str) -> set[str]:
    """Entry points of really installed distributions (left alone here), plus ``names``."""
    eps = _index.entry_points_by_group().get("torchkiln.plugins", [])
    return {ep.name for ep in eps if not ep.dist.name.startswith("torchkiln-fake")} | set(names)


@pytest.fixture
def fake_dist(tmp_path, monkeypatch):
    """Install a fake distribution on sys.path; returns a function to write its entry points."""
    made_modules: list[str] = []

    def install(entry_points: dict[str, str], modules: dict[str, str], dist: str = "torchkiln-fake") -> None:
        info = tmp_path / f"{dist.replace('-', '_')}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
        lines = "\n".join(f"{k} = {v}" for k, v in entry_points.items())
        (info / "entry_points.txt").write_text(f"[torchkiln.plugins]\n{lines}\n")
        for name, source in modules.items():
            (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
            made_modules.append(name)
        _index.clear_cache()

    monkeypatch.syspath_prepend(str(tmp_path))
    yield install
    monkeypatch.undo()
    for name in made_modules:
        sys.modules.pop(name, None)
    _index.clear_cache()


def test_module_class_and_instance_entry_points_are_registered(fake_dist):
    fake_dist(
        {
            "fake_module": "fake_plug_a",
            "fake_class": "fake_plug_a:CountingHook",
            "fake_instance": "fake_plug_a:INSTANCE",
        },
        {"fake_plug_a": PLUGIN_MODULE},
    )
    host = HookHost()
    loaded = load_entry_point_plugins(host, disabled=_others(), env={})
    assert sorted(loaded) == [
        ("fake_class", "torchkiln-fake"),
        ("fake_instance", "torchkiln-fake"),
        ("fake_module", "torchkiln-fake"),
    ]
    module = sys.modules["fake_plug_a"]
    host.facade.before_run(None)
    # The HIGH class instances run first; the module has no priority (NORMAL).
    assert module.calls == ["class.before_run", "class.before_run", "module.before_run"]
    assert host.get_plugin("fake_instance") is module.INSTANCE
    assert "(HIGH        ) fake_class (CountingHook)  [torchkiln-fake]" in format_hook_table(host)
    # Loading again is idempotent.
    assert load_entry_point_plugins(host, disabled=_others(), env={}) == []


def test_disable_by_config_name_dist_and_env(fake_dist):
    fake_dist({"fake_one": "fake_plug_b", "fake_two": "fake_plug_b:CountingHook"}, {"fake_plug_b": PLUGIN_MODULE})
    host = HookHost()
    assert load_entry_point_plugins(host, disabled=_others("fake_one"), env={}) == [("fake_two", "torchkiln-fake")]
    assert load_entry_point_plugins(HookHost(), disabled=_others("torchkiln_fake"), env={}) == []
    env = {"TORCHKILN_DISABLE_PLUGIN_AUTOLOAD": "1"}
    assert autoload_disabled(env) and not autoload_disabled({"TORCHKILN_DISABLE_PLUGIN_AUTOLOAD": "0"})
    assert load_entry_point_plugins(HookHost(), env=env) == []
    assert "fake_plug_b" in sys.modules  # imported once, by the first call only


def test_import_failure_names_entry_point_and_distribution(fake_dist):
    fake_dist({"broken": "fake_plug_c"}, {"fake_plug_c": "raise ImportError('missing dependency foo')\n"},
              dist="torchkiln-fake-broken")
    with pytest.raises(PluginError) as info:
        load_entry_point_plugins(HookHost(), disabled=_others(), env={})
    text = str(info.value)
    assert "plugin 'broken' from torchkiln-fake-broken failed to import" in text
    assert "missing dependency foo" in text
    assert "plugins: {disable: [broken]}" in text
    assert isinstance(info.value.__cause__, ImportError)
    # Disabling it makes the run go on.
    assert load_entry_point_plugins(HookHost(), disabled=_others("broken"), env={}) == []


def test_bad_entry_point_targets(fake_dist):
    fake_dist(
        {"needs_args": "fake_plug_d:NeedsArgs", "a_function": "fake_plug_d:helper"},
        {"fake_plug_d": "class NeedsArgs:\n    def __init__(self, x):\n        pass\n\ndef helper():\n    pass\n"},
    )
    with pytest.raises(PluginError, match="could not be built with no arguments"):
        load_entry_point_plugins(HookHost(), disabled=_others("a_function"), env={})
    with pytest.raises(PluginError, match="is a function"):
        load_entry_point_plugins(HookHost(), disabled=_others("needs_args"), env={})


def test_name_clash_with_a_registered_plugin(fake_dist):
    fake_dist({"clash": "fake_plug_e"}, {"fake_plug_e": PLUGIN_MODULE})
    host = HookHost()
    host.register(object(), name="clash")
    with pytest.raises(PluginError, match="named 'clash' is already registered"):
        load_entry_point_plugins(host, disabled=_others(), env={})
