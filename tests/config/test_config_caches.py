"""The config loading caches: kept loads in memory and compiled .py configs on disk.

Every test checks what a user sees: a changed file is seen at once, a loaded config never
shares mutable state with the next load, and a damaged or missing cache only costs time.
"""

from __future__ import annotations

import os
import textwrap
import time
from pathlib import Path

import pytest
from torchkiln.config import clear_config_cache, codecache, load, loadcache
from torchkiln.config.packages import resolve_package

OLD = time.time() - 3600  # a stamp old enough to be trusted


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("TORCHKILN_CACHE_DIR", str(folder))
    monkeypatch.delenv("TORCHKILN_CONFIG_CACHE", raising=False)
    clear_config_cache()
    yield folder / "pyconfig"
    clear_config_cache()


def write(path: Path, text: str, *, old: bool = True) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    if old:
        os.utime(path, (OLD, OLD))
    return str(path)


def kept(path: str, overrides: tuple[str, ...] = ()) -> bool:
    return loadcache.lookup(os.path.abspath(path), overrides, resolve_package) is not None


@pytest.fixture
def chain(tmp_path):
    """A child .py config reading and changing its .py base."""
    base = write(tmp_path / "_base_" / "model.py", "model = dict(depth=50, sizes=(1, 2))\n")
    child = write(
        tmp_path / "child.py",
        """
        _base_ = ['./_base_/model.py']
        _base_.model.width = 64
        model = dict(depth=_base_.model.depth + 1)
        pipeline = [dict(type='Load'), dict(type='Resize', scale=(1333, 800))]
        """,
    )
    return Path(base), Path(child)


def test_unchanged_load_is_kept_and_equal(chain):
    _, child = chain
    first = load(child)
    assert kept(str(child))
    second = load(child)
    assert second.to_dict() == first.to_dict()
    assert first.to_dict() == {
        "model": {"depth": 51, "sizes": (1, 2), "width": 64},
        "pipeline": [{"type": "Load"}, {"type": "Resize", "scale": (1333, 800)}],
    }
    assert second.files == first.files and second.provenance == first.provenance


def test_mutating_a_loaded_config_does_not_reach_the_next_load(chain):
    _, child = chain
    first = load(child)
    first.model.depth = 99
    first.model["new"] = {"a": 1}
    first.pipeline.append({"type": "Pack"})
    first.pipeline[1].scale = (1, 1)
    first["extra"] = 1
    first.provenance["model.depth"] = "elsewhere"
    first.files.append("x")
    second = load(child)
    assert second.to_dict() == {
        "model": {"depth": 51, "sizes": (1, 2), "width": 64},
        "pipeline": [{"type": "Load"}, {"type": "Resize", "scale": (1333, 800)}],
    }
    assert "x" not in second.files and second.provenance["model.depth"] != "elsewhere"
    second.pipeline[0]["type"] = "Changed"
    assert load(child).pipeline[0].type == "Load"


def test_editing_a_base_is_seen(chain):
    base, child = chain
    assert load(child).model.depth == 51
    write(base, "model = dict(depth=100, sizes=(1, 2))\n")  # old stamp: only the size differs
    assert load(child).model.depth == 101


def test_same_size_edit_with_the_old_mtime_restored_is_seen(chain):
    base, child = chain
    assert load(child).model.sizes == (1, 2)
    write(base, "model = dict(depth=50, sizes=(3, 4))\n")  # same size, same mtime
    assert os.stat(base).st_mtime == pytest.approx(OLD)
    assert load(child).model.sizes == (3, 4)
    clear_config_cache()  # the compiled-code cache on disk must see it too
    assert load(child).model.sizes == (3, 4)


def test_fresh_files_are_not_trusted(tmp_path):
    path = tmp_path / "cfg.py"
    write(path, "a = 1\n", old=False)
    assert load(path).a == 1
    assert not kept(str(path))  # modified just now: a same-size rewrite could keep the stamp
    write(path, "a = 2\n", old=False)
    assert load(path).a == 2


def test_yaml_chain_is_kept_and_invalidated(tmp_path):
    write(tmp_path / "base.yaml", "model: {depth: 50}\nlr: 0.1\n")
    child = write(tmp_path / "child.yaml", "_base_: base.yaml\nmodel: {width: 8}\n")
    assert load(child).to_dict() == {"model": {"depth": 50, "width": 8}, "lr": 0.1}
    assert kept(child)
    write(tmp_path / "base.yaml", "model: {depth: 18}\nlr: 0.1\n")
    assert load(child).model.depth == 18


def test_overrides_are_part_of_the_key(chain):
    _, child = chain
    assert load(child, ["model.depth=7"]).model.depth == 7
    assert load(child).model.depth == 51
    assert load(child, ["model.depth=7"]).model.depth == 7


def test_deleted_base_is_reported_not_served_from_memory(chain):
    base, child = chain
    load(child)
    base.unlink()
    with pytest.raises(Exception, match="model.py"):
        load(child)


@pytest.mark.parametrize(
    "text",
    [
        "import os\nname = os.environ.get('KILN_CACHE_TEST', 'a')\n",
        "name = '${env:KILN_CACHE_TEST,a}'\n",
        "name = {{$KILN_CACHE_TEST:a}}\n",
    ],
)
def test_configs_reading_the_environment_are_not_kept(tmp_path, monkeypatch, text):
    path = write(tmp_path / "cfg.py", text)
    monkeypatch.setenv("KILN_CACHE_TEST", "first")
    assert load(path).name == "first"
    assert not kept(path)
    monkeypatch.setenv("KILN_CACHE_TEST", "second")
    assert load(path).name == "second"


def test_environment_in_a_yaml_base_or_override_is_not_kept(tmp_path, monkeypatch):
    write(tmp_path / "base.yaml", "root: ${env:KILN_CACHE_TEST,x}\n")
    child = write(tmp_path / "child.py", "_base_ = ['base.yaml']\nb = 1\n")
    monkeypatch.setenv("KILN_CACHE_TEST", "one")
    assert load(child).root == "one"
    assert not kept(child)
    plain = write(tmp_path / "plain.yaml", "root: x\n")
    assert load(plain, ["root=${env:KILN_CACHE_TEST}"]).root == "one"
    assert not kept(plain, ("root=${env:KILN_CACHE_TEST}",))


def test_config_with_effects_is_run_every_time(tmp_path, capsys):
    path = write(tmp_path / "cfg.py", "print('running')\na = 1\n")
    load(path)
    load(path)
    assert capsys.readouterr().out == "running\nrunning\n"


def test_compiled_configs_are_stored_and_used(chain, cache_dir, monkeypatch):
    _, child = chain
    expected = load(child).to_dict()
    entries = sorted(cache_dir.iterdir())
    assert len(entries) == 2 and all(e.suffix == ".bin" for e in entries)
    clear_config_cache()

    def no_compile(*args, **kwargs):
        raise AssertionError("compiled again although the disk cache holds it")

    monkeypatch.setattr("torchkiln.config.pyconfig._compile", no_compile)
    assert load(child).to_dict() == expected


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "empty"])
def test_damaged_cache_entries_are_ignored_and_rewritten(chain, cache_dir, damage):
    _, child = chain
    expected = load(child).to_dict()
    for entry in cache_dir.iterdir():
        blob = entry.read_bytes()
        if damage == "truncate":
            blob = blob[: len(blob) // 2]
        elif damage == "flip":
            blob = blob[:-5] + bytes([blob[-5] ^ 0xFF]) + blob[-4:]
        elif damage == "garbage":
            blob = b"\x00not a cache entry" * 10
        else:
            blob = b""
        entry.write_bytes(blob)
    clear_config_cache()
    assert load(child).to_dict() == expected
    clear_config_cache()
    sizes = {e.name: e.stat().st_size for e in cache_dir.iterdir()}
    assert all(size > 100 for size in sizes.values())  # rewritten whole
    assert load(child).to_dict() == expected


def test_turning_the_cache_off(chain, cache_dir, monkeypatch):
    _, child = chain
    monkeypatch.setenv("TORCHKILN_CONFIG_CACHE", "0")
    assert load(child).model.depth == 51
    assert not cache_dir.exists()
    assert not kept(str(child))


def test_unwritable_cache_folder_is_skipped(chain, tmp_path, monkeypatch):
    _, child = chain
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("TORCHKILN_CACHE_DIR", str(blocker))
    assert load(child).model.depth == 51


def test_clear_config_cache_with_disk(chain, cache_dir):
    _, child = chain
    load(child)
    assert kept(str(child)) and any(cache_dir.iterdir())
    clear_config_cache(disk=True)
    assert not kept(str(child)) and not any(cache_dir.iterdir())
    assert codecache.cache_dir() == str(cache_dir)


def test_python_text_is_not_written_to_the_disk_cache(tmp_path, cache_dir):
    from torchkiln.config import loads

    write(tmp_path / "base.py", "model = dict(depth=50)\n")
    for depth in (1, 2):
        cfg = loads(f"_base_ = ['base.py']\nmodel = dict(width={depth})\n", "py", base_dir=tmp_path)
        assert cfg.to_dict() == {"model": {"depth": 50, "width": depth}}
    # the text goes through a new temporary file each time: nothing of it is stored
    assert not cache_dir.exists() or not any(cache_dir.iterdir())
