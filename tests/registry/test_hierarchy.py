"""Registry trees: child registries with a scope, parent fallback, scoped names across the
tree, lazy ``locations``, the default scope choosing the registry to build from."""

from __future__ import annotations

import sys
import warnings

import pytest

from torchkiln.errors import BuildError, PluginError
from torchkiln.registry import (
    MODELS,
    DefaultScope,
    Registry,
    build_from_cfg,
    count_registered_modules,
    init_default_scope,
    set_default_scope,
    traverse_registry_tree,
)
from torchkiln.registry import _index


@pytest.fixture()
def tree():
    """animals (root) -> birds (scope birds) -> owls (scope owls); animals -> fish (scope fish)."""
    animals = Registry("animals", scope="zoo", entry_point_group="torchkiln.test_animals")
    birds = Registry("birds", parent=animals, scope="birds")
    owls = Registry("owls", parent=birds, scope="owls")
    fish = Registry("fish", parent=animals, scope="fish")
    return animals, birds, owls, fish


def test_children_know_their_parent_root_and_scope(tree) -> None:
    animals, birds, owls, fish = tree
    assert birds.parent is animals and owls.root is animals and animals.root is animals
    assert animals.children == {"birds": birds, "fish": fish}
    assert (animals.scope, owls.scope) == ("zoo", "owls")
    assert animals._search_child("owls") is owls and birds._search_child("fish") is None
    # a registry made without a scope takes its creator's top-level package
    assert Registry("plain").scope == "tests"


def test_a_child_falls_back_to_its_parents_and_the_root_sees_the_children(tree) -> None:
    animals, birds, owls, fish = tree

    @animals.register_module()
    class Cat:
        pass

    @owls.register_module()
    class BarnOwl:
        pass

    assert owls.get("Cat") is Cat and birds.get("Cat") is Cat
    # a child's names are offered from the root under the child's scope
    assert animals.get("BarnOwl") is BarnOwl
    assert "BarnOwl" in animals and "BarnOwl" in owls and "BarnOwl" not in fish
    # but a miss in one child does not wander into a sibling
    with pytest.raises(BuildError, match="unknown type 'BarnOwl' in registry fish"):
        fish.get("BarnOwl")
    assert (len(animals), len(owls), len(birds)) == (1, 1, 0)


@pytest.mark.parametrize("sep", ["::", "."])
def test_scoped_names_reach_siblings_and_descendants(tree, sep: str) -> None:
    animals, birds, owls, fish = tree

    @owls.register_module()
    class BarnOwl:
        pass

    @fish.register_module()
    class Trout:
        pass

    assert fish.get(f"owls{sep}BarnOwl") is BarnOwl
    assert fish.get(f"birds{sep}owls{sep}BarnOwl") is BarnOwl
    assert owls.get(f"fish{sep}Trout") is Trout
    assert animals.get(f"fish{sep}Trout") is Trout
    with pytest.raises(BuildError, match="'Trout' in animals is not offered by 'owls'"):
        animals.get("owls::Trout")


def test_a_name_offered_by_two_children_is_a_clash_the_default_scope_settles(tree) -> None:
    animals, birds, owls, fish = tree

    @birds.register_module(name="Swimmer")
    class Penguin:
        pass

    @fish.register_module(name="Swimmer")
    class Salmon:
        pass

    with pytest.raises(BuildError, match="more than one distribution: birds, fish"):
        animals.get("Swimmer")
    assert animals.get("Swimmer", default_scope="fish") is Salmon
    set_default_scope("birds")
    assert animals.get("Swimmer") is Penguin


def test_default_scope_picks_the_registry_to_build_from(tree) -> None:
    animals, birds, owls, fish = tree

    @animals.register_module(name="Pet")
    class Dog:
        pass

    @owls.register_module(name="Pet")
    class Owlet:
        pass

    with pytest.raises(BuildError, match="more than one distribution"):
        animals.build({"type": "Pet"})
    set_default_scope("owls")
    assert isinstance(animals.build({"type": "Pet"}), Owlet)
    assert isinstance(fish.build({"type": "Pet"}), Owlet)
    # _scope_ overrides it for one component, and only while it is built
    seen = []

    @fish.register_module()
    class Tank:
        def __init__(self, pet: dict) -> None:
            seen.append(DefaultScope.get_current_instance().scope_name)
            self.pet = animals.build(pet)

    tank = animals.build({"type": "Tank", "_scope_": "fish", "pet": {"type": "Pet"}})
    assert seen == ["fish"] and isinstance(tank.pet, Dog)
    assert DefaultScope.get_current_instance().scope_name == "owls"


def test_switch_scope_and_registry_restores_the_scope(tree) -> None:
    animals, birds, owls, fish = tree
    set_default_scope("fish")
    with owls.switch_scope_and_registry("birds") as chosen:
        assert chosen is birds
        assert DefaultScope.get_current_instance().scope_name == "birds"
        with owls.switch_scope_and_registry(None) as same:
            assert same is birds
    with owls.switch_scope_and_registry("no_such_scope") as chosen:
        assert chosen is owls
    assert DefaultScope.get_current_instance().scope_name == "fish"


def test_locations_are_imported_once_on_first_lookup(tmp_path, monkeypatch) -> None:
    holder = Registry("holder", scope="holder_root", entry_point_group="torchkiln.test_holder")
    (tmp_path / "tk_loc_models.py").write_text(
        "import sys\n"
        "holder = sys.modules['tk_loc_holder'].child\n"
        "IMPORTS = sys.modules['tk_loc_holder'].imports\n"
        "IMPORTS.append(1)\n"
        "@holder.register_module()\n"
        "class LocNet:\n"
        "    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import types

    ns = types.ModuleType("tk_loc_holder")
    ns.child = Registry("child", parent=holder, scope="tk_loc", locations=["tk_loc_models"])  # type: ignore[attr-defined]
    ns.imports = []  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tk_loc_holder", ns)
    try:
        assert "tk_loc_models" not in sys.modules
        assert ns.child.get("LocNet").__name__ == "LocNet"
        assert holder.get("tk_loc::LocNet") is ns.child.get("LocNet")
        assert ns.imports == [1]
    finally:
        sys.modules.pop("tk_loc_models", None)


def test_a_location_that_fails_to_import_names_itself() -> None:
    root = Registry("broken_root", scope="broken_root", entry_point_group="torchkiln.test_broken")
    child = Registry("child", parent=root, scope="broken_child", locations=["tk_no_such_location"])
    with pytest.raises(PluginError, match="could not import its location 'tk_no_such_location'"):
        child.get("Anything")


def test_registration_rules(tree) -> None:
    animals, birds, owls, fish = tree

    def make():
        class Kiwi:
            pass

        return Kiwi

    first, second = make(), make()
    birds.register_module(module=first)
    with pytest.raises(KeyError, match="Kiwi is already registered in birds"):
        birds.register_module(module=second)
    birds.register_module(module=second, force=True)
    assert birds.get("Kiwi") is second
    with pytest.raises(TypeError, match="force must be True or False"):
        birds.register_module(force=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="name must be None, a str or a list of str"):
        birds.register_module(name=3)  # type: ignore[arg-type]
    # a child may shadow a parent's name; its own lookups see its own
    animals.register_module(name="Kiwi", module=first)
    assert birds.get("Kiwi") is second and fish.get("Kiwi") is first


def test_one_child_per_scope_in_any_spelling(tree) -> None:
    animals = tree[0]
    Registry("a", parent=animals, scope="My-Pkg")
    with pytest.raises(ValueError, match="already has a child with scope 'My-Pkg'"):
        Registry("b", parent=animals, scope="my_pkg")
    with pytest.raises(TypeError, match="parent must be a Registry"):
        Registry("c", parent="animals")  # type: ignore[arg-type]


def test_build_func_is_inherited_and_models_build_lists(tree) -> None:
    import torch

    animals = tree[0]

    def custom(cfg, registry, default_args=None):
        return ("custom", cfg["type"], registry.name)

    custom_root = Registry("custom_root", build_func=custom, scope="custom_root")
    child = Registry("child", parent=custom_root, scope="custom_child")
    assert child.build_func is custom and child.build({"type": "X"}) == ("custom", "X", "child")
    assert animals.build_func is build_from_cfg
    assert MODELS.build([{"type": "torch.nn.Identity"}, {"type": "torch.nn.ReLU"}]).__class__ is (
        torch.nn.Sequential
    )


def test_mmengine_scope_is_torchkilns_own() -> None:
    assert MODELS.get("mmengine::DigitsMLP") is MODELS.get("torchkiln::DigitsMLP")
    assert MODELS.get("mmengine.DigitsMLP") is MODELS.get("DigitsMLP")
    # a dotted path whose head is not a scope is still an import path
    import collections

    assert MODELS.get("collections.OrderedDict") is collections.OrderedDict


def test_default_scope_instances() -> None:
    assert DefaultScope.get_current_instance() is None
    first = DefaultScope.get_instance("run-1", scope_name="fish")
    assert DefaultScope.get_current_instance() is first and first.instance_name == "run-1"
    second = DefaultScope.get_instance("run-2", scope_name="birds")
    assert DefaultScope.get_current_instance() is second
    assert DefaultScope.get_instance("run-1") is first  # fetching makes it current again
    assert DefaultScope.get_current_instance() is first
    assert DefaultScope.check_instance_created("run-2")
    with DefaultScope.overwrite_default_scope("owls"):
        assert _index.default_scope() == "owls"
    assert _index.default_scope() == "fish"
    with pytest.warns(UserWarning, match="the default scope was 'fish' and is now 'mmdet'"):
        init_default_scope("mmdet")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        init_default_scope("mmdet")  # already current: silent
    assert _index.default_scope() == "mmdet"


def test_tree_reports(tree, tmp_path) -> None:
    animals, birds, owls, fish = tree

    @owls.register_module()
    class BarnOwl:
        pass

    records = traverse_registry_tree(fish, verbose=False)
    assert [r["scope"] for r in records] == ["zoo", "birds", "owls", "fish"]
    assert records[2]["names"] == ["BarnOwl"] and records[2]["num_modules"] == 1
    results = count_registered_modules(tmp_path, verbose=False)
    assert "MODELS" in results["registries"]
    assert "DigitsMLP" in results["registries"]["MODELS"][0]["names"]
    assert (tmp_path / "modules_statistic_results.json").is_file()
