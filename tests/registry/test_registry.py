"""Registry behaviour: decorators, build, suggestions, scopes, dotted paths, lazy built-ins."""

from __future__ import annotations

import sys

import pytest

from torchkiln.errors import BuildError
from torchkiln.registry import OPTIMIZERS, Registry
from torchkiln.registry import _index


@pytest.fixture()
def reg() -> Registry:
    return Registry("things", entry_point_group="torchkiln.test_things")


def test_register_decorator_and_build_with_default_args(reg: Registry) -> None:
    @reg.register_module()
    class Widget:
        def __init__(self, size: int, colour: str = "red") -> None:
            self.size = size
            self.colour = colour

    built = reg.build({"type": "Widget", "size": 3}, default_args={"colour": "blue"})
    assert (built.size, built.colour) == (3, "blue")
    assert "Widget" in reg and reg.get("Widget") is Widget
    # explicit config values win over default_args
    assert reg.build({"type": "Widget", "size": 1, "colour": "green"}, default_args={"colour": "blue"}).colour == "green"


def test_register_with_names_and_direct_call(reg: Registry) -> None:
    def make(x: int = 1) -> int:
        return x * 2

    reg.register_module(name=["twice", "double"], module=make)
    assert reg.build({"type": "twice", "x": 4}) == 8
    assert reg.get("double") is make


def test_duplicate_registration_needs_force(reg: Registry) -> None:
    @reg.register_module(name="Dup")
    class A:
        pass

    with pytest.raises(KeyError, match="already registered"):

        @reg.register_module(name="Dup")
        class B:
            pass

    @reg.register_module(name="Dup", force=True)
    class C:
        pass

    assert reg.get("Dup") is C


def test_unknown_type_suggests_closest(reg: Registry) -> None:
    @reg.register_module()
    class ResNet:
        pass

    with pytest.raises(BuildError) as info:
        reg.build({"type": "ResNte"})
    text = str(info.value)
    assert "unknown type 'ResNte'" in text
    assert "did you mean 'ResNet'" in text
    assert "installed plugin distributions" in text
    assert info.value.exit_code == 2


def test_unknown_kwarg_is_reported_before_construction(reg: Registry) -> None:
    calls = []

    @reg.register_module()
    class Net:
        def __init__(self, depth: int = 18) -> None:
            calls.append(depth)

    with pytest.raises(BuildError, match="unexpected argument 'deptth'") as info:
        reg.build({"type": "Net", "deptth": 50})
    assert "did you mean 'depth'" in str(info.value)
    assert calls == []


def test_missing_required_kwarg(reg: Registry) -> None:
    @reg.register_module()
    class Needs:
        def __init__(self, a: int) -> None:
            self.a = a

    with pytest.raises(BuildError, match="missing required argument"):
        reg.build({"type": "Needs"})


def test_constructor_error_gets_a_note(reg: Registry) -> None:
    @reg.register_module()
    class Boom:
        def __init__(self) -> None:
            raise ValueError("inner")

    with pytest.raises(ValueError, match="inner") as info:
        reg.build({"type": "Boom"})
    assert any("while building Boom" in note for note in info.value.__notes__)


def test_missing_type_key(reg: Registry) -> None:
    with pytest.raises(BuildError, match="needs a 'type' key"):
        reg.build({"size": 1})


def test_dotted_path_type(reg: Registry) -> None:
    import collections

    assert reg.get("collections.OrderedDict") is collections.OrderedDict
    assert reg.get("collections:Counter") is collections.Counter
    with pytest.raises(BuildError, match="cannot import"):
        reg.get("collections.NoSuchThing")


def test_class_objects_pass_through(reg: Registry) -> None:
    class Local:
        def __init__(self, v: int = 0) -> None:
            self.v = v

    assert reg.build({"type": Local, "v": 5}).v == 5


def test_torch_optimizers_registered_by_class_name() -> None:
    import torch

    for name in ("SGD", "Adam", "AdamW", "RMSprop", "Adagrad"):
        assert OPTIMIZERS.get(name) is getattr(torch.optim, name)
    param = torch.nn.Parameter(torch.zeros(2))
    opt = OPTIMIZERS.build({"type": "AdamW", "params": [param], "lr": 0.01})
    assert isinstance(opt, torch.optim.AdamW)


def test_scoped_lookup_and_clash_between_distributions(reg: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two providers of one name: unscoped lookup is an error naming both; scope picks one."""
    fake = {"Clash": {"dist_a": "collections:OrderedDict", "dist_b": "collections:Counter"}}
    monkeypatch.setattr(_index, "providers", lambda name, group: fake)
    with pytest.raises(BuildError) as info:
        reg.get("Clash")
    assert "dist_a" in str(info.value) and "dist_b" in str(info.value)
    assert "dist_a::Clash" in str(info.value)
    import collections

    assert reg.get("dist_b::Clash") is collections.Counter
    assert reg.get("Clash", default_scope="dist_a") is collections.OrderedDict
    with pytest.raises(BuildError, match="not offered by 'dist_c'"):
        reg.get("dist_c::Clash")


def test_lazy_import_only_on_lookup(reg: Registry, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    module = tmp_path / "lazy_component_mod.py"
    module.write_text("class Lazy:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(_index, "providers", lambda name, group: {"Lazy": {"somedist": "lazy_component_mod:Lazy"}})
    assert "Lazy" in reg
    assert "lazy_component_mod" not in sys.modules
    obj = reg.get("Lazy")
    assert obj.__name__ == "Lazy"
    assert "lazy_component_mod" in sys.modules


def test_broken_plugin_is_a_plugin_error(reg: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    from torchkiln.errors import PluginError

    monkeypatch.setattr(_index, "providers", lambda name, group: {"Broken": {"baddist": "no_such_module_xyz:Thing"}})
    with pytest.raises(PluginError) as info:
        reg.get("Broken")
    assert "baddist" in str(info.value)
    assert info.value.exit_code == 3


def test_every_builtin_entry_point_resolves() -> None:
    """Each component torchkiln declares as an entry point imports and is the registered object."""
    from torchkiln.registry import ALL_REGISTRIES

    _index.clear_cache()
    assert _index.builtins_installed(), "torchkiln's own entry points are not installed: run make setup"
    for registry in ALL_REGISTRIES.values():
        for name, target in _index.builtin_components(registry.entry_point_group).items():
            obj = registry.get(f"torchkiln::{name}")
            module_name, _, attr = target.partition(":")
            mod = sys.modules[module_name]
            assert getattr(mod, attr) is obj or registry.get(name) is obj


def test_installed_entry_points_are_the_ones_pyproject_declares() -> None:
    """A stale install (pyproject.toml changed, torchkiln not reinstalled) is caught here."""
    tomllib = pytest.importorskip("tomllib")
    from pathlib import Path

    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    all_declared = tomllib.loads(pyproject.read_text())["project"]["entry-points"]
    # torchkiln.* groups are the registries'; others (pytest11) are other tools' and checked below
    declared = {g: eps for g, eps in all_declared.items() if g.startswith("torchkiln.")}
    _index.clear_cache()
    installed = {group: _index.builtin_components(group) for group in declared}
    assert installed == declared, "reinstall torchkiln (make setup) to pick up pyproject.toml's entry points"
    import importlib.metadata as md

    for group in set(all_declared) - set(declared):
        eps = md.distribution("torchkiln").entry_points
        found = {ep.name: ep.value for ep in eps if ep.group == group}
        assert found == all_declared[group], "reinstall torchkiln (make setup)"
    from torchkiln.registry import ALL_REGISTRIES

    groups = {r.entry_point_group for r in ALL_REGISTRIES.values()}
    assert set(declared) <= groups, set(declared) - groups


def test_unknown_name_says_when_torchkilns_own_entry_points_are_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    from torchkiln.errors import BuildError

    reg = Registry("models")
    monkeypatch.setattr(_index, "entry_points_by_group", lambda: {})
    monkeypatch.setattr(_index, "providers", lambda name, group: {})
    with pytest.raises(BuildError) as info:
        reg.get("DigitsMLP")
    assert "reinstall torchkiln" in str(info.value)


def test_builtin_tables_do_not_import_torch() -> None:
    import subprocess

    code = (
        "import sys; from torchkiln.registry import _index; _index._builtin_components(); "
        "from torchkiln.registry import MODELS; MODELS.names(); print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.fixture()
def plugin_package(reg: Registry, monkeypatch: pytest.MonkeyPatch, tmp_path):
    """A package ``tk_fancy_pkg`` registering ``FancyNet`` into ``reg`` by decorator."""
    import types

    pkg = tmp_path / "tk_fancy_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from tk_fancy_pkg.models import FancyNet\n")
    (pkg / "models.py").write_text(
        "import tk_registry_holder as holder\n"
        "@holder.reg.register_module()\n"
        "class FancyNet:\n"
        "    pass\n"
    )
    holder = types.ModuleType("tk_registry_holder")
    holder.reg = reg  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tk_registry_holder", holder)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    for name in ("tk_fancy_pkg", "tk_fancy_pkg.models"):
        sys.modules.pop(name, None)


@pytest.mark.parametrize("target", ["tk_fancy_pkg.models:FancyNet", "tk_fancy_pkg.models.FancyNet", "tk_fancy_pkg:FancyNet"])
def test_decorator_registration_of_a_plugin_named_unlike_its_package(
    reg: Registry, monkeypatch: pytest.MonkeyPatch, plugin_package, target: str
) -> None:
    """The entry point of distribution ``my-plugin-dist`` targets the decorated class: one provider."""
    monkeypatch.setattr(_index, "providers", lambda name, group: {"FancyNet": {"my_plugin_dist": target}})
    obj = reg.build({"type": "FancyNet"}).__class__
    assert obj.__module__ == "tk_fancy_pkg.models"
    assert reg.get("my_plugin_dist::FancyNet") is obj
    assert reg._candidates("FancyNet") == ["my_plugin_dist"]


def test_plain_import_of_a_plugin_named_unlike_its_package(
    reg: Registry, monkeypatch: pytest.MonkeyPatch, plugin_package
) -> None:
    monkeypatch.setattr(_index, "providers", lambda name, group: {"FancyNet": {"my_plugin_dist": "tk_fancy_pkg.models:FancyNet"}})
    import tk_fancy_pkg.models  # registers by decorator before any lookup

    assert reg.get("FancyNet") is tk_fancy_pkg.models.FancyNet
    # another distribution offering the same name elsewhere is still a clash
    monkeypatch.setattr(_index, "providers", lambda name, group: {"FancyNet": {"other_dist": "collections:Counter"}})
    with pytest.raises(KeyError, match="other_dist"):
        reg.register_module(name="FancyNet", module=tk_fancy_pkg.models.FancyNet)


def test_scope_key_picks_the_provider_and_is_the_default_scope_while_building(
    reg: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    import collections

    seen = []

    def recording(*args, **kwargs):
        seen.append(_index.default_scope())
        return collections.Counter(*args, **kwargs)

    monkeypatch.setattr(collections, "TkRecordingCounter", recording, raising=False)
    fake = {"Clash": {"dist_a": "collections:OrderedDict", "dist_b": "collections:TkRecordingCounter"}}
    monkeypatch.setattr(_index, "providers", lambda name, group: fake)
    with pytest.raises(BuildError, match="more than one distribution"):
        reg.build({"type": "Clash"})
    assert isinstance(reg.build({"type": "Clash", "_scope_": "dist_a"}), collections.OrderedDict)
    assert isinstance(reg.build({"type": "Clash", "_scope_": "dist_b"}), collections.Counter)
    assert seen == ["dist_b"] and _index.default_scope() is None
    with pytest.raises(BuildError, match="'_scope_' must be a scope name"):
        reg.build({"type": "Clash", "_scope_": 3})


def test_module_dict_is_a_live_view_that_unregisters_on_pop():
    reg = Registry("tk_live_view", entry_point_group="tk.none.live_view")

    class Thing:
        pass

    reg.register_module(module=Thing)
    assert reg.module_dict["Thing"] is Thing and "Thing" in reg
    assert reg.module_dict.pop("Thing") is Thing
    assert "Thing" not in reg.module_dict and "Thing" not in reg
    with pytest.raises(KeyError):
        reg.get("Thing")
    assert reg.module_dict.pop("Thing", None) is None
    reg.module_dict["Alias"] = Thing  # registers with force=True
    assert reg.get("Alias") is Thing
    del reg.module_dict["Alias"]
    assert len(reg.module_dict) == 0
