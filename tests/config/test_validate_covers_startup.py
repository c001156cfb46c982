"""`torchkiln config validate` finds every error that would stop `torchkiln train` at start-up.

Each case is a config that start-up (``Runner.from_cfg``) rejects with a ConfigError; the
test proves that validation reports the same problem, at the same key, before anything is
built.
"""

from __future__ import annotations

import textwrap

import pytest

from torchkiln import Runner
from torchkiln.config import load, validate
from torchkiln.errors import ConfigError

_TRAIN = """
model: {type: DigitsMLP}
train_dataloader: {batch_size: 4, dataset: {type: DigitsDataset, split: train}}
train_cfg: {by_epoch: true, max_epochs: 1}
optim_wrapper: {optimizer: {type: SGD, lr: 0.1}}
"""

CASES = {
    "plain torch module as model": ("model: {type: torch.nn.Linear, in_features: 64, out_features: 10}", "model.type"),
    "unknown model type": ("model: {type: DigitsMPL}", "model.type"),
    "unknown visualizer type": (_TRAIN + "visualizer: {type: NopeVisualizer}", "visualizer.type"),
    "unknown vis backend": (_TRAIN + "visualizer: {vis_backends: [{type: NopeBackend}]}", "visualizer.vis_backends.0.type"),
    "unknown launcher": (_TRAIN + "launcher: mpirun", "launcher"),
    "incomplete train set": ("model: {type: DigitsMLP}\ntrain_cfg: {by_epoch: true, max_epochs: 1}", "train_cfg"),
    "loop type and by_epoch": (
        _TRAIN.replace("{by_epoch: true, max_epochs: 1}", "{type: EpochBasedTrainLoop, by_epoch: true, max_epochs: 1}"),
        "train_cfg.type",
    ),
    "bad load_from key": (_TRAIN + "load_from: {path: w.pth, stric: true}", "load_from.stric"),
    "unknown hook type": (_TRAIN + "custom_hooks: [{type: NopeHook}]", "custom_hooks.0.type"),
    "misspelled default hook": (_TRAIN + "default_hooks: {chekpoint: {type: CheckpointHook}}", "default_hooks.chekpoint"),
    "failing custom import": (_TRAIN + "custom_imports: {imports: [no_such_module_xyz]}", "custom_imports"),
    "unknown optimizer": (_TRAIN.replace("type: SGD", "type: SGDD"), "optim_wrapper.optimizer.type"),
    "unknown dataset argument": (_TRAIN.replace("split: train", "split: train, colour: red"), "train_dataloader.dataset"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_validate_reports_what_start_up_rejects(tmp_path, case):
    text, key = CASES[case]
    path = tmp_path / "cfg.yaml"
    path.write_text(textwrap.dedent(text) + f"\nwork_dir: {tmp_path / 'work'}\n")

    with pytest.raises(ConfigError):  # start-up rejects it...
        runner = Runner.from_cfg(load(str(path)))
        runner.train()

    errors = validate(load(str(path)))  # ...and validation says so first, at the same key
    assert errors, case
    assert any(key in str(e) for e in errors), [str(e) for e in errors]


def test_a_default_scope_naming_nothing_installed_is_a_warning():
    from torchkiln.config.report import ConfigWarning

    with pytest.warns(ConfigWarning, match="default_scope 'mmdett' names no installed package") as caught:
        assert validate({"model": {"type": "DigitsMLP"}, "default_scope": "mmdett"}) == []
    assert "installed: torchkiln" in str(caught[0].message)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert validate({"model": {"type": "DigitsMLP"}, "default_scope": "torchkiln"}) == []
