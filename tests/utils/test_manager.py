"""ManagerMixin: named, process-wide instances, one table per class."""

from __future__ import annotations

import pytest

from torchkiln.registry import Registry
from torchkiln.utils import ManagerMixin


class Tracker(ManagerMixin):
    def __init__(self, name: str = "", value: int = 0) -> None:
        super().__init__(name)
        self.value = value


class SubTracker(Tracker):
    pass


@pytest.fixture(autouse=True)
def _clean():
    yield
    Tracker._instance_dict.clear()
    SubTracker._instance_dict.clear()


def test_instances_are_kept_by_name_and_the_last_is_current():
    with pytest.raises(RuntimeError, match="get_instance"):
        Tracker.get_current_instance()
    a = Tracker.get_instance("a", value=1)
    assert Tracker.get_instance("a") is a and a.instance_name == "a" and a.value == 1
    with pytest.warns(UserWarning, match="ignored"):
        assert Tracker.get_instance("a", value=2).value == 1
    b = Tracker.get_instance("b")
    assert Tracker.get_current_instance() is b
    assert Tracker.check_instance_created("a") and not Tracker.check_instance_created("c")


def test_each_class_has_its_own_table():
    Tracker.get_instance("x")
    assert not SubTracker.check_instance_created("x")
    assert SubTracker._instance_dict is not Tracker._instance_dict


def test_names_must_be_non_empty_strings():
    with pytest.raises(ValueError):
        Tracker(name="")
    with pytest.raises(TypeError):
        Tracker.get_instance(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="'name'"):

        class NoName(ManagerMixin):
            def __init__(self, value: int) -> None:
                pass


def test_building_a_managed_class_fetches_its_named_instance():
    registry = Registry("tk_managed", entry_point_group="tk.none.managed")
    registry.register_module(module=Tracker)
    first = registry.build({"type": "Tracker", "name": "built", "value": 5})
    assert registry.build({"type": "Tracker", "name": "built"}) is first
    assert Tracker.get_instance("built").value == 5
