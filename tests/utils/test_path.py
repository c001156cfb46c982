"""mkdir_or_exist and scandir (MMEngine's folder helpers)."""

from __future__ import annotations

import os

import pytest

from torchkiln.utils import mkdir_or_exist, scandir


def test_mkdir_or_exist(tmp_path):
    target = tmp_path / "a" / "b"
    mkdir_or_exist(target)
    mkdir_or_exist(str(target))  # exists: no error
    mkdir_or_exist("")  # nothing to do
    assert target.is_dir()


def test_scandir_suffix_recursion_and_case(tmp_path):
    for rel in ("x.log", "y.JSON", "sub/z.log", ".hidden.log", "sub/.h/w.log"):
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
    assert sorted(scandir(tmp_path)) == ["x.log", "y.JSON"]
    assert sorted(scandir(str(tmp_path), ".log", recursive=True)) == ["sub/z.log".replace("/", os.sep), "x.log"]
    assert sorted(scandir(tmp_path, (".json",), case_sensitive=False)) == ["y.JSON"]
    with pytest.raises(TypeError):
        list(scandir(tmp_path, suffix=[".log"]))
