"""Dispatch functions: arguments, rebuilds, blame and tracebacks."""

from __future__ import annotations

import os
import traceback

import pytest

from torchkiln.hooks.hook import Hook
from torchkiln.hookspecs import MOUNT_POINTS
from torchkiln.plugin_host import HookError, HookHost


class Recorder(Hook):
    def __init__(self, log: list, tag: str, fail: bool = False) -> None:
        self.log, self.tag, self.fail = log, tag, fail

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.log.append((self.tag, batch_idx))
        if self.fail:
            raise ValueError(f"{self.tag} failed")


def test_every_mount_point_passes_its_hookspec_arguments_by_position_and_by_name():
    from torchkiln.plugin_host.discovery import SPEC_ARGS

    log: list = []

    class Everything:
        pass

    for name in MOUNT_POINTS:  # one implementation taking every argument, per mount point
        setattr(Everything, name, lambda self, *args, _n=name: log.append((_n, args)))
    host = HookHost()
    host.register(Everything())
    for name in MOUNT_POINTS:
        params = SPEC_ARGS[name]
        getattr(host.facade, name)(*params)
        getattr(host.facade, name)(**{p: p for p in params})
        getattr(host.facade, name)("runner")  # the rest default to None
        assert log[-3:] == [(name, params), (name, params), (name, ("runner",) + (None,) * (len(params) - 1))]


def test_dispatch_is_rebuilt_on_register_and_unregister():
    host = HookHost()
    log: list = []
    assert host.call_table["after_train_iter"] == ()
    host.register(Recorder(log, "a"), name="a")
    host.register(Recorder(log, "b"), name="b", priority="HIGH")
    host.facade.after_train_iter(None, 1)
    assert log == [("b", 1), ("a", 1)]
    host.unregister("b")
    host.facade.after_train_iter(None, 2)
    assert log[2:] == [("a", 2)]
    host.unregister("a")
    assert host.call_table["after_train_iter"] == ()
    host.facade.after_train_iter(None, 3)  # nothing to call, nothing happens
    assert len(log) == 3


def test_the_facade_checks_the_arguments_it_is_given():
    from torchkiln.errors import UsageError

    host = HookHost()
    host.register(Recorder([], "a"), name="a")
    facade = host.facade
    with pytest.raises(UsageError, match="takes 4 arguments"):
        facade.after_train_iter(None, 1, None, None, "extra")
    with pytest.raises(UsageError, match="twice"):
        facade.after_train_iter(None, 1, batch_idx=2)
    with pytest.raises(UsageError, match="did you mean 'outputs'"):
        facade.after_train_iter(None, 1, output=2)
    with pytest.raises(UsageError, match="needs runner"):
        facade.after_train_iter(batch_idx=2)
    with pytest.raises(Exception, match="after_trian_iter"):
        facade.install("after_trian_iter", facade.after_train_iter)


def test_the_hook_that_raised_is_blamed_and_the_rest_do_not_run():
    host = HookHost()
    log: list = []
    host.register(Recorder(log, "first"), name="first", priority=10)
    host.register(Recorder(log, "second", fail=True), name="second", priority=20)
    host.register(Recorder(log, "third"), name="third", priority=30)
    with pytest.raises(HookError) as info:
        host.facade.after_train_iter(None, 5)
    assert info.value.plugin_name == "second"
    assert log == [("first", 5), ("second", 5)]


def test_traceback_reaches_the_hook_through_the_dispatch_function():
    host = HookHost()
    host.register(Recorder([], "boom", fail=True), name="boom")
    with pytest.raises(HookError) as info:
        host.facade.after_train_iter(None, 0)
    assert info.value.mount_point == "after_train_iter"
    assert isinstance(info.value.__cause__, ValueError)
    rendered = "".join(traceback.format_exception(info.value))
    assert f"{os.sep}plugin_host{os.sep}dispatch.py" in rendered
    assert 'raise ValueError(f"{self.tag} failed")' in rendered


def test_hosts_do_not_share_hooks():
    logs: tuple[list, list] = ([], [])
    hosts = []
    for log in logs:
        host = HookHost()
        host.register(Recorder(log, "x"))
        hosts.append(host)
    hosts[1].facade.after_train_iter(None, 9)
    assert logs == ([], [("x", 9)])


def test_a_hook_taking_every_argument_is_called_as_it_is():
    host = HookHost()
    hook = Recorder([], "x")
    host.register(hook)
    ((record, function),) = host.call_table["after_train_iter"]
    assert record.plugin is hook and function == hook.after_train_iter  # no wrapper in between


def test_an_unregistered_hook_is_freed_without_the_cycle_collector():
    import gc
    import weakref

    host = HookHost()
    hook = Recorder([], "gone")
    ref = weakref.ref(hook)
    host.register(hook, name="gone")
    host.facade.after_train_iter(None, 0)
    gc.disable()
    try:
        host.unregister("gone")
        del hook
        assert ref() is None  # nothing (such as a dispatch function's globals) holds it
    finally:
        gc.enable()


def test_mixed_argument_plans_in_one_dispatch_and_a_note_from_a_later_hook():
    from torchkiln.errors import ConfigError

    seen = []

    class KeywordOnly:
        def after_val_iter(self, runner, *, outputs):
            seen.append(("kw", runner, outputs))

    class Positional:
        def after_val_iter(self, batch_idx, runner):
            seen.append(("pos", batch_idx, runner))

    class Rest:
        def after_val_iter(self, runner, **kwargs):
            seen.append(("rest", runner, kwargs))
            raise ConfigError("bad value")

    host = HookHost()
    host.register(KeywordOnly(), priority=10)
    host.register(Positional(), priority=20)
    host.register(Rest(), priority=30)
    with pytest.raises(ConfigError) as info:
        host.facade.after_val_iter("R", 4, "B", "O")
    assert seen == [("kw", "R", "O"), ("pos", 4, "R"),
                    ("rest", "R", {"batch_idx": 4, "data_batch": "B", "outputs": "O"})]
    assert info.value.__notes__ == ["raised by hook Rest (user code) in after_val_iter"]


def test_dispatch_functions_are_named_for_their_mount_point():
    host = HookHost()
    host.register(Recorder([], "x"))
    dispatch = host.facade.after_train_iter
    assert dispatch.__name__ == "dispatch_after_train_iter"
    assert dispatch.__module__ == "torchkiln.plugin_host.dispatch"
