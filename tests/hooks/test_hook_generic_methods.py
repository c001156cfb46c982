"""MMEngine-style hooks that override ``_before_epoch/_after_epoch/_before_iter/_after_iter``."""

from __future__ import annotations

from torchkiln.hooks.hook import Hook
from torchkiln.plugin_host import HookHost, implemented_mount_points

EPOCH_AND_ITER = [
    f"{when}_{mode}_{what}" for what in ("epoch", "iter") for mode in ("train", "val", "test")
    for when in ("before", "after")
]


class MMStyleHook(Hook):
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def _before_epoch(self, runner, mode="train"):
        self.calls.append(("before_epoch", mode))

    def _after_epoch(self, runner, mode="train"):
        self.calls.append(("after_epoch", mode))

    def _before_iter(self, runner, batch_idx, data_batch=None, mode="train"):
        self.calls.append(("before_iter", mode, batch_idx, data_batch))

    def _after_iter(self, runner, batch_idx, data_batch=None, outputs=None, mode="train"):
        self.calls.append(("after_iter", mode, batch_idx, data_batch, outputs))


class AfterIterOnly(Hook):
    def __init__(self) -> None:
        self.modes: list[str] = []

    def _after_iter(self, runner, batch_idx, data_batch=None, outputs=None, mode="train"):
        self.modes.append(mode)


class ExplicitWins(AfterIterOnly):
    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.modes.append("explicit")


class OverridesAgain(AfterIterOnly):
    def _after_iter(self, runner, batch_idx, data_batch=None, outputs=None, mode="train"):
        self.modes.append("again-" + mode)


def test_generic_overrides_become_mount_points_and_run_through_the_host():
    host = HookHost()
    hook = MMStyleHook()
    host.register(hook)
    assert sorted(implemented_mount_points(hook)) == sorted(EPOCH_AND_ITER)
    f = host.facade
    f.before_train_epoch("R")
    f.before_train_iter("R", 0, "B")
    f.after_train_iter("R", 0, "B", {"loss": 1})
    f.after_train_epoch("R")
    f.before_val_epoch("R")
    f.before_val_iter("R", 1, "VB")
    f.after_val_iter("R", 1, "VB", ["o"])
    f.after_val_epoch("R", {"acc": 1.0})
    f.before_test_epoch("R")
    f.after_test_iter("R", 2, None, None)
    f.after_test_epoch("R", None)
    assert hook.calls == [
        ("before_epoch", "train"),
        ("before_iter", "train", 0, "B"),
        ("after_iter", "train", 0, "B", {"loss": 1}),
        ("after_epoch", "train"),
        ("before_epoch", "val"),
        ("before_iter", "val", 1, "VB"),
        ("after_iter", "val", 1, "VB", ["o"]),
        ("after_epoch", "val"),
        ("before_epoch", "test"),
        ("after_iter", "test", 2, None, None),
        ("after_epoch", "test"),
    ]


def test_only_the_overridden_generic_method_adds_mount_points():
    assert implemented_mount_points(AfterIterOnly()) == ["after_train_iter", "after_val_iter", "after_test_iter"]
    # a hook without generic overrides keeps the cost-free no-ops
    assert implemented_mount_points(Hook()) == []

    class Plain(Hook):
        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            pass

    assert implemented_mount_points(Plain()) == ["after_train_iter"]


def test_an_explicit_mount_point_wins_and_subclasses_dispatch_to_their_own_override():
    host = HookHost()
    explicit, again = ExplicitWins(), OverridesAgain()
    host.register(explicit)
    host.register(again)
    host.facade.after_train_iter("R", 0)
    host.facade.after_val_iter("R", 0)
    assert explicit.modes == ["explicit", "val"]
    assert again.modes == ["again-train", "again-val"]


def test_super_calls_reach_the_generic_method_as_in_mmengine():
    class CallsSuper(Hook):
        def __init__(self) -> None:
            self.seen: list[str] = []

        def _before_epoch(self, runner, mode="train"):
            self.seen.append(mode)

        def before_val_epoch(self, runner):
            self.seen.append("own")
            super().before_val_epoch(runner)

    hook = CallsSuper()
    hook.before_val_epoch(None)
    hook.before_train_epoch(None)
    assert hook.seen == ["own", "val", "train"]


def test_no_built_in_hook_overrides_a_generic_method_by_accident():
    """A built-in helper named like a generic method would gain mount points it never meant.

    A built-in hook may define a generic method on purpose when it spells out every mount
    point that method serves, so that none is generated.
    """
    from torchkiln.hooks.hook import _GENERIC, _generic_of
    from torchkiln.hookspecs import MOUNT_POINTS
    from torchkiln.registry import HOOKS
    from torchkiln.registry import _index

    names = _index.providers("hooks", HOOKS.entry_point_group)
    for name, scopes in names.items():
        if "torchkiln" not in scopes:
            continue
        cls = HOOKS.get(f"torchkiln::{name}")
        for klass in cls.__mro__:
            if klass is Hook or not issubclass(klass, Hook):
                continue
            for generic in set(vars(klass)) & set(_GENERIC):
                served = [m for m in MOUNT_POINTS if (_generic_of(m) or ("",))[0] == generic]
                generated = [m for m in served if m not in vars(klass)]
                assert not generated, (name, klass, generic, generated)
