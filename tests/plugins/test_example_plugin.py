"""The first-party example plugin: discovered through entry points, built by name from YAML."""

from __future__ import annotations

import importlib.metadata as md
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import torchkiln
from torchkiln.cli import main
from torchkiln.config import load, validate
from torchkiln.registry import DATASETS, METRICS, MODELS, _index

try:
    md.distribution("torchkiln-example")
except md.PackageNotFoundError:  # pragma: no cover - depends on the environment
    pytest.skip("torchkiln-example is not installed (pip install -e plugins/torchkiln-example)",
                allow_module_level=True)


def _importable(module: str, name: str) -> bool:
    try:
        return hasattr(__import__(module, fromlist=[name]), name)
    except ImportError:
        return False


needs_model = pytest.mark.skipif(
    not _importable("torchkiln.model", "BaseModel"), reason="torchkiln.model.BaseModel is not available yet"
)
needs_metric = pytest.mark.skipif(
    not _importable("torchkiln.evaluation", "BaseMetric"), reason="torchkiln.evaluation.BaseMetric is not available yet"
)

PYTHON_DIR = str(Path(torchkiln.__file__).resolve().parents[1])


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def test_entry_points_are_indexed_without_importing_the_plugin():
    assert _index.providers("models", "torchkiln.models")["ExampleMLP"] == {
        "torchkiln_example": "torchkiln_example.models:ExampleMLP"}
    assert _index.providers("datasets", "torchkiln.datasets")["ExampleDataset"] == {
        "torchkiln_example": "torchkiln_example.datasets:ExampleDataset"}
    assert _index.providers("metrics", "torchkiln.metrics")["ExampleAccuracy"] == {
        "torchkiln_example": "torchkiln_example.metrics:ExampleAccuracy"}
    assert "ExampleMLP" in MODELS and "torchkiln_example::ExampleMLP" in MODELS
    assert "torchkiln_example" in _index.distributions()
    plugins = {ep.name: ep.value for ep in _index.entry_points_by_group()["torchkiln.plugins"]}
    assert plugins["example_logger"] == "torchkiln_example.logger_plugin"


def test_plugins_command_lists_the_distribution(capsys):
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "torchkiln-example 0.1.0" in out
    assert "    models: ExampleMLP" in out
    assert "    datasets: ExampleDataset" in out
    assert "    metrics: ExampleAccuracy" in out
    assert "    hook plugins: example_counter [after_train_epoch]; example_logger [before_run, after_train_epoch]" in out
    assert "    config packages: torchkiln_example (torchkiln_example.configs)" in out


def test_plugins_command_does_not_import_the_plugin():
    env = dict(os.environ, PYTHONPATH=PYTHON_DIR)
    code = ("import sys, io, contextlib\nfrom torchkiln.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n    main(['plugins'])\n"
            "print(sorted(m for m in sys.modules if m.startswith('torchkiln_example') or m == 'torch'))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_package_base_resolves(tmp_path):
    path = write(tmp_path, "child.yaml", """
        _base_: torchkiln_example::schedule_1x.yaml
        train_cfg: {max_epochs: 2}
    """)
    cfg = load(path)
    assert cfg.to_dict() == {
        "optim_wrapper": {"optimizer": {"type": "SGD", "lr": 0.1, "momentum": 0.9, "weight_decay": 0.0001}},
        "param_scheduler": [{"type": "MultiStepLR", "by_epoch": True, "milestones": [8, 11], "gamma": 0.1}],
        "train_cfg": {"by_epoch": True, "max_epochs": 2, "val_interval": 1},
    }
    assert any(f.endswith("torchkiln_example/configs/schedule_1x.yaml") for f in cfg.files)
    # the distribution's name works as the package name too
    path = write(tmp_path, "child2.yaml", "_base_: torchkiln-example::base_model.yaml\n")
    assert load(path).model.type == "ExampleMLP"


@needs_model
@needs_metric
def test_the_example_config_validates(tmp_path):
    path = write(tmp_path, "run.yaml", "_base_: torchkiln_example::example_mlp.yaml\nwork_dir: x\n")
    assert [str(e) for e in validate(load(path))] == []
    bad = write(tmp_path, "bad.yaml", """
        _base_: torchkiln_example::example_mlp.yaml
        model: {hiden: [3]}
        val_evaluator: {type: ExampleAccurcy}
    """)
    text = "\n".join(str(e) for e in validate(load(bad)))
    assert "models.ExampleMLP got an unexpected argument 'hiden'" in text
    assert "did you mean 'hidden'?" in text
    assert "unknown type 'ExampleAccurcy' in registry metrics" in text
    assert "did you mean 'ExampleAccuracy'" in text


@needs_model
def test_model_and_dataset_build_by_name_from_yaml(tmp_path):
    import torch

    cfg = load(write(tmp_path, "m.yaml", """
        model: {type: torchkiln_example::ExampleMLP, in_features: 4, num_classes: 3, hidden: [8]}
        dataset: {type: ExampleDataset, num_samples: 12, in_features: 4, num_classes: 3, seed: 1}
    """))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    dataset = DATASETS.build(cfg.dataset)
    assert type(model).__name__ == "ExampleMLP" and type(model).__module__ == "torchkiln_example.models"
    assert len(dataset) == 12
    x, y = dataset[3]
    assert x.shape == (4,) and 0 <= int(y) < 3
    again = DATASETS.build(cfg.dataset)
    assert torch.equal(again.inputs, dataset.inputs) and torch.equal(again.labels, dataset.labels)
    val = DATASETS.build({**cfg.dataset, "split": "val"})
    assert not torch.equal(val.inputs, dataset.inputs)
    assert sorted(dataset.labels.tolist()) == [0] * 4 + [1] * 4 + [2] * 4
    inputs = dataset.inputs[:5]
    labels = dataset.labels[:5]
    logits = model(inputs, labels, mode="tensor")
    assert logits.shape == (5, 3)
    losses = model(inputs, labels, mode="loss")
    assert set(losses) == {"loss"}
    assert torch.allclose(losses["loss"], torch.nn.functional.cross_entropy(logits, labels))
    preds = model(inputs, labels, mode="predict")
    assert [p["pred_label"] for p in preds] == logits.argmax(-1).tolist()
    assert [p["gt_label"] for p in preds] == labels.tolist()


@needs_metric
def test_metric_builds_by_name_and_computes_percent():
    metric = METRICS.build({"type": "ExampleAccuracy"})
    metric.process(None, [{"pred_label": 1, "gt_label": 1}, {"pred_label": 0, "gt_label": 2}])
    metric.process(None, [{"pred_label": 2, "gt_label": 2}, {"pred_label": 2, "gt_label": 2}])
    assert metric.results == [True, False, True, True]
    assert metric.compute_metrics(metric.results) == {"accuracy": 75.0}
    assert metric.evaluate(4) == {"example/accuracy": 75.0}


def test_hook_plugin_counts_epochs():
    from torchkiln_example import logger_plugin

    class Hub:
        def __init__(self):
            self.info = {}

        def update_info(self, key, value):
            self.info[key] = value

        def get_info(self, key, default=None):
            return self.info.get(key, default)

    class Logger:
        def __init__(self):
            self.lines = []

        def debug(self, msg):
            self.lines.append(msg)

    class Runner:
        message_hub = Hub()
        logger = Logger()
        epoch = 0

    runner = Runner()
    logger_plugin.before_run(runner)
    for epoch in (1, 2):
        runner.epoch = epoch
        logger_plugin.after_train_epoch(runner)
    assert runner.message_hub.info == {"example/epochs_finished": 2}
    assert runner.logger.lines[-1] == "example_logger: 2 training epoch(s) finished (epoch 2)"


def _runner_available() -> bool:
    try:
        import torchkiln.runner.entry  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.slow  # the first optimizer step imports torch._dynamo (seconds on a busy machine)
@needs_model
@needs_metric
@pytest.mark.skipif(not _runner_available(), reason="torchkiln.runner is not available yet")
def test_train_dry_run_of_a_config_inheriting_the_plugin(tmp_path, capsys):
    import torch

    torch.set_num_threads(1)
    cfg = write(tmp_path, "run.yaml", """
        _base_: torchkiln_example::example_mlp.yaml
        train_cfg: {max_epochs: 1}
    """)
    code = main(["train", str(cfg), "--work-dir", str(tmp_path / "work"), "--dry-run"])
    assert code == 0, capsys.readouterr().err
    assert (tmp_path / "work").is_dir()


@needs_model
@needs_metric
def test_the_cli_takes_a_package_config_as_its_config_argument(tmp_path, capsys):
    assert main(["config", "show", "torchkiln_example::example_mlp.yaml"]) == 0
    assert "ExampleMLP" in capsys.readouterr().out
    # the distribution's name as pip shows it works too
    assert main(["config", "show", "torchkiln-example::example_mlp.yaml"]) == 0
    assert main(["config", "show", "no_such_package::x.yaml"]) == 2
    err = capsys.readouterr().err
    assert "unknown config package 'no_such_package'" in err
    assert "Traceback" not in err
