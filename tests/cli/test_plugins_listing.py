"""`torchkiln plugins`: hook plugins' mount points read from source, clashes, --json."""

from __future__ import annotations

import importlib
import json
import sys
import textwrap
from types import SimpleNamespace

import pytest
from torchkiln.cli import main
from torchkiln.hookspecs import MOUNT_POINTS
from torchkiln.plugin_listing import find_clashes, source_mount_points
from torchkiln.registry import _index


@pytest.fixture
def source_dir(tmp_path, monkeypatch):
    """A folder on sys.path for throwaway plugin modules."""
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()

    def write(rel: str, text: str) -> None:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        importlib.invalidate_caches()

    return write


def test_module_plugin_mount_points_are_read_without_importing(source_dir):
    source_dir("tkl_pkg/__init__.py", "raise RuntimeError('the package must not be imported')\n")
    source_dir(
        "tkl_pkg/hooks.py",
        """
        raise RuntimeError("the module must not be imported")
        from elsewhere import after_run
        def after_train_iter(runner, batch_idx): ...
        def before_run(runner): ...
        before_val = object()
        def not_a_mount_point(runner): ...
        def _after_val(runner): ...
        """,
    )
    expected = {"before_run", "after_run", "after_train_iter", "before_val"}
    assert source_mount_points("tkl_pkg.hooks") == [mp for mp in MOUNT_POINTS if mp in expected]
    assert "tkl_pkg" not in sys.modules and "tkl_pkg.hooks" not in sys.modules


def test_class_and_instance_plugins_count_same_module_bases(source_dir):
    source_dir(
        "tkl_cls.py",
        """
        from torchkiln.hooks import Hook
        class Base(Hook):
            def before_train(self, runner): ...
        class MyHook(Base):
            def after_val_epoch(self, runner, metrics): ...
            def helper(self): ...
        class Other:
            def after_run(self, runner): ...
        plugin = MyHook()
        """,
    )
    assert source_mount_points("tkl_cls:MyHook") == ["before_train", "after_val_epoch"]
    assert source_mount_points("tkl_cls:plugin") == ["before_train", "after_val_epoch"]
    assert source_mount_points("tkl_cls:Other") == ["after_run"]
    assert source_mount_points("tkl_cls:missing") is None
    assert source_mount_points("tkl_no_such_module") is None
    assert "tkl_cls" not in sys.modules


def test_an_instance_of_an_imported_class_is_read_from_the_class_module(source_dir):
    source_dir(
        "tkl_base_mod.py",
        """
        class Tracker:
            def before_run(self, runner): ...
            def after_run(self, runner): ...
        """,
    )
    source_dir(
        "tkl_user_mod.py",
        """
        from tkl_base_mod import Tracker as T
        hooks = T()
        """,
    )
    assert source_mount_points("tkl_user_mod:hooks") == ["before_run", "after_run"]
    assert "tkl_base_mod" not in sys.modules and "tkl_user_mod" not in sys.modules


def _ep(group, name, value, dist, version="1.0"):
    return SimpleNamespace(
        group=group, name=name, value=value, dist=SimpleNamespace(name=dist, version=version)
    )


@pytest.fixture
def fake_entry_points(monkeypatch, source_dir):
    source_dir(
        "tkl_alpha_hooks.py",
        "def before_run(runner): ...\ndef after_val_epoch(runner, metrics): ...\n",
    )
    groups = {
        "torchkiln.models": [
            _ep(
                "torchkiln.models",
                "DigitsMLP",
                "torchkiln.model.demo_models:DigitsMLP",
                "torchkiln",
            ),
            _ep("torchkiln.models", "DigitsMLP", "tkl_alpha.models:DigitsMLP", "tkl-alpha", "2.1"),
            _ep("torchkiln.models", "AlphaNet", "tkl_alpha.models:AlphaNet", "tkl-alpha", "2.1"),
            _ep("torchkiln.models", "AlphaNet", "tkl_beta.models:AlphaNet", "tkl-beta"),
        ],
        "torchkiln.plugins": [
            _ep("torchkiln.plugins", "alpha_watch", "tkl_alpha_hooks", "tkl-alpha", "2.1"),
            _ep("torchkiln.plugins", "beta_compiled", "tkl_beta_native_hooks", "tkl-beta"),
        ],
    }
    monkeypatch.setattr(_index, "entry_points_by_group", lambda: groups)
    return groups


def test_clashes_name_every_provider_including_torchkiln(fake_entry_points):
    assert find_clashes() == [
        {
            "group": "torchkiln.models",
            "name": "AlphaNet",
            "distributions": ["tkl_alpha", "tkl_beta"],
        },
        {
            "group": "torchkiln.models",
            "name": "DigitsMLP",
            "distributions": ["tkl_alpha", "torchkiln"],
        },
    ]


def test_plugins_json(fake_entry_points, capsys):
    assert main(["plugins", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    dists = {d["name"]: d for d in data["distributions"]}
    assert set(dists) == {"tkl-alpha", "tkl-beta"}
    alpha = dists["tkl-alpha"]
    assert alpha["version"] == "2.1"
    assert alpha["components"] == {"models": ["AlphaNet", "DigitsMLP"]}
    assert alpha["hook_plugins"] == ["alpha_watch"]
    assert alpha["mount_points"] == {"alpha_watch": ["before_run", "after_val_epoch"]}
    assert dists["tkl-beta"]["mount_points"] == {"beta_compiled": None}
    assert [c["name"] for c in data["clashes"]] == ["AlphaNet", "DigitsMLP"]
    assert data["builtin"] == {"models": 1}


def test_plugins_plain_listing_shows_mount_points_and_clashes(fake_entry_points, capsys):
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "  tkl-alpha 2.1\n    models: AlphaNet, DigitsMLP\n" in out
    assert "    hook plugins: alpha_watch [before_run, after_val_epoch]\n" in out
    assert "    hook plugins: beta_compiled [mount points unknown: no source]\n" in out
    assert out.endswith(
        "clashes (pick one provider with scope::Name):\n"
        "  torchkiln.models: AlphaNet (tkl_alpha, tkl_beta)\n"
        "  torchkiln.models: DigitsMLP (tkl_alpha, torchkiln)\n"
    )


def test_installed_example_plugin_mount_points(capsys):
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "    hook plugins: example_counter [after_train_epoch]; example_logger [before_run, after_train_epoch]\n" in out
    assert "\nclashes: none\n" in out


def test_docs_list_exactly_the_entry_point_groups_the_code_reads():
    from pathlib import Path

    from torchkiln.plugin_host.entry_points import GROUP
    from torchkiln.registry import ALL_REGISTRIES

    docs = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"
    rows = [line for line in docs.read_text().splitlines() if line.startswith("| `torchkiln.")]
    documented = {row.split("`")[1]: row.split("|")[2].strip() for row in rows}
    code = {r.entry_point_group: f"`{r.name}`" for r in ALL_REGISTRIES.values()}
    assert {g: documented[g].split(" ")[0] for g in code if g in documented} == code
    assert set(documented) == set(code) | {GROUP, "torchkiln.configs"}
