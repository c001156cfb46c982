"""The files ``torchkiln new-plugin`` writes, as :class:`string.Template` texts.

Placeholders: ``$dist`` (distribution name), ``$pkg`` (import package), ``$Prefix``
(component name prefix, e.g. ``Foo``), ``$prefix`` (metric and message-hub prefix, e.g.
``foo``), ``$requires`` (the torchkiln requirement). Paths are relative to the new folder;
``{pkg}`` in a path is the import package.
"""

from __future__ import annotations

__all__ = ["TEMPLATES"]

_PYPROJECT = """\
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "$dist"
version = "0.1.0"
description = "A torchkiln plugin: a model, a metric, a hook, a hook plugin and a config"
readme = "README.md"
requires-python = ">=3.10"
dependencies = ["$requires"]

[project.optional-dependencies]
test = ["pytest"]

# Components, one entry-point group per registry: found by name, imported only when a config
# builds them.
[project.entry-points."torchkiln.models"]
${Prefix}MLP = "$pkg.models:${Prefix}MLP"

[project.entry-points."torchkiln.metrics"]
${Prefix}Accuracy = "$pkg.metrics:${Prefix}Accuracy"

[project.entry-points."torchkiln.hooks"]
${Prefix}IterCounterHook = "$pkg.hooks:${Prefix}IterCounterHook"

# A hook plugin: registered at every run start; its functions named after mount points run there.
[project.entry-points."torchkiln.plugins"]
${pkg}_watch = "$pkg.plugin"

# A config folder, for `_base_: $pkg::${pkg}_digits.yaml`.
[project.entry-points."torchkiln.configs"]
$pkg = "$pkg.configs"

[tool.setuptools]
packages = ["$pkg"]

[tool.setuptools.package-data]
$pkg = ["configs/*.yaml"]

[tool.pytest.ini_options]
testpaths = ["tests"]
"""

_README = """\
# $dist

A torchkiln plugin. Installing it (`pip install -e .`) is all a user does: torchkiln finds its
parts through entry points.

| part | name | entry-point group |
| --- | --- | --- |
| model | `${Prefix}MLP` | `torchkiln.models` |
| metric | `${Prefix}Accuracy` (reports `$prefix/accuracy`) | `torchkiln.metrics` |
| hook | `${Prefix}IterCounterHook` (counts iterations in `$prefix/train_iters`) | `torchkiln.hooks` |
| hook plugin | `${pkg}_watch` (keeps the best accuracy in `$prefix/best_accuracy`) | `torchkiln.plugins` |
| configs | `$pkg::${pkg}_digits.yaml` | `torchkiln.configs` |

Check what torchkiln sees: `torchkiln plugins`. Train the bundled config:

```
torchkiln train $$(python -c "import $pkg, os; print(os.path.join(os.path.dirname($pkg.__file__), 'configs', '${pkg}_digits.yaml'))") --work-dir work_dirs/$prefix
```

or use it as a base in your own config: `_base_: $pkg::${pkg}_digits.yaml`.

## Tests

```
pip install -e '.[test]'
pytest
```

The tests use the fixtures of `torchkiln.testing` (`kiln_run`, `kiln_config`), which
installing torchkiln registers with pytest.
"""

_INIT = '''\
"""$dist: a torchkiln plugin (a model, a metric, a hook, a hook plugin and a config)."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
'''

_MODELS = '''\
"""``${Prefix}MLP``: a small multi-layer perceptron classifier."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchkiln.model import BaseModel

__all__ = ["${Prefix}MLP"]


class ${Prefix}MLP(BaseModel):
    """A classifier ``Linear -> ReLU -> ... -> Linear`` over flattened inputs.

    :param in_features: input features after flattening (64 for 8x8 digits).
    :param num_classes: number of classes.
    :param hidden: widths of the hidden layers.
    :param data_preprocessor: see :class:`torchkiln.model.BaseModel`.
    :param init_cfg: see :class:`torchkiln.model.BaseModule`.
    """

    def __init__(
        self,
        in_features: int = 64,
        num_classes: int = 10,
        hidden: Sequence[int] = (32,),
        data_preprocessor: Mapping[str, Any] | nn.Module | None = None,
        init_cfg: Mapping[str, Any] | list[Mapping[str, Any]] | None = None,
    ) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        layers: list[nn.Module] = []
        width = in_features
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(
        self, inputs: torch.Tensor, labels: torch.Tensor | None = None, mode: str = "tensor"
    ) -> Any:
        """``'tensor'``: logits; ``'loss'``: ``{'loss': cross entropy}``; ``'predict'``: one
        dict per sample (``pred_label``, and ``gt_label`` when labels are given).

        :param inputs: ``(N, ...)`` inputs, flattened to ``(N, in_features)``.
        :param labels: ``(N,)`` class indices (needed for ``'loss'``).
        :param mode: ``'tensor'``, ``'loss'`` or ``'predict'``.
        """
        logits = self.net(inputs.reshape(inputs.shape[0], -1).float())
        if mode == "tensor":
            return logits
        if mode == "loss":
            if labels is None:
                raise ValueError("${Prefix}MLP.forward(mode='loss') needs labels")
            return {"loss": F.cross_entropy(logits, labels.long())}
        if mode == "predict":
            preds = logits.argmax(dim=-1)
            out = []
            for i in range(logits.shape[0]):
                sample: dict[str, Any] = {"pred_label": int(preds[i])}
                if labels is not None:
                    sample["gt_label"] = int(labels[i])
                out.append(sample)
            return out
        raise ValueError(f"unknown mode {mode!r}; use 'tensor', 'loss' or 'predict'")
'''

_METRICS = '''\
"""``${Prefix}Accuracy``: top-1 accuracy in percent."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torchkiln.evaluation import BaseMetric

__all__ = ["${Prefix}Accuracy"]


class ${Prefix}Accuracy(BaseMetric):
    """Percentage of samples whose ``pred_label`` equals their ``gt_label``, reported as
    ``$prefix/accuracy``. ``data_samples`` is what ``${Prefix}MLP`` returns in ``'predict'``
    mode."""

    default_prefix = "$prefix"

    def process(self, data_batch: Any, data_samples: Sequence[dict[str, Any]]) -> None:
        """Record, per sample, whether the prediction was right."""
        for sample in data_samples:
            self.results.append(int(sample["pred_label"]) == int(sample["gt_label"]))

    def compute_metrics(self, results: list[bool]) -> dict[str, float]:
        """``{'accuracy': percent correct}`` (0.0 for no samples)."""
        if not results:
            return {"accuracy": 0.0}
        return {"accuracy": 100.0 * sum(results) / len(results)}
'''

_HOOKS = '''\
"""``${Prefix}IterCounterHook``: counts training iterations in the message hub."""

from __future__ import annotations

from typing import Any

from torchkiln.hooks import Hook

__all__ = ["${Prefix}IterCounterHook"]


class ${Prefix}IterCounterHook(Hook):
    """Count the training iterations of a run under ``key`` in ``runner.message_hub``.

    Use it from a config: ``custom_hooks: [{type: ${Prefix}IterCounterHook}]``.

    :param key: the message-hub info key.
    """

    priority = "LOW"

    def __init__(self, key: str = "$prefix/train_iters") -> None:
        self.key = key

    def before_train(self, runner: Any) -> None:
        """Start counting at zero."""
        runner.message_hub.update_info(self.key, 0)

    def after_train_iter(
        self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None
    ) -> None:
        """Count one more iteration."""
        done = int(runner.message_hub.get_info(self.key, 0) or 0)
        runner.message_hub.update_info(self.key, done + 1)
'''

_PLUGIN = '''\
"""``${pkg}_watch``: a hook plugin made of module-level functions.

Registered at every run start through the ``torchkiln.plugins`` entry point; each function
named after a mount point (see ``torchkiln.hookspecs``) runs there, with the runner first.
Keep this module light: it is imported by every run, so import heavy libraries inside
functions. This one keeps the best ``$prefix/accuracy`` seen in validation in the message
hub (``$prefix/best_accuracy``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["after_val_epoch", "before_run"]

BEST_KEY = "$prefix/best_accuracy"


def before_run(runner: Any) -> None:
    """Forget the best accuracy of an earlier run."""
    runner.message_hub.update_info(BEST_KEY, None)


def after_val_epoch(runner: Any, metrics: Mapping[str, Any] | None = None) -> None:
    """Keep the best validation accuracy and log it at debug level."""
    if not metrics or "$prefix/accuracy" not in metrics:
        return
    best = runner.message_hub.get_info(BEST_KEY)
    accuracy = float(metrics["$prefix/accuracy"])
    if best is None or accuracy > best:
        runner.message_hub.update_info(BEST_KEY, accuracy)
        runner.logger.debug(f"${pkg}_watch: best $prefix/accuracy {accuracy:.2f}")
'''

_CONFIG = """\
# ${Prefix}MLP on the 8x8 digits bundled with torchkiln, scored by ${Prefix}Accuracy, with
# ${Prefix}IterCounterHook. Use it as a base: `_base_: $pkg::${pkg}_digits.yaml`.
model: {type: ${Prefix}MLP, in_features: 64, num_classes: 10, hidden: [32]}
train_dataloader:
  batch_size: 32
  num_workers: 0
  dataset: {type: DigitsDataset, split: train}
  sampler: {type: InfiniteSampler, shuffle: true}
val_dataloader:
  batch_size: 256
  num_workers: 0
  dataset: {type: DigitsDataset, split: val}
  sampler: {type: DefaultSampler, shuffle: false}
val_cfg: {}
val_evaluator: {type: ${Prefix}Accuracy}
train_cfg: {by_epoch: false, max_iters: 200, val_interval: 100}
optim_wrapper:
  optimizer: {type: SGD, lr: 0.1, momentum: 0.9}
custom_hooks:
  - {type: ${Prefix}IterCounterHook}
randomness: {seed: 0}
"""

_TEST = '''\
"""Tests of $dist with the fixtures of ``torchkiln.testing`` (``kiln_run``, ``kiln_config``)."""

from __future__ import annotations

from torchkiln.config.loader import load

FRAGMENT = {
    "model": {"type": "${Prefix}MLP", "hidden": [16]},
    "val_evaluator": {"type": "${Prefix}Accuracy"},
    "custom_hooks": [{"type": "${Prefix}IterCounterHook"}],
}


def test_components_train_validate_and_count(kiln_run):
    result = kiln_run(FRAGMENT)
    assert result.exit_code == 0, result.error
    assert result.train_steps() == [2, 4, 6, 8]
    val = [r for r in result.scalars if r.get("mode") == "val" and "$prefix/accuracy" in r]
    assert val, result.scalars
    assert 0.0 <= val[-1]["$prefix/accuracy"] <= 100.0
    assert result.runner.message_hub.get_info("$prefix/train_iters") == 8
    assert "after_train_iter" in result.calls["${Prefix}IterCounterHook"]


def test_hook_plugin_keeps_the_best_accuracy(kiln_run):
    result = kiln_run(FRAGMENT)
    assert result.exit_code == 0, result.error
    assert result.calls["${pkg}_watch"] == ["before_run", "after_val_epoch"]
    best = result.runner.message_hub.get_info("$prefix/best_accuracy")
    val = [r["$prefix/accuracy"] for r in result.scalars if "$prefix/accuracy" in r]
    assert best == max(val)


def test_packaged_config_is_a_base(kiln_run, kiln_config, tmp_path):
    child = tmp_path / "child.yaml"
    child.write_text("_base_: $pkg::${pkg}_digits.yaml\\n")
    cfg = load(child).to_dict()
    assert cfg["model"]["type"] == "${Prefix}MLP"
    cfg["train_cfg"] = kiln_config["train_cfg"]  # the kit's short schedule
    result = kiln_run(cfg)
    assert result.exit_code == 0, result.error
    assert result.runner.message_hub.get_info("$prefix/train_iters") == 8
'''

#: Relative path (``{pkg}`` replaced by the package name) -> template text.
TEMPLATES: dict[str, str] = {
    "pyproject.toml": _PYPROJECT,
    "README.md": _README,
    "{pkg}/__init__.py": _INIT,
    "{pkg}/models.py": _MODELS,
    "{pkg}/metrics.py": _METRICS,
    "{pkg}/hooks.py": _HOOKS,
    "{pkg}/plugin.py": _PLUGIN,
    "{pkg}/configs/{pkg}_digits.yaml": _CONFIG,
    "tests/test_{pkg}.py": _TEST,
}
