"""The config engine of ``torchkiln._native`` seen from Python."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from torchkiln import _native as native


def write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def detection(tmp_path: Path) -> Path:
    """A detection-style config set: model, dataset, schedule, runtime and a child."""
    write(
        tmp_path,
        "_base_/model.yaml",
        "model:\n"
        "  type: FasterRCNN\n"
        "  backbone: {type: ResNet, depth: 50, out_indices: [0, 1, 2, 3]}\n"
        "  roi_head:\n"
        "    bbox_head: {type: Shared2FCBBoxHead, num_classes: '${num_classes}'}\n"
        "num_classes: 80\n",
    )
    write(
        tmp_path,
        "_base_/data.json",
        json.dumps(
            {
                "data_root": "data/coco/",
                "train_pipeline": [{"type": "LoadImageFromFile"}, {"type": "RandomFlip", "prob": 0.5}],
                "train_dataloader": {
                    "batch_size": 2,
                    "dataset": {"data_root": "${data_root}", "pipeline": "${train_pipeline}"},
                },
            },
            indent=1,
        ),
    )
    write(
        tmp_path,
        "_base_/schedule.toml",
        '[train_cfg]\ntype = "EpochBasedTrainLoop"\nmax_epochs = 12\nval_interval = 1\n\n'
        "[[param_scheduler]]\ntype = \"LinearLR\"\nend = 500\n\n"
        "[[param_scheduler]]\ntype = \"MultiStepLR\"\nmilestones = [8, 11]\n\n"
        "[optim_wrapper.optimizer]\ntype = \"SGD\"\nlr = 0.02\nmomentum = 0.9\n",
    )
    write(tmp_path, "_base_/runtime.yaml", "default_hooks:\n  logger: {type: LoggerHook, interval: 50}\nresume: false\n")
    return write(
        tmp_path,
        "configs/child.yaml",
        "_base_:\n"
        "  - ../_base_/model.yaml\n"
        "  - ../_base_/data.json\n"
        "  - ../_base_/schedule.toml\n"
        "  - ../_base_/runtime.yaml\n"
        "num_classes: 20\n"
        "optim_wrapper:\n"
        "  optimizer: {_delete_: true, type: AdamW, lr: 0.0001}\n"
        "work_dir: ./work_dirs/${model.backbone.type}_${num_classes}\n",
    )


# ---------------------------------------------------------------------------- loading


def test_load_merges_bases_of_every_format(detection: Path) -> None:
    loaded = native.load_config(str(detection))
    data = loaded.data
    assert data["model"]["roi_head"]["bbox_head"]["num_classes"] == 20
    assert data["optim_wrapper"] == {"optimizer": {"type": "AdamW", "lr": 0.0001}}
    assert data["train_cfg"] == {"type": "EpochBasedTrainLoop", "max_epochs": 12, "val_interval": 1}
    assert data["param_scheduler"][1] == {"type": "MultiStepLR", "milestones": [8, 11]}
    assert data["train_dataloader"]["dataset"]["pipeline"] == [
        {"type": "LoadImageFromFile"},
        {"type": "RandomFlip", "prob": 0.5},
    ]
    assert data["work_dir"] == "./work_dirs/ResNet_20"
    assert "_base_" not in data
    # Bases first in key order, then the child's new keys.
    assert list(data)[:2] == ["model", "num_classes"]
    assert list(data)[-1] == "work_dir"
    assert [Path(f).name for f in loaded.files] == ["child.yaml", "model.yaml", "data.json", "schedule.toml", "runtime.yaml"]
    assert all(os.path.isabs(f) for f in loaded.files)
    assert {"num_classes", "data_root", "train_pipeline", "model.backbone.type"} <= set(loaded.referenced)
    assert loaded.referenced == sorted(set(loaded.referenced))


def test_every_access_builds_a_new_tree(detection: Path) -> None:
    from torchkiln.config import ConfigDict

    loaded = native.load_config(str(detection))
    first, second = loaded.config_dicts(ConfigDict), loaded.config_dicts(ConfigDict)
    assert first == second == loaded.data
    assert type(first) is ConfigDict and type(first["model"]["roi_head"]) is ConfigDict
    assert first.model.roi_head.bbox_head.num_classes == 20
    assert type(first["train_dataloader"]["dataset"]["pipeline"][0]) is ConfigDict
    first["model"]["type"] = "Changed"
    first["param_scheduler"].append({})
    assert second["model"]["type"] == "FasterRCNN" and loaded.data["model"]["type"] == "FasterRCNN"
    assert len(loaded.config_dicts(ConfigDict)["param_scheduler"]) == len(second["param_scheduler"])
    assert loaded.data is not loaded.data
    with pytest.raises(TypeError, match="subclass of dict"):
        loaded.config_dicts(list)


def test_overrides_provenance_and_order(detection: Path) -> None:
    loaded = native.load_config(
        detection,
        ["train_cfg.max_epochs=3", "param_scheduler.1.milestones=[16,22]", "num_classes=5", "+vars.tag=run1"],
    )
    data = loaded.data
    assert data["train_cfg"]["max_epochs"] == 3
    assert data["param_scheduler"][1]["milestones"] == [16, 22]
    # Overrides are applied before interpolation: references see them.
    assert data["model"]["roi_head"]["bbox_head"]["num_classes"] == 5
    assert data["work_dir"] == "./work_dirs/ResNet_5"
    assert data["vars"] == {"tag": "run1"}
    prov = loaded.provenance
    assert prov["train_cfg.max_epochs"] == "--cfg-options train_cfg.max_epochs=3"
    assert prov["param_scheduler.1.milestones.0"] == "--cfg-options param_scheduler.1.milestones=[16,22]"
    assert prov["model.backbone.depth"].endswith("_base_/model.yaml:3:28")
    assert prov["train_cfg.val_interval"].endswith("_base_/schedule.toml:4:1")
    assert prov["optim_wrapper.optimizer.lr"].endswith("configs/child.yaml:8:44")
    assert prov["train_dataloader.batch_size"].endswith("_base_/data.json:13:3")
    assert prov["resume"].endswith("_base_/runtime.yaml:3:1")


def test_loads_config_with_base_dir(tmp_path: Path) -> None:
    write(tmp_path, "base.yaml", "a: {x: 1, y: 2}\n")
    loaded = native.loads_config("_base_: base.yaml\na: {y: 3}\n", base_dir=str(tmp_path))
    assert loaded.data == {"a": {"x": 1, "y": 3}}
    assert loaded.provenance["a.y"] == "<string>:2:5"
    assert [Path(f).name for f in loaded.files] == ["base.yaml"]
    assert native.loads_config('{"a": [1, 2.5]}', "json").data == {"a": [1, 2.5]}
    assert native.loads_config("a = 1\n[b]\nc = 'x'\n", "toml").data == {"a": 1, "b": {"c": "x"}}
    with pytest.raises(ValueError, match="unknown config format"):
        native.loads_config("a: 1", "ini")


def test_package_bases_and_python_configs(tmp_path: Path) -> None:
    write(tmp_path, "pkgroot/configs/base.yaml", "a: 1\nshared: base\n")
    py_cfg = write(tmp_path, "legacy.py", "b = dict(c=2)\n")
    child = write(tmp_path, "child.yaml", "_base_: ['mypkg::configs/base.yaml', legacy.py]\nd: '{{_base_.b.c}}'\n")
    seen: list[str] = []

    def resolve(pkg: str) -> str | None:
        seen.append(pkg)
        return str(tmp_path / "pkgroot") if pkg == "mypkg" else None

    def py_bases(path: str) -> tuple[Any, bool]:
        assert path == str(py_cfg)
        return None, False

    def run_py(path: str, base: Any) -> tuple[dict[str, Any], Any]:
        assert path == str(py_cfg) and base is None
        return {"b": {"c": 2}, "t": (1, [2]), "shared": "py"}, None

    loaded = native.load_config(child, resolve_package=resolve, python_bases=py_bases, run_python=run_py)
    assert loaded.data == {"a": 1, "shared": "py", "b": {"c": 2}, "t": (1, [2]), "d": 2}
    assert seen == ["mypkg"]
    assert loaded.provenance["b.c"] == str(py_cfg)
    assert "b.c" in loaded.referenced

    unknown = write(tmp_path, "unknown.yaml", "_base_: 'nopkg::x.yaml'\n")
    with pytest.raises(native.ConfigLoadError) as info:
        native.load_config(unknown, resolve_package=resolve)
    assert "unknown config package 'nopkg'" in info.value.message
    assert info.value.file == str(unknown)
    assert info.value.line == 1


def test_callback_exceptions_propagate_unchanged(tmp_path: Path) -> None:
    class Boom(RuntimeError):
        pass

    err = Boom("no such package")

    def resolve(pkg: str) -> str:
        raise err

    child = write(tmp_path, "c.yaml", "_base_: 'p::x.yaml'\n")
    with pytest.raises(Boom) as info:
        native.load_config(child, resolve_package=resolve)
    assert info.value is err

    def bad_py(path: str, base: Any) -> tuple[dict[str, Any], Any]:
        raise KeyError("inside the config")

    def no_bases(path: str) -> tuple[Any, bool]:
        return None, False

    write(tmp_path, "x.py", "")
    with pytest.raises(KeyError, match="inside the config"):
        native.load_config(tmp_path / "x.py", python_bases=no_bases, run_python=bad_py)

    # A value Python configs cannot hand over is a ConfigLoadError naming the key.
    with pytest.raises(native.ConfigLoadError) as info2:
        native.load_config(
            tmp_path / "x.py", python_bases=no_bases, run_python=lambda p, b: ({"model": {"type": object()}}, None)
        )
    assert info2.value.key_path == "model.type"
    assert info2.value.file == str(tmp_path / "x.py")
    # ... unless plain_value gives a stand-in for it
    loaded = native.load_config(
        tmp_path / "x.py",
        python_bases=no_bases,
        run_python=lambda p, b: ({"model": {"type": object}}, None),
        plain_value=lambda obj: obj.__name__,
    )
    assert loaded.data == {"model": {"type": "object"}}
    with pytest.raises(native.ConfigLoadError, match="Python configs"):
        native.load_config(tmp_path / "x.py")
    with pytest.raises(TypeError):
        native.load_config(tmp_path / "x.py", python_bases=3, run_python=bad_py)
    with pytest.raises(TypeError, match="together"):
        native.load_config(tmp_path / "x.py", python_bases=no_bases)


# ---------------------------------------------------------------------------- errors


def test_duplicate_key_error_attributes(tmp_path: Path) -> None:
    path = write(tmp_path, "dup.yaml", "model:\n  type: A\n  depth: 1\n  type: B\n")
    with pytest.raises(native.ConfigLoadError) as info:
        native.load_config(path)
    e = info.value
    assert isinstance(e, ValueError)
    assert e.message == "duplicate key 'type' (first defined at line 2)"
    assert (e.file, e.line, e.col, e.key_path) == (str(path), 4, 3, "model.type")
    assert e.hint is not None
    assert str(e).startswith(f"{path}:4:3: duplicate key 'type'")


def test_malformed_yaml_has_position(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.yaml", "a: 1\nb: [1, 2\nc: 3\n")
    with pytest.raises(native.ConfigLoadError) as info:
        native.load_config(path)
    assert info.value.message.startswith("invalid YAML")
    assert info.value.file == str(path)
    assert info.value.line is not None and info.value.line >= 2
    assert info.value.col is not None


def test_missing_and_cyclic_bases(tmp_path: Path) -> None:
    child = write(tmp_path, "c.yaml", "x: 1\n_base_:\n  - nope.yaml\n")
    with pytest.raises(native.ConfigLoadError) as info:
        native.load_config(child)
    e = info.value
    assert "base config 'nope.yaml' not found" in e.message
    assert (e.file, e.line, e.col, e.key_path) == (str(child), 3, 5, "_base_.0")

    a = write(tmp_path, "a.yaml", "_base_: b.yaml\n")
    write(tmp_path, "b.yaml", "_base_: a.yaml\n")
    with pytest.raises(native.ConfigLoadError, match=r"circular _base_ inheritance: a\.yaml -> b\.yaml -> a\.yaml"):
        native.load_config(a)
    with pytest.raises(native.ConfigLoadError, match="not found"):
        native.load_config(tmp_path / "absent.yaml")


def test_reference_errors_name_the_referencing_key(tmp_path: Path) -> None:
    path = write(tmp_path, "r.yaml", "num_classes: 3\nmodel:\n  head: {n: '${num_clases}'}\n")
    with pytest.raises(native.ConfigLoadError) as info:
        native.load_config(path)
    e = info.value
    assert "'${num_clases}' not found" in e.message
    assert (e.key_path, e.line, e.col) == ("model.head.n", 3, 10)
    assert e.hint == "did you mean 'num_classes'?"
    with pytest.raises(native.ConfigLoadError, match="reference cycle: x -> y -> x"):
        native.loads_config("x: ${y}\ny: ${x}\n")


def test_override_errors(detection: Path) -> None:
    with pytest.raises(native.ConfigLoadError) as info:
        native.load_config(detection, ["train_cfg.max_epoch=3"])
    e = info.value
    assert e.key_path == "train_cfg.max_epoch"
    assert "did you mean 'max_epochs'?" in e.hint
    assert "+train_cfg.max_epoch=" in e.hint
    with pytest.raises(native.ConfigLoadError, match="out of range"):
        native.load_config(detection, ["param_scheduler.7.end=1"])
    with pytest.raises(native.ConfigLoadError, match="bad override"):
        native.load_config(detection, ["no_equals_sign"])
    with pytest.raises(native.ConfigLoadError, match="does not exist"):
        native.load_config(detection, ["~nothing_here"])


# ---------------------------------------------------------------------------- plain-data functions


def test_merge_delete_and_copies() -> None:
    base = {"opt": {"type": "SGD", "lr": 0.1, "momentum": 0.9}, "keep": [1, 2]}
    child = {"opt": {"_delete_": True, "type": "AdamW"}, "keep": (3,)}
    assert native.merge(base, child) == {"opt": {"type": "AdamW"}, "keep": (3,)}
    # as in MMEngine, a marker with nothing to delete stays
    assert native.merge({}, {"opt": {"_delete_": True}}) == {"opt": {"_delete_": True}}
    assert native.merge(base, {"opt": {"lr": 0.2}})["opt"] == {"type": "SGD", "lr": 0.2, "momentum": 0.9}
    assert base["opt"]["lr"] == 0.1  # inputs are not modified
    with pytest.raises(TypeError, match="must be a dict"):
        native.merge([], {})
    with pytest.raises(TypeError, match="at key 'a.b'"):
        native.merge({"a": {"b": {1, 2}}}, {})


def test_apply_overrides_and_interpolate_return_new_dicts() -> None:
    data = {"a": {"b": [1, 2]}, "s": "x"}
    out = native.apply_overrides(data, ["a.b.1=5", "+c={k: v}", "~s"])
    assert out == {"a": {"b": [1, 5]}, "c": {"k": "v"}}
    assert data == {"a": {"b": [1, 2]}, "s": "x"}
    with pytest.raises(native.ConfigLoadError) as info:
        native.apply_overrides(data, ["a.c=1"])
    assert info.value.key_path == "a.c"
    os.environ["KILN_PYTEST_ROOT"] = "/mnt/data"
    try:
        res = native.interpolate({"n": 2, "m": "${n}", "p": "${env:KILN_PYTEST_ROOT}/x_${n}", "d": "${env:KILN_PYTEST_NOPE,1.5}"})
    finally:
        del os.environ["KILN_PYTEST_ROOT"]
    assert res == {"n": 2, "m": 2, "p": "/mnt/data/x_2", "d": 1.5}


def test_parse_and_dump() -> None:
    assert native.parse_yaml("") is None
    assert native.parse_yaml("a: 1e-4\nb: yes\nc: [~, true]\n") == {"a": 1e-4, "b": "yes", "c": [None, True]}
    with pytest.raises(native.ConfigLoadError) as info:
        native.parse_yaml("a: 1\na: 2\n", "x.yaml")
    assert (info.value.file, info.value.line, info.value.col, info.value.key_path) == ("x.yaml", 2, 1, "a")
    text = native.dump_yaml({"model": {"type": "M", "heads": [{"n": 1}, {}]}, "lr": 1e-5, "s": "yes", "e": []})
    assert text == 'model:\n  type: M\n  heads:\n    - n: 1\n    - {}\nlr: 1.0e-05\ns: "yes"\ne: []\n'
    assert native.parse_yaml(text) == {"model": {"type": "M", "heads": [{"n": 1}, {}]}, "lr": 1e-5, "s": "yes", "e": []}


def test_dump_load_fixed_point(detection: Path) -> None:
    loaded = native.load_config(detection)
    text = native.dump_yaml(loaded.data)
    again = native.loads_config(text)
    assert again.data == loaded.data
    assert native.dump_yaml(again.data) == text


def test_error_class_defaults() -> None:
    e = native.ConfigLoadError("plain")
    assert e.file is None and e.line is None and e.key_path is None and e.hint is None
    assert issubclass(native.ConfigLoadError, ValueError)


# ---------------------------------------------------------------------------- properties

_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
_scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | _text


def _trees(leaf_keys: list[str], branch_keys: list[str], depth: int) -> st.SearchStrategy[dict[str, Any]]:
    """Nested dicts where a key is always a leaf or always a branch (so merges never change a
    value's kind, the case in which merging is associative)."""
    leaves = st.dictionaries(st.sampled_from(leaf_keys), _scalars, max_size=3)
    if depth == 0:
        return leaves
    branches = st.dictionaries(st.sampled_from(branch_keys), _trees(leaf_keys, branch_keys, depth - 1), max_size=2)
    return st.tuples(leaves, branches).map(lambda lb: {**lb[0], **lb[1]})


_config_trees = _trees(["a", "b", "c"], ["m", "n"], 3)


def _same(x: Any, y: Any) -> bool:
    """Equal, with dict key order compared too."""
    if isinstance(x, dict) and isinstance(y, dict):
        return list(x) == list(y) and all(_same(x[k], y[k]) for k in x)
    if isinstance(x, list) and isinstance(y, list):
        return len(x) == len(y) and all(_same(a, b) for a, b in zip(x, y))
    return type(x) is type(y) and x == y


@settings(max_examples=60, deadline=None)
@given(_config_trees)
def test_merge_with_empty_is_identity(tree: dict[str, Any]) -> None:
    assert _same(native.merge({}, tree), tree)
    assert _same(native.merge(tree, {}), tree)


@settings(max_examples=60, deadline=None)
@given(_config_trees, _config_trees, _config_trees)
def test_merge_is_associative(a: dict[str, Any], b: dict[str, Any], c: dict[str, Any]) -> None:
    left = native.merge(native.merge(a, b), c)
    right = native.merge(a, native.merge(b, c))
    assert _same(left, right)


def _leaf_paths(tree: Any, prefix: str = "") -> list[str]:
    if isinstance(tree, dict):
        return [p for k, v in tree.items() for p in _leaf_paths(v, f"{prefix}{k}.")]
    if isinstance(tree, list):
        return [p for i, v in enumerate(tree) for p in _leaf_paths(v, f"{prefix}{i}.")]
    return [prefix[:-1]]


def _flow(value: Any) -> str:
    """Override text that reads back as ``value``: the scalar as ``dump_yaml`` writes it."""
    line = native.dump_yaml({"v": value})
    assert line.startswith("v: ") and line.endswith("\n")
    return line[3:-1]


@settings(max_examples=60, deadline=None)
@given(_config_trees, _scalars, st.data())
def test_override_then_restore_gives_back_the_original(tree: dict[str, Any], new: Any, data: st.DataObject) -> None:
    paths = [p for p in _leaf_paths(tree) if p]
    if not paths:
        return
    path = data.draw(st.sampled_from(paths))
    node: Any = tree
    for seg in path.split("."):
        node = node[seg]
    changed = native.apply_overrides(tree, [f"{path}={_flow(new)}"])
    got: Any = changed
    for seg in path.split("."):
        got = got[seg]
    assert _same(got, new)
    restored = native.apply_overrides(changed, [f"{path}={_flow(node)}"])
    assert _same(restored, tree)


_any_keys = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=8)
_any_trees = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_any_keys, inner, max_size=3),
    max_leaves=12,
)


@settings(max_examples=80, deadline=None)
@given(st.dictionaries(_any_keys, _any_trees, max_size=4))
def test_dump_parse_round_trip(tree: dict[str, Any]) -> None:
    text = native.dump_yaml(tree)
    back = native.parse_yaml(text)
    assert _same(back if back is not None else {}, tree)
    assert native.dump_yaml(back if back is not None else {}) == text


def test_a_deep_override_path_is_a_config_error_not_a_crash() -> None:
    """20000 segments used to overflow the stack (SIGSEGV); run it in a child to be safe."""
    import subprocess
    import sys

    code = (
        "from torchkiln import _native as n\n"
        "try:\n"
        "    n.loads_config('a: 1', 'yaml', ['+' + '.'.join(['b'] * 20000) + '=1'])\n"
        "except n.ConfigLoadError as e:\n"
        "    print('ERR', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ERR") and "more than 256 segments" in out.stdout
    ok = native.loads_config("a: 1", "yaml", ["+" + ".".join(["b"] * 255) + "=1"])
    node = ok.data
    for _ in range(255):
        node = node["b"]
    assert node == 1


def test_dump_yaml_escape_refs_round_trips_literal_references() -> None:
    data = {"root": "/data", "esc": "${root}/x", "mm": "{{$HOME}} {{_base_.a}}", "${key}": "k"}
    plain = native.dump_yaml(data)
    assert 'esc: "${root}/x"' in plain  # plain data stays as it is
    text = native.dump_yaml(data, escape_refs=True)
    assert "\\${root}/x" in text and "\\{{$HOME}}" in text
    assert native.loads_config(text).data == data
    assert native.escape_refs("a${b}{{c") == "a\\${b}\\{{c"
