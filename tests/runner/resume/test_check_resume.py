"""``torchkiln check-resume``: identical for the quickstart configs, exit 4 when resume is inexact."""

from __future__ import annotations

from pathlib import Path

import pytest

from torchkiln.errors import UsageError
from torchkiln.runner.check_resume import compare_states, main

CONFIGS = Path(__file__).resolve().parents[3] / "configs"


@pytest.mark.parametrize("name", ["quickstart.yaml", "quickstart_iter.yaml"])
def test_quickstart_configs_resume_exactly(name, capsys, tmp_path):
    code = main(str(CONFIGS / name), iters=20, work_dir=str(tmp_path))
    out = capsys.readouterr().out
    assert code == 0, out
    assert "model weights:       identical (6 tensors" in out
    assert "optimizer state:     identical" in out
    assert "result: resume is exact" in out
    assert (tmp_path / "resumed" / "iter_20.pth").is_file()  # the kept work folders


def test_inexact_resume_exits_4_naming_the_first_difference(capsys):
    from torchkiln.cli import main as cli

    # A hook whose own state is lost on resume: it halves the weights at its 5th call.
    code = cli(["check-resume", str(CONFIGS / "quickstart_iter.yaml"), "--iters", "8", "--cfg-options",
                "+custom_imports={imports: [resume_support]}", "+custom_hooks=[{type: ForgetfulHook}]"])
    out = capsys.readouterr().out
    assert code == 4
    assert "model weights:       DIFFERENT: 6 of 6 tensors differ; first: backbone.0.weight (max abs diff" in out
    assert "result: resume is NOT exact" in out


def test_compare_states():
    import torch

    a = {"w": torch.ones(2), "b": torch.zeros(1)}
    assert compare_states(a, {"w": torch.ones(2), "b": torch.zeros(1)}) == (2, 0, None, 0.0)
    assert compare_states(a, {"w": torch.tensor([1.0, 1.5]), "b": torch.zeros(1)}) == (2, 1, "w", 0.5)
    total, differing, first, diff = compare_states(a, {"w": torch.ones(2)})
    assert (total, differing, first) == (2, 1, "b") and diff == float("inf")


def test_iters_must_be_positive():
    with pytest.raises(UsageError, match="--iters must be at least 1"):
        main(str(CONFIGS / "quickstart.yaml"), iters=0)
