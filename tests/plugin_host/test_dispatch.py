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


def test_the_facade_attribute_is_the_dispatch_function_while_hooks_are_registered():
    host = HookHost()
    log: list = []
    facade = host.facade
    assert facade.after_train_iter.__func__ is HookFacade.after_train_iter  # the no-op method
    host.register(Recorder(log, "a"), name="a")
    assert facade.after_train_iter is host.dispatchers["after_train_iter"]  # no frame in between
    facade.after_train_iter(runner=None, batch_idx=7, outputs={"loss": 1})  # by keyword too
    host.register(Recorder(log, "b"), name="b", priority="HIGH")
    assert facade.after_train_iter is host.dispatchers["after_train_iter"]  # the rebuilt one
    facade.after_train_iter(None, 8)
    assert log == [("a", 7), ("b", 8), ("a", 8)]
    host.unregister("a")
    host.unregister("b")
    assert facade.after_train_iter.__func__ is HookFacade.after_train_iter
    facade.after_train_iter(None, 9)
    assert len(log) == 3
    with pytest.raises(Exception, match="after_trian_iter"):
        facade.install("after_trian_iter", None)


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


def test_facade_parameters_are_the_hookspecs():
    from torchkiln.plugin_host.discovery import SPEC_ARGS

    for name in MOUNT_POINTS:
        params = tuple(inspect.signature(getattr(HookFacade, name)).parameters)[1:]
        assert params == SPEC_ARGS[name], name


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
    dispatch = host.dispatchers["after_train_iter"]
    assert dispatch.__name__ == "dispatch_after_train_iter"
    assert dispatch.__module__ == "torchkiln.plugin_host.dispatch"
