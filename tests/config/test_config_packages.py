"""pkg:: config folders found from torchkiln.configs entry points, without importing the package."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest

from torchkiln.config import packages
from torchkiln.errors import ConfigError
from torchkiln.registry import _index


def fake_eps(monkeypatch, tmp_path, eps):
    groups = {"torchkiln.configs": []}
    for name, dist, value in eps:
        groups["torchkiln.configs"].append(
            SimpleNamespace(name=name, value=value, group="torchkiln.configs", dist=SimpleNamespace(name=dist, version="1.0"))
        )
    monkeypatch.setattr(_index, "entry_points_by_group", lambda: groups)
    monkeypatch.syspath_prepend(str(tmp_path))


def make_package(tmp_path, name):
    pkg = tmp_path / name
    (pkg / "configs" / "sub").mkdir(parents=True)
    # importing the package would fail: resolution must not run it
    (pkg / "__init__.py").write_text("raise RuntimeError('imported!')\n")
    (pkg / "configs" / "base.yaml").write_text("a: 1\n")
    return pkg


def test_resolves_by_entry_point_and_distribution_name_without_importing(monkeypatch, tmp_path):
    pkg = make_package(tmp_path, "tk_cfgpkg")
    fake_eps(monkeypatch, tmp_path, [("tk_cfgpkg", "tk-cfgpkg-dist", "tk_cfgpkg.configs")])
    assert packages.resolve_package("tk_cfgpkg") == str(pkg / "configs")
    assert packages.resolve_package("tk-cfgpkg-dist") == str(pkg / "configs")
    assert packages.resolve_package("TK.CFGPKG-dist") == str(pkg / "configs")
    assert "tk_cfgpkg" not in sys.modules


def test_unknown_package_lists_the_installed_ones(monkeypatch, tmp_path):
    make_package(tmp_path, "tk_cfgpkg2")
    fake_eps(monkeypatch, tmp_path, [("tk_cfgpkg2", "tk-cfgpkg2", "tk_cfgpkg2.configs")])
    with pytest.raises(ConfigError) as info:
        packages.resolve_package("tk_cfgpkg3")
    assert info.value.message == "unknown config package 'tk_cfgpkg3' in 'tk_cfgpkg3::...'"
    assert info.value.hint == "did you mean 'tk_cfgpkg2'? installed config packages: tk_cfgpkg2"


def test_an_entry_point_to_a_missing_folder_is_an_error(monkeypatch, tmp_path):
    make_package(tmp_path, "tk_cfgpkg4")
    fake_eps(monkeypatch, tmp_path, [("tk_cfgpkg4", "tk-cfgpkg4", "tk_cfgpkg4.no_such_folder")])
    with pytest.raises(ConfigError, match="not an importable folder"):
        packages.resolve_package("tk_cfgpkg4")
