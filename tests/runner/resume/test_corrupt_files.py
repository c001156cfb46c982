"""Unreadable checkpoints get one clear error naming the file: exit 2 from the CLI, no traceback."""

from __future__ import annotations

import os
import pickle

import pytest
import torch
from resume_helpers import write_yaml
from resume_support import config

from torchkiln.cli import main as cli
from torchkiln.runner import CheckpointError, load_checkpoint_file


class Unsafe:
    """Stands for any object a weights-only load refuses."""

    def __reduce__(self):
        return (os.system, ("echo this must never run",))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corrupt")
    good = {"meta": {"epoch": 1}, "state_dict": {"w": torch.ones(3)}}
    torch.save(good, folder / "good.pth")
    data = (folder / "good.pth").read_bytes()
    (folder / "truncated.pth").write_bytes(data[: len(data) // 2])
    (folder / "empty.pth").write_bytes(b"")
    (folder / "random.pth").write_bytes(bytes(range(256)) * 8)
    (folder / "plain_pickle.pth").write_bytes(pickle.dumps({"state_dict": [1, 2, 3]}, protocol=2))
    torch.save([1, 2, 3], folder / "a_list.pth")
    torch.save({"state_dict": {"w": torch.ones(1)}, "hook": Unsafe()}, folder / "unsafe.pth")
    torch.save({"w": torch.ones(1)}, folder / "bare_state_dict.pth")
    return folder


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("truncated.pth", "is truncated or corrupt"),
        ("empty.pth", "is not a checkpoint: it is not a torch.save file"),
        ("random.pth", "is not a checkpoint: it is not a torch.save file"),
        ("plain_pickle.pth", "is not a checkpoint: it is a pickle that torch.load cannot read safely"),
        ("a_list.pth", "is not a checkpoint: it holds a list, expected a dict"),
        ("unsafe.pth", "holds an object of type posix.system, which cannot be loaded safely"),
        ("missing.pth", "checkpoint file not found"),
    ],
)
def test_clear_error_naming_the_file(files, name, message):
    with pytest.raises(CheckpointError, match=message) as info:
        load_checkpoint_file(str(files / name))
    assert str(files / name) in str(info.value)
    assert info.value.exit_code == 2


def test_good_file_loads(files):
    assert load_checkpoint_file(str(files / "good.pth"))["meta"] == {"epoch": 1}


@pytest.fixture(scope="module")
def cfg_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cfg")
    return write_yaml(folder / "tiny.yaml", config(str(folder / "work"), max_iters=2, interval=-1, progress=False))


@pytest.mark.parametrize(
    ("args", "name", "message"),
    [
        (("train", "--resume"), "truncated.pth", "is truncated or corrupt"),
        (("train", "--resume"), "unsafe.pth", "cannot be loaded safely"),
        (("train", "--resume"), "bare_state_dict.pth", "is not a training checkpoint"),
        (("val", "--checkpoint"), "random.pth", "is not a checkpoint"),
    ],
)
def test_cli_exit_code_2_without_traceback(files, cfg_file, tmp_path, capsys, args, name, message):
    command, option = args
    code = cli([command, str(cfg_file), "--work-dir", str(tmp_path), option, str(files / name)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ")
    assert message in err and str(files / name) in err
    assert "Traceback" not in err
