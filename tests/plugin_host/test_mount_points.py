"""``hookspecs.py`` is the one list of mount points: the facade and ``Hook`` derive from it."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from torchkiln import hookspecs
from torchkiln.hooks.hook import Hook
from torchkiln.hookspecs import MOUNT_POINTS
from torchkiln.plugin_host import SPEC_ARGS, HookHost
from torchkiln.plugin_host.discovery import NOOP_MARKER


def test_mount_points_are_the_hookspecs_in_source_order():
    tree = ast.parse(Path(hookspecs.__file__).read_text())
    decorated = [
        node.name for node in tree.body
        if isinstance(node, ast.FunctionDef)
        and any(isinstance(d, ast.Name) and d.id == "hookspec" for d in node.decorator_list)
    ]
    assert list(MOUNT_POINTS) == decorated
    assert len(MOUNT_POINTS) == 24


def test_the_facade_has_every_mount_point_and_nothing_else_hand_written():
    facade = HookHost().facade
    for name in MOUNT_POINTS:
        assert callable(getattr(facade, name)), name
    own = {name for name, value in vars(type(facade)).items() if inspect.isfunction(value)}
    assert not own & set(MOUNT_POINTS)


def test_the_hook_base_class_has_a_marked_no_op_per_hookspec_with_its_arguments():
    for name in MOUNT_POINTS:
        method = getattr(Hook, name)
        assert getattr(method, NOOP_MARKER, False), name
        params = list(inspect.signature(method).parameters.values())
        assert [p.name for p in params] == ["self", *SPEC_ARGS[name]], name
        assert all(p.default is None for p in params[2:]), name
        assert method.__qualname__ == f"Hook.{name}"
        Hook().__getattribute__(name)(None)  # callable with runner alone, as super() calls are
