"""The configs shipped in configs/examples and configs/bench load (and the examples validate)."""

from __future__ import annotations

import importlib.metadata as md
import warnings
from pathlib import Path

import pytest

from torchkiln.config import load, validate

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "configs" / "examples").glob("*.yaml")) + sorted((ROOT / "configs" / "examples").glob("*.py"))


def _plugin_installed() -> bool:
    try:
        md.distribution("torchkiln-example")
    except md.PackageNotFoundError:
        return False
    return True


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_are_valid(path):
    if "torchkiln_example::" in path.read_text() and not _plugin_installed():
        pytest.skip("needs the torchkiln-example plugin")
    cfg = load(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert [str(e) for e in validate(cfg)] == []


def test_inheritance_example_resolves_as_documented(monkeypatch):
    monkeypatch.setenv("SEED", "7")
    cfg = load(ROOT / "configs" / "examples" / "inheritance.yaml", ["train_cfg.max_epochs=12"])
    assert cfg.model.to_dict() == {"type": "DigitsMLP", "hidden": [128], "dropout": 0.1}
    assert cfg.optim_wrapper.to_dict() == {"optimizer": {"type": "AdamW", "lr": 0.001}}
    assert [s.type for s in cfg.param_scheduler] == ["CosineAnnealingLR"]
    assert cfg.train_dataloader.dataset.val_fraction == 0.25
    assert cfg.work_dir == "work_dirs/mlp_wide_128"
    assert cfg.randomness.seed == 7
    assert cfg.train_cfg.max_epochs == 12


def test_bench_sets_load_and_agree_on_the_model():
    yaml_cfg = load(ROOT / "configs" / "bench" / "faster_rcnn_r50_fpn_1x_coco.yaml", ["train_cfg.max_epochs=24"])
    py_cfg = load(ROOT / "configs" / "bench" / "py" / "faster_rcnn_r50_fpn_1x_coco.py", ["train_cfg.max_epochs=24"])
    assert yaml_cfg.model.to_dict() == py_cfg.model.to_dict()
    assert yaml_cfg.model.roi_head.bbox_head.num_classes == 20
    assert yaml_cfg.model.backbone.frozen_stages == 0
    assert yaml_cfg.test_dataloader == yaml_cfg.val_dataloader
    assert yaml_cfg.val_dataloader.dataset.data_root == "data/voc_coco/"
    assert yaml_cfg.val_evaluator.ann_file == "data/voc_coco/annotations/instances_val2017.json"
    assert yaml_cfg.train_dataloader.dataset.pipeline == yaml_cfg.train_pipeline
    assert yaml_cfg.optim_wrapper.to_dict() == {
        "type": "OptimWrapper",
        "optimizer": {"type": "SGD", "lr": 0.01, "momentum": 0.9, "weight_decay": 0.0001},
        "clip_grad": {"max_norm": 35, "norm_type": 2},
    }
    for key in ("train_cfg", "param_scheduler", "default_hooks", "env_cfg", "optim_wrapper"):
        assert yaml_cfg[key] == py_cfg[key], key


def test_the_reference_documents_every_top_level_key():
    import re

    from torchkiln.config.schema import top_level_keys

    text = (ROOT / "docs" / "config.md").read_text()
    section = text[text.index("## Top-level keys"):text.index("## User variables")]
    documented = set()
    for row in re.findall(r"^\| (`[^|]+`) \|", section, re.MULTILINE):
        documented.update(re.findall(r"`([a-z_]+)`", row))
    assert set(top_level_keys()) == documented
