"""Errors raised in user or plugin code are reported as such (exit 5), not as torchkiln bugs."""

from __future__ import annotations

import functools
import textwrap

import pytest

from torchkiln.cli import main
from torchkiln.errors import EXIT_INTERNAL, EXIT_USER_CODE

USER_MODULE = '''
import torch
from torchkiln import BaseModel
from torchkiln.registry import DATASETS, MODELS


@DATASETS.register_module()
class ImagesOnDisk(torch.utils.data.Dataset):
    def __init__(self, missing_at=-1):
        self.missing_at = missing_at

    def __len__(self):
        return 8

    def __getitem__(self, index):
        if index == self.missing_at:
            raise FileNotFoundError(f"no such image: img_{index}.png")
        return {"inputs": torch.ones(4) * index, "labels": torch.tensor(index % 2)}


@MODELS.register_module()
class PickyNet(BaseModel):
    def __init__(self, max_label=9):
        super().__init__()
        self.max_label = max_label
        self.fc = torch.nn.Linear(4, 2)

    def forward(self, inputs, labels=None, mode="tensor"):
        if labels is not None and int(labels.max()) > self.max_label:
            raise ValueError(f"label {int(labels.max())} out of range")
        logits = self.fc(inputs)
        if mode == "loss":
            return {"loss": torch.nn.functional.cross_entropy(logits, labels)}
        return logits
'''


def _config(tmp_path, *, missing_at=-1, max_label=9, workers=0):
    (tmp_path / "userdata.py").write_text(textwrap.dedent(USER_MODULE))
    cfg = tmp_path / "run.yaml"
    cfg.write_text(textwrap.dedent(f"""
        custom_imports: {{imports: [userdata]}}
        model: {{type: PickyNet, max_label: {max_label}}}
        work_dir: {tmp_path / 'work'}
        train_dataloader:
          batch_size: 2
          num_workers: {workers}
          dataset: {{type: ImagesOnDisk, missing_at: {missing_at}}}
          sampler: {{type: DefaultSampler, shuffle: false}}
          collate_fn: {{type: default_collate}}
        train_cfg: {{by_epoch: true, max_epochs: 1}}
        optim_wrapper: {{optimizer: {{type: SGD, lr: 0.1}}}}
        default_hooks: {{checkpoint: null, progress_bar: null}}
    """))
    return str(cfg)


@pytest.fixture
def user_path(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("TORCHKILN_DISABLE_PLUGIN_AUTOLOAD", "1")
    return tmp_path


@pytest.mark.parametrize("workers", [0, 1])
def test_a_datasets_error_names_the_users_frame(user_path, capsys, workers):
    code = main(["train", _config(user_path, missing_at=3, workers=workers)])
    err = capsys.readouterr().err
    assert code == EXIT_USER_CODE, err
    assert "error in user code: FileNotFoundError: no such image: img_3.png" in err
    assert "userdata.py:" in err and "__getitem__" in err
    assert 'raise FileNotFoundError(f"no such image: img_{index}.png")' in err
    assert "internal error" not in err and "Traceback" not in err


def test_an_error_in_the_users_forward_names_the_model(user_path, capsys):
    code = main(["train", _config(user_path, max_label=0)])
    err = capsys.readouterr().err
    assert code == EXIT_USER_CODE, err
    assert "ValueError: label 1 out of range" in err
    assert "in PickyNet.forward" in err


def test_debug_adds_the_traceback(user_path, capsys):
    code = main(["train", _config(user_path, max_label=0), "--debug"])
    err = capsys.readouterr().err
    assert code == EXIT_USER_CODE and "Traceback" in err


def test_an_error_in_torchkiln_itself_is_still_internal(user_path, capsys, monkeypatch):
    from torchkiln.errors import did_you_mean

    # A torchkiln function called wrongly: difflib raises, torchkiln's frame decides.
    monkeypatch.setattr("torchkiln.runner.train_loops.check_train_outputs", functools.partial(did_you_mean, None))
    code = main(["train", _config(user_path)])
    err = capsys.readouterr().err
    assert code == EXIT_INTERNAL
    assert "internal error: TypeError" in err and "Traceback" in err
