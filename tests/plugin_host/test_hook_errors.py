"""Error attribution: an exception in a hook names the plugin, its distribution, the mount point."""

from __future__ import annotations

import traceback

import pytest

from torchkiln.errors import EXIT_PLUGIN, BuildError, ConfigError, PluginError, RunInterrupted
from torchkiln.hooks.hook import Hook
from torchkiln.plugin_host import HookError, HookHost


class ExplodingHook(Hook):
    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        return self._inner(batch_idx)

    def _inner(self, batch_idx):
        return 1 / (batch_idx - batch_idx)  # ZeroDivisionError, two frames deep


def test_exception_is_attributed_with_cause_and_traceback():
    host = HookHost()
    calls = []

    class After(Hook):
        priority = "LOW"

        def after_train_iter(self, runner):
            calls.append("after")

    host.register(After())
    host.register(ExplodingHook())
    with pytest.raises(HookError) as info:
        host.facade.after_train_iter(None, 3, None, None)
    err = info.value
    assert isinstance(err, PluginError) and err.exit_code == EXIT_PLUGIN
    assert isinstance(err.__cause__, ZeroDivisionError) and err.original is err.__cause__
    assert (err.plugin_name, err.plugin_type, err.dist, err.mount_point) == (
        "ExplodingHook", "ExplodingHook", "user code", "after_train_iter")
    text = str(err)
    assert "ExplodingHook" in text and "user code" in text and "after_train_iter" in text
    assert "ZeroDivisionError" in text
    # The original traceback reaches into the hook's own frames.
    frames = [f.name for f in traceback.extract_tb(err.__cause__.__traceback__)]
    assert frames[-2:] == ["after_train_iter", "_inner"]
    rendered = "".join(traceback.format_exception(err))
    assert "1 / (batch_idx - batch_idx)" in rendered
    assert calls == []  # the chain stops at the failing hook


def test_named_plugin_from_a_distribution_is_named_with_its_dist():
    host = HookHost()
    host.register(ExplodingHook(), name="boom", dist="torchkiln-boom")
    with pytest.raises(HookError) as info:
        host.facade.call("after_train_iter", runner=None, batch_idx=0)
    err = info.value
    assert err.dist == "torchkiln-boom" and err.plugin_name == "boom"
    assert "boom (ExplodingHook) (torchkiln-boom) failed in after_train_iter" in str(err)
    assert "plugins: {disable: [boom]}" in str(err)


def test_module_plugin_error_is_attributed():
    import types

    module = types.ModuleType("exploding_mod")
    exec("def before_run(runner):\n    raise KeyError('nope')\n", module.__dict__)
    host = HookHost()
    host.register(module)
    with pytest.raises(HookError, match="hook exploding_mod \\(user code\\) failed in before_run: KeyError"):
        host.facade.before_run(None)


@pytest.mark.parametrize(
    "exc",
    [
        KeyboardInterrupt(),
        SystemExit(3),
        RunInterrupted("stopped", exit_code=130),
        ConfigError("bad key"),
        BuildError("unknown type"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_interrupts_and_user_errors_pass_through_unchanged(exc):
    class Raiser(Hook):
        def before_train(self, runner):
            raise exc

    host = HookHost()
    host.register(Raiser())
    with pytest.raises(type(exc)) as info:
        host.facade.before_train(None)
    assert info.value is exc
    assert not isinstance(info.value, HookError)


def test_user_errors_gain_a_note_naming_the_hook():
    class Raiser(Hook):
        def before_train(self, runner):
            raise ConfigError("bad key")

    host = HookHost()
    host.register(Raiser())
    with pytest.raises(ConfigError) as info:
        host.facade.before_train(None)
    assert info.value.__notes__ == ["raised by hook Raiser (user code) in before_train"]


def test_nested_hook_error_is_not_wrapped_twice():
    inner_host = HookHost()
    inner_host.register(ExplodingHook())

    class Outer(Hook):
        def before_save_checkpoint(self, runner, checkpoint):
            inner_host.facade.after_train_iter(runner, 0)

    host = HookHost()
    host.register(Outer())
    with pytest.raises(HookError) as info:
        host.facade.before_save_checkpoint(None, {})
    assert info.value.plugin_name == "ExplodingHook"
    assert info.value.mount_point == "after_train_iter"


def test_built_in_source_is_derived_from_the_module():
    from torchkiln.plugin_host.host import _source_of_module

    assert _source_of_module("torchkiln.hooks.logger_hook") == "built-in"
    assert _source_of_module(__name__) == "user code"
