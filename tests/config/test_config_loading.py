"""Loading through the Rust core: bases, merging, interpolation, overrides, provenance, errors."""

from __future__ import annotations

import textwrap

import pytest

from torchkiln.config import Config, load, loads, validate
from torchkiln.errors import ConfigError


def write(tmp_path, name, text):
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


@pytest.fixture()
def chain(tmp_path):
    write(tmp_path, "base/model.yaml", """
        model:
          type: Net
          backbone: {type: ResNet, depth: 50, norm: {type: BN}}
          head: {num_classes: 80}
    """)
    write(tmp_path, "base/schedule.yaml", """
        optim_wrapper:
          optimizer: {type: SGD, lr: 0.02, momentum: 0.9}
        train_cfg: {by_epoch: true, max_epochs: 12}
    """)
    return write(tmp_path, "child.yaml", """
        _base_: [base/model.yaml, base/schedule.yaml]
        data_root: /data/coco/
        model:
          backbone:
            norm: {_delete_: true, type: GN, num_groups: 32}
          head: {num_classes: 20}
        optim_wrapper:
          optimizer: {lr: 0.01}
        work_dir: ${data_root}runs
    """)


def test_bases_merge_delete_and_interpolate(chain):
    cfg = load(chain)
    assert cfg.to_dict() == {
        "model": {
            "type": "Net",
            "backbone": {"type": "ResNet", "depth": 50, "norm": {"type": "GN", "num_groups": 32}},
            "head": {"num_classes": 20},
        },
        "optim_wrapper": {"optimizer": {"type": "SGD", "lr": 0.01, "momentum": 0.9}},
        "train_cfg": {"by_epoch": True, "max_epochs": 12},
        "data_root": "/data/coco/",
        "work_dir": "/data/coco/runs",
    }
    assert cfg.filename == str(chain)
    assert [f.rsplit("/", 1)[-1] for f in cfg.files] == ["child.yaml", "model.yaml", "schedule.yaml"] or set(
        f.rsplit("/", 1)[-1] for f in cfg.files) == {"child.yaml", "model.yaml", "schedule.yaml"}
    assert "data_root" in cfg.referenced


def test_provenance_points_at_files_lines_and_overrides(chain, tmp_path):
    cfg = load(chain, ["train_cfg.max_epochs=24"])
    prov = cfg.provenance
    assert prov["model.backbone.depth"].endswith("base/model.yaml:3:33") or prov["model.backbone.depth"].startswith(
        str((tmp_path / "base" / "model.yaml").resolve()))
    assert prov["optim_wrapper.optimizer.lr"].startswith(str(chain.resolve()) + ":")
    assert prov["train_cfg.max_epochs"] == "--cfg-options train_cfg.max_epochs=24"


def test_overrides_set_add_delete_and_index_lists(tmp_path):
    path = write(tmp_path, "a.yaml", """
        param_scheduler:
          - {type: LinearLR, end: 500}
          - {type: MultiStepLR, milestones: [8, 11]}
        model: {type: Net, depth: 50, extra: 1}
    """)
    cfg = load(path, ["param_scheduler.1.milestones=[16,22]", "+model.neck={type: FPN}", "~model.extra",
                      "model.depth=101"])
    assert cfg.to_dict() == {
        "param_scheduler": [{"type": "LinearLR", "end": 500}, {"type": "MultiStepLR", "milestones": [16, 22]}],
        "model": {"type": "Net", "depth": 101, "neck": {"type": "FPN"}},
    }


def test_override_of_a_missing_key_suggests_the_closest(tmp_path):
    path = write(tmp_path, "a.yaml", "train_cfg: {by_epoch: true, max_epochs: 12}\n")
    with pytest.raises(ConfigError) as info:
        load(path, ["train_cfg.max_epoch=3"])
    text = str(info.value)
    assert "key 'max_epoch' does not exist in 'train_cfg'" in info.value.message
    assert info.value.where == "key train_cfg.max_epoch"
    assert "did you mean" in info.value.hint and "'max_epochs'" in info.value.hint
    assert "+train_cfg.max_epoch=" in info.value.hint


def test_malformed_yaml_has_file_line_and_column(tmp_path):
    path = write(tmp_path, "bad.yaml", "a: 1\nb: [1, 2\nc: 3\n")
    with pytest.raises(ConfigError) as info:
        load(path)
    assert info.value.where.startswith(f"{path}:") or info.value.where.startswith(f"{path.resolve()}:")
    line = int(info.value.where.split(":")[1].split(",")[0])
    assert line in (2, 3)


def test_missing_and_cyclic_bases(tmp_path):
    path = write(tmp_path, "a.yaml", "_base_: nowhere.yaml\n")
    with pytest.raises(ConfigError, match="nowhere.yaml"):
        load(path)
    write(tmp_path, "x.yaml", "_base_: y.yaml\n")
    write(tmp_path, "y.yaml", "_base_: z.yaml\n")
    write(tmp_path, "z.yaml", "_base_: x.yaml\n")
    with pytest.raises(ConfigError) as info:
        load(tmp_path / "x.yaml")
    text = str(info.value)
    assert "x.yaml" in text and "y.yaml" in text and "z.yaml" in text


def test_missing_reference_names_the_key(tmp_path):
    path = write(tmp_path, "a.yaml", "work_dir: ${data_rot}/runs\ndata_root: /d\n")
    with pytest.raises(ConfigError) as info:
        load(path)
    assert "data_rot" in str(info.value)


def test_env_interpolation(tmp_path, monkeypatch):
    monkeypatch.setenv("TK_TEST_EPOCHS", "7")
    monkeypatch.delenv("TK_TEST_UNSET", raising=False)
    path = write(tmp_path, "a.yaml", """
        train_cfg: {max_epochs: "${env:TK_TEST_EPOCHS}"}
        work_dir: "${env:TK_TEST_UNSET,runs}/x"
    """)
    assert load(path).to_dict() == {"train_cfg": {"max_epochs": 7}, "work_dir": "runs/x"}


def test_json_and_toml_load_too(tmp_path):
    write(tmp_path, "base.json", '{"model": {"type": "Net", "depth": 50}}')
    path = write(tmp_path, "child.toml", """
        _base_ = "base.json"
        [model]
        depth = 18
    """)
    assert load(path).to_dict() == {"model": {"type": "Net", "depth": 18}}


def test_loads_from_text_with_a_base_dir(tmp_path):
    write(tmp_path, "base.yaml", "a: {b: 1, c: 2}\n")
    cfg = loads("_base_: base.yaml\na: {c: 3}\n", "yaml", base_dir=tmp_path)
    assert cfg.to_dict() == {"a": {"b": 1, "c": 3}} and cfg.filename is None


def test_python_config_with_yaml_base_and_base_references(tmp_path):
    write(tmp_path, "base.yaml", "model: {type: Net, depth: 50}\ntrain_cfg: {by_epoch: true, max_epochs: 12}\n")
    path = write(tmp_path, "child.py", """
        _base_ = ['./base.yaml']
        model = dict(depth=101, stages=(1, 2))
        test_cfg = dict(fp16={{_base_.train_cfg.by_epoch}})
        epochs = {{_base_.train_cfg.max_epochs}}
    """)
    cfg = Config.fromfile(path)
    assert cfg.to_dict() == {
        "model": {"type": "Net", "depth": 101, "stages": (1, 2)},
        "train_cfg": {"by_epoch": True, "max_epochs": 12},
        "test_cfg": {"fp16": True},
        "epochs": 12,
    }
    with pytest.warns(UserWarning, match="'epochs' is not a runner setting"):
        errors = validate(cfg, components=False)
    assert errors == [] or all("given without" in e.message for e in errors)


def test_yaml_child_of_a_python_base(tmp_path):
    write(tmp_path, "base.py", "model = dict(type='Net', depth=50)\nlr = 0.1\n")
    path = write(tmp_path, "child.yaml", "_base_: base.py\nmodel: {depth: 18}\n")
    assert load(path).to_dict() == {"model": {"type": "Net", "depth": 18}, "lr": 0.1}


def test_a_failing_python_base_reports_its_line(tmp_path):
    write(tmp_path, "base.py", "a = 1\nb = 1 / 0\n")
    path = write(tmp_path, "child.yaml", "_base_: base.py\n")
    with pytest.raises(ConfigError) as info:
        load(path)
    assert "ZeroDivisionError" in str(info.value)
    assert "base.py:2" in str(info.value)


def test_package_bases_resolve_through_entry_points(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from torchkiln.registry import _index

    pkg = tmp_path / "tk_loadpkg"
    (pkg / "configs").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "configs" / "schedule.yaml").write_text("train_cfg: {by_epoch: true, max_epochs: 12}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    ep = SimpleNamespace(name="tk_loadpkg", value="tk_loadpkg.configs", group="torchkiln.configs",
                         dist=SimpleNamespace(name="tk-loadpkg", version="0"))
    monkeypatch.setattr(_index, "entry_points_by_group", lambda: {"torchkiln.configs": [ep]})
    path = write(tmp_path, "child.yaml", "_base_: tk_loadpkg::schedule.yaml\ntrain_cfg: {max_epochs: 3}\n")
    assert load(path).to_dict() == {"train_cfg": {"by_epoch": True, "max_epochs": 3}}
    bad = write(tmp_path, "bad.yaml", "_base_: tk_nopkg::schedule.yaml\n")
    with pytest.raises(ConfigError) as info:
        load(bad)
    assert "tk_nopkg" in str(info.value) and "tk_loadpkg" in str(info.value)


def test_unsupported_extension(tmp_path):
    path = write(tmp_path, "a.ini", "[a]\n")
    with pytest.raises(ConfigError, match="unsupported config file type '.ini'"):
        load(path)


def test_validation_errors_carry_the_yaml_line(tmp_path):
    path = write(tmp_path, "a.yaml", """
        work_dir: runs
        train_cfg:
          by_epoch: true
          max_epochs: two
    """)
    [err] = [e for e in validate(load(path), components=False) if "given without" not in e.message]
    assert err.message == "invalid value for 'train_cfg.max_epochs': expected an integer or null, got 'two' (a string)"
    assert err.where == f"{path.resolve()}:4:3, key train_cfg.max_epochs"


def test_load_and_validate_raises_every_error_at_once(tmp_path):
    from torchkiln.config import ConfigValidationError, load_and_validate

    path = write(tmp_path, "a.yaml", "work_dir: 3\nlog_level: LOUD\n")
    with pytest.raises(ConfigValidationError) as info:
        load_and_validate(path)
    assert [e.message for e in info.value.errors] == [
        "invalid value for 'work_dir': expected a string or null, got 3 (an integer)",
        "invalid value for 'log_level': must be one of 'DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL'; "
        "got 'LOUD' (a string)",
    ]
    assert info.value.exit_code == 2
    assert str(info.value).count("\n  at: ") == 2
    good = write(tmp_path, "b.yaml", "work_dir: runs\n")
    assert load_and_validate(good).work_dir == "runs"
