"""When one rank of ``torchkiln train --nproc 2`` dies, the report names it first.

Real 2-process gloo jobs on the demo MLP: rank 1 kills itself with SIGKILL, or its model
raises; rank 0 then fails in a collective. The report's first line must name rank 1 and its
cause, rank 0's error must appear as a consequence (not as an internal error), and the job's
exit code must be rank 1's.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from torchkiln.cli import main
from torchkiln.errors import EXIT_USER_CODE

HERE = Path(__file__).resolve().parent
pytestmark = pytest.mark.dist

CONFIG = """
model: {type: DigitsMLP, hidden: [16]}
train_dataloader:
  batch_size: 8
  num_workers: 0
  dataset: {type: DigitsDataset, split: train}
  sampler: {type: InfiniteSampler, shuffle: true}
train_cfg: {by_epoch: false, max_iters: 1000}
optim_wrapper: {optimizer: {type: SGD, lr: 0.01}}
default_hooks: {logger: null, checkpoint: null}
"""


def _train(tmp_path: Path, monkeypatch, capfd, *options: str) -> tuple[int, str]:
    """``torchkiln train cfg.yaml --nproc 2`` from this process (its torch is already imported):
    the exit code, and everything the launcher and the workers wrote to stderr."""
    config = tmp_path / "cfg.yaml"
    config.write_text(CONFIG)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    monkeypatch.syspath_prepend(str(HERE))  # the launcher checks the config before it starts workers
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("TORCHKILN_DISABLE_PLUGIN_AUTOLOAD", "1")  # no tracker plugins to import
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID"):
        monkeypatch.delenv(name, raising=False)
    code = main(["train", str(config), "--work-dir", str(tmp_path / "work"), "--nproc", "2", "--cfg-options", *options])
    return code, capfd.readouterr().err


def _report(stderr: str) -> list[str]:
    """The launcher's report: from its first ``error: rank N (local rank N)`` line on."""
    lines = stderr.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("error: rank ") and "(local rank" in line)
    return lines[start:]


def test_a_rank_killed_by_a_signal_is_named_first(tmp_path, monkeypatch, capfd):
    code, err = _train(tmp_path, monkeypatch, capfd, "+custom_hooks=[{type: _failing_parts.KillSelf, rank: 1, at: 3}]")
    report = _report(err)
    assert report[0].startswith("error: rank 1 (local rank 1) was killed by SIGKILL"), err[-3000:]
    assert code == 128 + signal.SIGKILL
    # Rank 0's broken collective is told as what followed, not as an error of its own.
    assert any(line.startswith("  then rank 0 (local rank 0) stopped") for line in report[1:]), report
    assert "internal error" not in err
    assert "error: rank 0 stopped: a collective operation failed because another rank left" in err


def test_a_rank_raising_in_user_code_is_named_first_with_its_exit_code(tmp_path, monkeypatch, capfd):
    code, err = _train(tmp_path, monkeypatch, capfd, "model.type=_failing_parts.RaisingMLP", "+model.fail_rank=1",
                       "+model.fail_at=3")
    report = _report(err)
    assert report[0] == (
        f"error: rank 1 (local rank 1) failed with exit code {EXIT_USER_CODE}: "
        "ValueError: label table missing on rank 1"
    ), err[-3000:]
    assert code == EXIT_USER_CODE
    assert all("rank 0" not in line or "stopped" in line for line in report[1:]), report
    assert "internal error" not in err
