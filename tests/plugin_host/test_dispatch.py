"""Generated dispatch functions: signatures, rebuilds, blame and tracebacks."""

from __future__ import annotations

import inspect
import traceback

import pytest

from torchkiln.hooks.hook import Hook
from torchkiln.hookspecs import MOUNT_POINTS
from torchkiln.plugin_host import HookError, HookHost
from torchkiln.plugin_host.facade import HookFacade


class Recorder(Hook):
    def __init__(self, log: list, tag: str, fail: bool = False) -> None:
        self.log, self.tag, self.fail = log, tag, fail

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.log.append((self.tag, batch_idx))
        if self.fail:
            raise ValueError(f"{self.tag} failed")


def test_every_dispatch_function_has_its_facade_methods_signature():
    log: list = []

    class Everything:
        pass

    for name in MOUNT_POINTS:  # one implementation taking every argument, per mount point
        setattr(Everything, name, lambda self, *args, _n=name: log.append((_n, args)))
    host = HookHost()
    host.register(Everything())
    for name in MOUNT_POINTS:
        dispatch = host.dispatchers[name]
        facade_params = list(inspect.signature(getattr(HookFacade, name)).parameters.values())[1:]
        assert [(p.name, p.default) for p in inspect.signature(dispatch).parameters.values()] == [
            (p.name, p.default) for p in facade_params
        ], name


def test_dispatchers_are_rebuilt_on_register_and_unregister():
    host = HookHost()
    log: list = []
    assert host.dispatchers["after_train_iter"] is None  # no implementations: no function
    host.register(Recorder(log, "a"), name="a")
    host.register(Recorder(log, "b"), name="b", priority="HIGH")
    host.facade.after_train_iter(None, 1)
    assert log == [("b", 1), ("a", 1)]
    host.unregister("b")
    host.facade.after_train_iter(None, 2)
    assert log[2:] == [("a", 2)]
    host.unregister("a")
    assert host.dispatchers["after_train_iter"] is None
    host.facade.after_train_iter(None, 3)  # nothing to call, nothing happens
    assert len(log) == 3


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


def test_traceback_shows_the_dispatch_functions_source():
    host = HookHost()
    host.register(Recorder([], "boom", fail=True), name="boom")
    with pytest.raises(HookError) as info:
        host.facade.after_train_iter(None, 0)
    rendered = "".join(traceback.format_exception(info.value))
    assert "<torchkiln dispatch" in rendered
    assert "h0(runner, batch_idx, data_batch, outputs)" in rendered
    assert 'raise ValueError(f"{self.tag} failed")' in rendered


def test_hosts_with_the_same_call_plans_share_compiled_code_but_not_hooks():
    logs: tuple[list, list] = ([], [])
    hosts = []
    for log in logs:
        host = HookHost()
        host.register(Recorder(log, "x"))
        hosts.append(host)
    first, second = (h.dispatchers["after_train_iter"] for h in hosts)
    assert first is not second and first.__code__ is second.__code__
    hosts[1].facade.after_train_iter(None, 9)
    assert logs == ([], [("x", 9)])
