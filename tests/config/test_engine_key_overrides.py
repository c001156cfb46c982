"""Every key of the run schema can be overridden as MMEngine allows, written in the config or not."""

from __future__ import annotations

from pathlib import Path

import pytest

from torchkiln.cli import main
from torchkiln.config import load
from torchkiln.config.schema import is_engine_key
from torchkiln.errors import ConfigError

QUICKSTART = str(Path(__file__).resolve().parents[2] / "configs" / "quickstart.yaml")


@pytest.mark.parametrize(
    ("path", "known"),
    [
        ("load_from", True), ("val_cfg.fp16", True), ("env_cfg.dist_cfg.backend", True),
        ("randomness.diff_rank_seed", True), ("train_cfg.max_epochs", True),
        ("model.depth", False), ("train_cfg.max_epoch", False), ("work_dri", False),
    ],
)
def test_schema_paths(path, known):
    assert is_engine_key(path.split(".")) is known


def test_engine_keys_need_no_plus():
    cfg = load(QUICKSTART, ["load_from=w.pth", "val_cfg.fp16=true", "env_cfg.cudnn_benchmark=true", "resume=true"])
    assert cfg["load_from"] == "w.pth" and cfg["val_cfg"] == {"fp16": True}
    assert cfg["env_cfg"] == {"cudnn_benchmark": True} and cfg["resume"] is True


def test_typos_still_fail_where_they_are():
    with pytest.raises(ConfigError, match="'max_epoch' does not exist in 'train_cfg'"):
        load(QUICKSTART, ["train_cfg.max_epoch=3"])
    with pytest.raises(ConfigError, match="'work_dri' does not exist"):
        load(QUICKSTART, ["work_dri=x"])
    with pytest.raises(ConfigError, match="does not exist"):
        load(QUICKSTART, ["model.dpth=3"])  # a component's arguments are the component's


def test_cli_config_validate_accepts_an_engine_key_override(capsys):
    assert main(["config", "validate", QUICKSTART, "--cfg-options", "val_cfg.fp16=true", "auto_scale_lr.base_batch_size=32"]) == 0
    assert capsys.readouterr().out == "ok\n"
