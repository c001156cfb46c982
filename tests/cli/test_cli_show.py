"""`torchkiln config show`: the exact final YAML, and its provenance annotations."""

from __future__ import annotations

import re
import textwrap

import pytest

from torchkiln.cli import main
from torchkiln.config import loads

OVERRIDES = [
    "train_cfg.max_epochs=24",
    "param_scheduler.1.milestones=[16,22]",
    "+model.neck={type: FPN, out_channels: 256}",
    "~model.head.loss",
]

EXPECTED = """\
model:
  type: Net
  backbone:
    type: ResNet
    depth: 50
    norm_cfg:
      type: GN
      num_groups: 32
  head:
    num_classes: 20
  neck:
    type: FPN
    out_channels: 256
optim_wrapper:
  optimizer:
    type: SGD
    lr: 0.01
    momentum: 0.9
param_scheduler:
  - type: LinearLR
    start_factor: 0.001
    by_epoch: false
    end: 500
  - type: MultiStepLR
    milestones:
      - 16
      - 22
train_cfg:
  by_epoch: true
  max_epochs: 24
data_root: /data/coco/
work_dir: /data/coco/runs/GN
experiment_name: epochs_24
"""


@pytest.fixture()
def child(tmp_path):
    files = {
        "base/model.yaml": """
            model:
              type: Net
              backbone: {type: ResNet, depth: 50, norm_cfg: {type: BN, requires_grad: true}}
              head: {num_classes: 80, loss: {type: CrossEntropyLoss, weight: 1.0}}
        """,
        "base/schedule.yaml": """
            optim_wrapper:
              optimizer: {type: SGD, lr: 0.02, momentum: 0.9}
            param_scheduler:
              - {type: LinearLR, start_factor: 0.001, by_epoch: false, end: 500}
              - {type: MultiStepLR, milestones: [8, 11]}
            train_cfg: {by_epoch: true, max_epochs: 12}
        """,
        "child.yaml": """
            _base_: [base/model.yaml, base/schedule.yaml]
            data_root: /data/coco/
            model:
              backbone:
                norm_cfg: {_delete_: true, type: GN, num_groups: 32}
              head: {num_classes: 20}
            optim_wrapper:
              optimizer: {lr: 0.01}
            work_dir: ${data_root}runs/${model.backbone.norm_cfg.type}
            experiment_name: "epochs_${train_cfg.max_epochs}"
        """,
    }
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    return tmp_path / "child.yaml"


def test_show_prints_the_exact_final_yaml(child, capsys):
    assert main(["config", "show", str(child), "--cfg-options", *OVERRIDES]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out == EXPECTED


def test_cfg_options_may_be_given_several_times(child, capsys):
    argv = ["config", "show", str(child)]
    for item in OVERRIDES:
        argv += ["--cfg-options", item]
    assert main(argv) == 0
    assert capsys.readouterr().out == EXPECTED


def test_provenance_annotates_each_leaf_and_loads_back(child, capsys, tmp_path):
    assert main(["config", "show", str(child), "--provenance", "--cfg-options", *OVERRIDES]) == 0
    out = capsys.readouterr().out
    stripped = "\n".join(re.sub(r"\s+# .*$", "", line) for line in out.splitlines()) + "\n"
    assert stripped == EXPECTED
    assert loads(out, "yaml").to_dict() == loads(EXPECTED, "yaml").to_dict()
    lines = {line.split("#")[0].strip(): line.split("# ", 1)[1] for line in out.splitlines() if "# " in line}
    base_dir = str(tmp_path.resolve())
    assert lines["depth: 50"] == f"{base_dir}/base/model.yaml:3:28"
    assert lines["type: GN"] == f"{base_dir}/child.yaml:5:32"
    assert lines["max_epochs: 24"] == "--cfg-options train_cfg.max_epochs=24"
    assert lines["- 16"] == "--cfg-options param_scheduler.1.milestones=[16,22]"
    assert lines["out_channels: 256"] == "--cfg-options +model.neck={type: FPN, out_channels: 256}"
    assert lines["momentum: 0.9"] == f"{base_dir}/base/schedule.yaml:2:36"
    # comments start in one column
    columns = {line.index("  # ") for line in out.splitlines() if "  # " in line}
    assert len(columns) == 1
