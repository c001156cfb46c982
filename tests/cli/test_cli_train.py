"""``torchkiln train|val|test`` end to end on the quickstart, through the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = str(REPO / "configs" / "quickstart.yaml")


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", TORCHKILN_DISABLE_PLUGIN_AUTOLOAD="1")
    return subprocess.run(
        [sys.executable, "-m", "torchkiln", *args], capture_output=True, text=True, env=env, cwd=cwd or REPO, timeout=600
    )


def scalars(work_dir: Path) -> list[dict]:
    (log_dir,) = [p for p in work_dir.iterdir() if p.is_dir()]
    return [json.loads(line) for line in (log_dir / "scalars.jsonl").read_text().splitlines()]


def test_dry_run_runs_one_train_and_one_val_iteration(tmp_path):
    out = run_cli("train", QUICKSTART, "--work-dir", str(tmp_path), "--dry-run")
    assert out.returncode == 0, out.stderr
    assert not list(tmp_path.glob("*.pth"))
    records = scalars(tmp_path)
    assert [r["mode"] for r in records] == ["train", "val"]
    assert records[0]["step"] == 1


def test_train_then_test_then_resume(tmp_path):
    out = run_cli("train", QUICKSTART, "--work-dir", str(tmp_path), "--cfg-options", "train_cfg.max_epochs=2",
                  "default_hooks.checkpoint.interval=1")
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "epoch_2.pth").is_file()
    assert (tmp_path / "last_checkpoint").read_text().strip().endswith("epoch_2.pth")
    dumped = (tmp_path / "quickstart.yaml").read_text()
    assert "max_epochs: 2" in dumped

    test = run_cli("test", QUICKSTART, "--work-dir", str(tmp_path / "test"), "--checkpoint", str(tmp_path / "epoch_2.pth"))
    assert test.returncode == 0, test.stderr
    assert "accuracy/top1" in test.stdout + test.stderr

    resumed = run_cli("train", QUICKSTART, "--work-dir", str(tmp_path), "--resume", "--cfg-options",
                      "train_cfg.max_epochs=3", "default_hooks.checkpoint.interval=1")
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from" in resumed.stdout + resumed.stderr
    ckpt = torch.load(tmp_path / "epoch_3.pth", weights_only=True)
    assert ckpt["meta"]["epoch"] == 3
    assert ckpt["meta"]["iter"] == 3 * 45


def test_amp_flag_uses_the_amp_wrapper(tmp_path):
    out = run_cli("train", QUICKSTART, "--work-dir", str(tmp_path), "--amp", "--cfg-options", "train_cfg.max_epochs=1")
    assert out.returncode == 0, out.stderr
    assert "type: AmpOptimWrapper" in (tmp_path / "quickstart.yaml").read_text()
    assert (tmp_path / "epoch_1.pth").is_file()


def test_evaluation_needs_a_checkpoint(tmp_path):
    out = run_cli("val", QUICKSTART, "--work-dir", str(tmp_path))
    assert out.returncode == 2
    assert "--checkpoint" in out.stderr
    assert "Traceback" not in out.stderr


def test_unreadable_checkpoint_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    out = run_cli("test", QUICKSTART, "--work-dir", str(tmp_path / "w"), "--checkpoint", str(bad))
    assert out.returncode == 2
    assert "bad.pth" in out.stderr and "corrupt" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.slow
def test_quickstart_reaches_95_percent(tmp_path):
    """The full quickstart, in process: the README's promise of >= 95% validation accuracy."""
    from torchkiln import Config, Runner

    cfg = Config.fromfile(QUICKSTART)
    cfg["work_dir"] = str(tmp_path)
    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics = runner.val()
    assert metrics["accuracy/top1"] >= 95.0, metrics
