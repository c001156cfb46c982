"""Scope and distribution names are accepted as pip shows them: case and runs of ``-``, ``_``,
``.`` do not matter (packaging's rule), in every place that takes one; errors keep the name
as the user wrote it. The installed ``torchkiln-example`` distribution is the subject."""

from __future__ import annotations

import warnings

import pytest

from torchkiln.config import load, validate
from torchkiln.errors import BuildError, ConfigError
from torchkiln.registry import MODELS, Registry, _index, scope_key, set_default_scope

SPELLINGS = ["torchkiln_example", "torchkiln-example", "Torchkiln.Example", "torchkiln--_example"]


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("acme-kiln-zoo", "acme_kiln_zoo"),
        ("Acme_Kiln.Zoo", "acme_kiln_zoo"),
        ("acme--kiln__zoo", "acme_kiln_zoo"),
        ("ACME.-_kiln", "acme_kiln"),
        ("mmengine", "torchkiln"),
    ],
)
def test_the_rule(name: str, key: str) -> None:
    assert scope_key(name) == key


@pytest.mark.parametrize("scope", SPELLINGS)
def test_scope_in_type(scope: str) -> None:
    expected = MODELS.get("torchkiln_example::ExampleMLP")
    assert MODELS.get(f"{scope}::ExampleMLP") is expected
    assert f"{scope}::ExampleMLP" in MODELS


def test_an_unknown_scope_is_reported_as_written() -> None:
    with pytest.raises(BuildError) as info:
        MODELS.get("Torchkiln-Exampel::ExampleMLP")
    assert "not offered by 'Torchkiln-Exampel'" in str(info.value)
    assert "torchkiln_example" in str(info.value)


@pytest.fixture()
def clash(monkeypatch: pytest.MonkeyPatch) -> Registry:
    """``Clash`` offered by two distributions, ``acme_kiln_zoo`` and ``other_zoo``."""
    fake = {"Clash": {"acme_kiln_zoo": "collections:OrderedDict", "other_zoo": "collections:Counter"}}
    monkeypatch.setattr(_index, "providers", lambda name, group: fake)
    return Registry("things", entry_point_group="torchkiln.test_things")


@pytest.mark.parametrize("scope", ["acme-kiln-zoo", "Acme.Kiln_Zoo"])
def test_default_scope_and_scope_key_in_any_spelling(clash: Registry, scope: str) -> None:
    import collections

    assert clash.build({"type": "Clash", "_scope_": scope}).__class__ is collections.OrderedDict
    set_default_scope(scope)
    assert clash.get("Clash") is collections.OrderedDict


@pytest.mark.parametrize("scope", SPELLINGS[1:])
def test_default_scope_key_of_a_config_in_any_spelling(scope: str) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        errors = validate({"model": {"type": "ExampleMLP"}, "default_scope": scope})
    assert errors == []
    assert not [w for w in caught if "default_scope" in str(w.message)]


def test_an_unknown_default_scope_warns_with_the_name_as_written() -> None:
    with pytest.warns(Warning, match="default_scope 'Torchkiln-Exampel' names no installed"):
        validate({"model": {"type": "ExampleMLP"}, "default_scope": "Torchkiln-Exampel"})


@pytest.mark.parametrize("pkg", SPELLINGS)
def test_package_config_bases(tmp_path, pkg: str) -> None:
    path = tmp_path / "child.yaml"
    path.write_text(f"_base_: {pkg}::schedule_1x.yaml\n")
    assert "train_cfg" in load(str(path)).to_dict()


def test_an_unknown_config_package_is_reported_as_written(tmp_path) -> None:
    path = tmp_path / "child.yaml"
    path.write_text("_base_: Torchkiln-Exampel::schedule_1x.yaml\n")
    with pytest.raises(ConfigError) as info:
        load(str(path))
    assert "'Torchkiln-Exampel'" in str(info.value)
