"""HookHost: registration, ordering, argument subsets, module plugins, misspellings."""

from __future__ import annotations

import textwrap
import types
from unittest import mock

import pluggy
import pytest

from torchkiln import hookspecs
from torchkiln.errors import ConfigError, PluginError, UsageError
from torchkiln.hooks.hook import PRIORITIES, Hook, get_priority
from torchkiln.plugin_host import HookHost, find_misspellings, implemented_mount_points


def _recorder(calls: list, tag: str, priority: int | str | None = None) -> Hook:
    class Recorder(Hook):
        def before_train_iter(self, runner, batch_idx, data_batch=None):
            calls.append((tag, runner, batch_idx, data_batch))

    hook = Recorder()
    if priority is not None:
        hook.priority = priority
    return hook


def _module(name: str, source: str) -> types.ModuleType:
    module = types.ModuleType(name)
    exec(compile(textwrap.dedent(source), f"<{name}>", "exec"), module.__dict__)
    return module


def test_order_is_priority_then_registration_with_names_and_ints():
    calls: list = []
    host = HookHost()
    host.register(_recorder(calls, "normal-1"))
    host.register(_recorder(calls, "low", "LOW"))
    host.register(_recorder(calls, "int-45", 45))
    host.register(_recorder(calls, "normal-2"))
    host.register(_recorder(calls, "highest", "highest"))
    host.register(_recorder(calls, "arg-wins", "LOWEST"), priority=0)  # argument beats attribute
    host.register(_recorder(calls, "very-low"), priority="VERY_LOW")
    host.facade.before_train_iter("R", 3, "B")
    assert [c[0] for c in calls] == ["highest", "arg-wins", "int-45", "normal-1", "normal-2", "low", "very-low"]
    assert all(c[1:] == ("R", 3, "B") for c in calls)
    assert [r.priority for r in host.call_order("before_train_iter")] == [0, 0, 45, 50, 50, 70, 90]


def test_order_is_deterministic_and_not_pluggys():
    calls: list = []
    host = HookHost()
    for i in range(5):
        host.register(_recorder(calls, f"h{i}"))
    host.facade.before_train_iter(None, 0)
    assert [c[0] for c in calls] == ["h0", "h1", "h2", "h3", "h4"]  # pluggy would give h4..h0


def test_unregister_updates_call_list_and_names_are_unique():
    calls: list = []
    host = HookHost()
    first = host.register(_recorder(calls, "a"))
    second = host.register(_recorder(calls, "b"))
    assert (first, second) == ("Recorder", "Recorder-2")
    removed = host.unregister("Recorder")
    assert removed is not None and "Recorder" not in host
    host.facade.before_train_iter(None, 1)
    assert [c[0] for c in calls] == ["b"]
    with pytest.raises(UsageError, match="no plugin named 'Recorderr'") as info:
        host.unregister("Recorderr")
    assert "did you mean 'Recorder-2'" in str(info.value)


def test_subset_and_reordered_arguments_are_matched_by_name():
    seen: dict = {}

    class Subsets:
        def after_train_iter(self, runner, outputs):
            seen["outputs"] = (runner, outputs)

        def before_train_iter(self, data_batch, runner):  # any order
            seen["before"] = (data_batch, runner)

        def after_val_epoch(self):
            seen["no_args"] = True

        def after_test_iter(self, runner, *rest):
            seen["rest"] = (runner, rest)

        def after_val_iter(self, runner, *, outputs, extra=7):
            seen["kwonly"] = (runner, outputs, extra)

        def before_save_checkpoint(self, runner, **kwargs):
            seen["kwargs"] = (runner, kwargs)

        @staticmethod
        def before_run(runner):
            seen["static"] = runner

    host = HookHost()
    host.register(Subsets())
    f = host.facade
    f.after_train_iter("R", 1, "B", "O")
    f.before_train_iter("R", 1, "B")
    f.after_val_epoch("R", {"acc": 1.0})
    f.after_test_iter("R", 2, "B", "O")
    f.after_val_iter("R", 3, "B", "O")
    f.before_save_checkpoint("R", {"meta": {}})
    f.before_run("R")
    assert seen == {
        "outputs": ("R", "O"),
        "before": ("B", "R"),
        "no_args": True,
        "rest": ("R", (2, "B", "O")),
        "kwonly": ("R", "O", 7),
        "kwargs": ("R", {"checkpoint": {"meta": {}}}),
        "static": "R",
    }


def test_mmengine_style_defaults_receive_the_values():
    got = []

    class MMStyle(Hook):
        priority = "VERY_HIGH"

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            got.append((batch_idx, data_batch, outputs))

        def after_val_epoch(self, runner, metrics=None):
            got.append(metrics)

    host = HookHost()
    host.register(MMStyle())
    host.facade.after_train_iter(None, 4, "B", {"loss": 1})
    host.facade.after_val_epoch(None, {"acc": 0.5})
    assert got == [(4, "B", {"loss": 1}), {"acc": 0.5}]


def test_wrong_argument_names_are_a_plugin_error():
    class WrongNames(Hook):
        def after_train_iter(self, runner, idx, batch, out):
            pass

    with pytest.raises(PluginError) as info:
        HookHost().register(WrongNames())
    text = str(info.value)
    assert "'idx', 'batch', 'out'" in text
    assert "after_train_iter(runner, batch_idx, data_batch, outputs)" in text


def test_extra_parameter_with_default_is_left_alone():
    got = []

    class Extra:
        def after_train_iter(self, runner, scale=2, outputs=None):
            got.append((scale, outputs))

    host = HookHost()
    host.register(Extra())
    host.facade.after_train_iter("R", 0, "B", "O")
    assert got == [(2, "O")]  # outputs comes by keyword after a parameter of its own


def test_module_plugin_functions_are_implementations():
    module = _module("my_plugin_mod", """
        calls = []
        priority = "HIGH"

        def before_run(runner):
            calls.append(("before_run", runner))

        def after_train_iter(runner, outputs):
            calls.append(("after_train_iter", outputs))

        def _private_helper():
            pass
    """)
    host = HookHost()
    name = host.register(module)
    assert name == "my_plugin_mod"
    assert host.call_order("before_run")[0].priority == PRIORITIES["HIGH"]
    host.facade.before_run("R")
    host.facade.after_train_iter("R", 0, None, {"loss": 1})
    assert module.calls == [("before_run", "R"), ("after_train_iter", {"loss": 1})]
    assert implemented_mount_points(module) == ["before_run", "after_train_iter"]


@pytest.mark.parametrize(
    ("bad", "good"),
    [
        ("after_trian_iter", "after_train_iter"),
        ("before_train_iters", "before_train_iter"),
        ("befor_run", "before_run"),
        ("after_val_epoc", "after_val_epoch"),
    ],
)
def test_misspelled_mount_point_is_an_error_with_suggestion(bad, good):
    cls = type("Typo", (Hook,), {bad: lambda self, runner: None})
    with pytest.raises(PluginError) as info:
        HookHost().register(cls())
    assert f"'{bad}'" in str(info.value)
    assert f"did you mean '{good}'" in str(info.value)


def test_misspelled_function_in_module_plugin():
    module = _module("typo_mod", "def after_trian_iter(runner):\n    pass\n")
    assert find_misspellings(module) == [("after_trian_iter", "after_train_iter")]
    with pytest.raises(PluginError, match="after_trian_iter"):
        HookHost().register(module)


def test_helpers_private_names_and_unrelated_names_are_not_misspellings():
    class Fine(Hook):
        def _after_trian_iter(self):
            pass

        def after_train_iter_impl(self):  # far from any mount point
            pass

        def compute(self):
            pass

    host = HookHost()
    host.register(Fine())
    assert find_misspellings(Fine()) == []
    assert host.records()[0].mount_points == ()


def test_inherited_base_noops_are_not_implementations():
    class OnlyOne(Hook):
        def after_train_epoch(self, runner):
            pass

    host = HookHost()
    host.register(OnlyOne())
    assert [mp for mp in hookspecs.MOUNT_POINTS if host.has_impls(mp)] == ["after_train_epoch"]
    assert OnlyOne().get_triggered_stages() == ["after_train_epoch"]
    assert Hook().get_triggered_stages() == []
    host.register(Hook())
    assert not host.has_impls("before_run")


def test_subclass_of_a_hook_inherits_its_implementation_and_super_works():
    calls = []

    class Base(Hook):
        def before_train(self, runner):
            calls.append("base")

    class Child(Base):
        def before_train(self, runner):
            super().before_train(runner)
            calls.append("child")

    class GrandChild(Child):
        def before_run(self, runner):
            super().before_run(runner)  # the base no-op is callable, MMEngine style
            calls.append("run")

    host = HookHost()
    host.register(GrandChild())
    host.facade.before_run(None)
    host.facade.before_train(None)
    assert calls == ["run", "base", "child"]


def test_empty_mount_point_does_not_call_pluggy():
    calls = []

    def spy(*args, **kwargs):
        calls.append(args)
        raise AssertionError("pluggy was called")

    host = HookHost()
    f = host.facade
    seen: list = []
    # Patched only around the calls: pytest itself runs on pluggy.
    with mock.patch.object(pluggy.HookCaller, "__call__", spy), \
            mock.patch.object(host.pm, "_hookexec", spy), \
            mock.patch.object(host.pm, "_inner_hookexec", spy):
        for name in hookspecs.MOUNT_POINTS:
            f.call(name, runner=None)
        f.after_train_iter(None, 0, None, None)
        # Non-empty mount points are dispatched by the facade too, not by pluggy.
        host.register(_recorder(seen, "x"))
        f.before_train_iter(None, 0)
    assert calls == []
    assert len(seen) == 1
    assert not host.has_impls("after_train_iter") and host.has_impls("before_train_iter")


def test_pluggy_still_validates_and_knows_the_plugins():
    host = HookHost()
    hook = _recorder([], "x")
    name = host.register(hook)
    assert host.pm.get_plugin(name) is hook
    assert [impl.plugin for impl in host.pm.hook.before_train_iter.get_hookimpls()] == [hook]


def test_generic_call_validates_names_and_defaults_to_none():
    got = []

    class H:
        def after_train_iter(self, runner, batch_idx, data_batch, outputs):
            got.append((runner, batch_idx, data_batch, outputs))

    host = HookHost()
    host.register(H())
    host.facade.call("after_train_iter", runner="R", batch_idx=1)
    assert got == [("R", 1, None, None)]
    with pytest.raises(UsageError, match="did you mean 'after_train_iter'"):
        host.facade.call("after_trian_iter", runner="R")
    with pytest.raises(UsageError, match="no argument 'output'") as info:
        host.facade.call("after_train_iter", runner="R", output=1)
    assert "did you mean 'outputs'" in str(info.value)
    with pytest.raises(UsageError, match="runner"):
        host.facade.call("before_run")
    with pytest.raises(UsageError, match="unknown mount point"):
        host.has_impls("before_runs")


def test_registration_errors():
    host = HookHost()
    hook = _recorder([], "x")
    host.register(hook, name="mine")
    with pytest.raises(PluginError, match="already registered"):
        host.register(hook)
    with pytest.raises(PluginError, match="named 'mine' is already registered"):
        host.register(_recorder([], "y"), name="mine")
    with pytest.raises(PluginError, match="register an instance"):
        host.register(Hook)
    with pytest.raises(ConfigError, match="did you mean 'NORMAL'"):
        host.register(_recorder([], "z"), priority="NORMLA")
    assert len(host) == 1  # failed registrations leave nothing behind
    assert len(host.pm.get_plugins()) == 1


def test_get_plugins_in_call_order():
    host = HookHost()
    low, high = _recorder([], "low", "LOW"), _recorder([], "high", "HIGH")
    host.register(low)
    host.register(high)
    assert host.get_plugins() == [high, low]
    assert host.get_plugin("Recorder") is low


def test_get_priority_names_ints_and_errors():
    assert [get_priority(n) for n in PRIORITIES] == [0, 10, 30, 40, 50, 60, 70, 90, 100]
    assert get_priority("below_normal") == 60
    assert get_priority(0) == 0 and get_priority(100) == 100 and get_priority(37) == 37
    with pytest.raises(ConfigError, match="between 0 and 100"):
        get_priority(101)
    with pytest.raises(ConfigError, match="between 0 and 100"):
        get_priority(-1)
    with pytest.raises(ConfigError, match="did you mean 'VERY_HIGH'"):
        get_priority("VERY_HIHG")
    with pytest.raises(ConfigError, match="name or an int"):
        get_priority(True)
    with pytest.raises(ConfigError):
        get_priority(1.5)


def test_hook_helpers_follow_mmengine_semantics():
    hook = Hook()
    runner = types.SimpleNamespace(epoch=1, iter=9, max_epochs=2, max_iters=10)
    assert hook.every_n_epochs(runner, 2)          # epoch index 1 = second epoch
    assert not hook.every_n_epochs(runner, 3)
    assert hook.every_n_epochs(runner, 1, start=2)
    assert not hook.every_n_epochs(runner, 1, start=3)
    assert not hook.every_n_epochs(runner, 0)
    assert hook.every_n_train_iters(runner, 5) and hook.every_n_train_iters(runner, 10)
    assert not hook.every_n_train_iters(runner, 3)
    assert hook.every_n_train_iters(runner, 4, start=2)   # (9 + 1 - 2) % 4 == 0
    assert not hook.every_n_train_iters(runner, 1, start=11)
    assert hook.every_n_inner_iters(4, 5) and not hook.every_n_inner_iters(5, 5)
    assert not hook.every_n_inner_iters(4, 0)
    assert hook.end_of_epoch([0, 1, 2], 2) and not hook.end_of_epoch([0, 1, 2], 1)
    assert hook.is_last_train_epoch(runner) and hook.is_last_train_iter(runner)
    runner.epoch, runner.iter = 0, 3
    assert not hook.is_last_train_epoch(runner) and not hook.is_last_train_iter(runner)
