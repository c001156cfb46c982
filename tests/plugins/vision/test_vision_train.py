"""Train a torchvision and a timm model from YAML on generated images, offline, a few iterations."""

from __future__ import annotations

import json
import textwrap

import pytest
from torchkiln.cli import main


def _config(tmp_path, shapes_root, model: str) -> str:
    path = tmp_path / "run.yaml"
    path.write_text(
        textwrap.dedent(f"""
        _base_: torchkiln_vision::resnet10t_shapes.yaml
        vars: {{data_root: {shapes_root}}}
        model: {model}
        train_dataloader:
          batch_size: 8
          num_workers: 0
          dataset:
            pipeline: [{{type: RandomHorizontalFlip, p: 0.5}}]
        val_dataloader: {{batch_size: 16, num_workers: 0}}
        test_dataloader: {{num_workers: 0, dataset: {{data_root: "{shapes_root}/val"}}}}
        optim_wrapper:
          optimizer: {{lr: 0.01}}
        model_data_preprocessor_note: null
        param_scheduler: []
        train_cfg: {{_delete_: true, type: IterBasedTrainLoop, max_iters: 3, val_interval: 3}}
        default_hooks:
          logger: {{interval: 1}}
          checkpoint: {{interval: 3, by_epoch: false}}
    """).replace("model_data_preprocessor_note: null\n", "")
    )
    return str(path)


@pytest.mark.slow
def test_train_a_torchvision_model_from_yaml_then_test_the_checkpoint(
    tmp_path, shapes_root, capsys
):
    cfg = _config(
        tmp_path, shapes_root, "{type: TorchvisionClassifier, model_name: resnet18, num_classes: 4}"
    )
    work = tmp_path / "work"
    assert main(["train", cfg, "--work-dir", str(work)]) == 0, capsys.readouterr().err
    metrics = json.loads(next(work.rglob("metrics.json")).read_text())["val"]
    assert 0.0 <= metrics["accuracy/top1"] <= 100.0
    assert len(metrics["confusion_matrix/matrix"]) == 4
    assert sum(map(sum, metrics["confusion_matrix/matrix"])) == 16
    assert "single-label/f1-score/triangle" in metrics
    assert list(work.rglob("confusion_matrix*.png"))
    checkpoint = work / "iter_3.pth"
    assert checkpoint.is_file()
    assert (
        main(["test", cfg, "--work-dir", str(tmp_path / "test"), "--checkpoint", str(checkpoint)])
        == 0
    )


@pytest.mark.slow
def test_train_a_timm_model_from_yaml_with_mixup(tmp_path, shapes_root, capsys):
    pytest.importorskip("timm")
    model = (
        "{type: TimmClassifier, model_name: test_resnet, num_classes: 4, "
        "data_preprocessor: {batch_augments: [{type: MixUp, alpha: 0.8}, {type: CutMix, alpha: 1.0}]}}"
    )
    cfg = _config(tmp_path, shapes_root, model)
    assert main(["train", cfg, "--work-dir", str(tmp_path / "work")]) == 0, capsys.readouterr().err


def test_a_missing_weights_file_fails_the_run_with_a_config_error(tmp_path, shapes_root, capsys):
    cfg = _config(
        tmp_path,
        shapes_root,
        "{type: TorchvisionClassifier, model_name: resnet18, num_classes: 4, pretrained: no/such/weights.pth}",
    )
    assert main(["train", cfg, "--work-dir", str(tmp_path / "work")]) == 2
    err = capsys.readouterr().err
    assert "local weights file 'no/such/weights.pth' does not exist" in err
    assert "Traceback" not in err
