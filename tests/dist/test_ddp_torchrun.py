"""The quickstart under torchrun, started both ways: ``torchkiln train --nproc 2`` and
``python -m torch.distributed.run ... -m torchkiln train ... --launcher pytorch``.

- 2 ranks x batch 16 end with the weights and metrics of 1 process x batch 32;
- resuming from the 2-rank run's mid-way checkpoint ends with the uninterrupted run's weights;
- a rank that raises ends the whole job promptly, with its error shown.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
CONFIG = str(ROOT / "configs" / "quickstart_iter.yaml")
pytestmark = pytest.mark.dist

# 8 iterations, validation (and a checkpoint) every 4; no augmentation or dropout, so the
# only randomness is the sampler's order, which 2 ranks split exactly like 1 process sees it.
OPTIONS = [
    "train_cfg.max_iters=8",
    "train_cfg.val_interval=4",
    "train_dataloader.dataset.augment=false",
    "model.dropout=0.0",
    "val_dataloader.batch_size=64",  # 359 samples: 180 per rank, last batches uneven
    "default_hooks.logger.interval=4",
    "default_hooks.checkpoint.interval=4",
    "default_hooks.checkpoint.max_keep_ckpts=-1",
    "+custom_hooks=[{type: _ddp_probe.ProbeHook}]",
]
TIMEOUT = 240


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["OMP_NUM_THREADS"] = "1"
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID"):
        env.pop(name, None)
    return env


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=TIMEOUT)


def _probe(work_dir: Path, rank: int) -> dict:
    return torch.load(work_dir / f"probe_rank{rank}.pt", map_location="cpu", weights_only=True)


def _single_process(work_dir: str) -> None:
    sys.path.insert(0, str(HERE))
    torch.set_num_threads(1)
    from torchkiln.config.loader import load
    from torchkiln.runner.runner import Runner

    cfg = load(CONFIG, [*OPTIONS, "train_dataloader.batch_size=32"])
    cfg["work_dir"] = work_dir
    Runner.from_cfg(cfg).train()


@pytest.fixture(scope="module")
def single(tmp_path_factory) -> dict:
    """1 process, batch 32 (forked from the test process: torch is already imported)."""
    work_dir = tmp_path_factory.mktemp("single")
    proc = multiprocessing.get_context("fork").Process(target=_single_process, args=(str(work_dir),))
    proc.start()
    proc.join(TIMEOUT)
    assert proc.exitcode == 0
    return _probe(work_dir, 0)


@pytest.fixture(scope="module")
def nproc_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """2 ranks x batch 16 through ``torchkiln train --nproc 2``."""
    work_dir = tmp_path_factory.mktemp("nproc")
    cmd = [sys.executable, "-m", "torchkiln", "train", CONFIG, "--work-dir", str(work_dir), "--nproc", "2",
           "--cfg-options", *OPTIONS, "train_dataloader.batch_size=16"]
    return work_dir, _run(cmd)


def test_nproc_run_succeeds_on_two_ranks(nproc_run):
    work_dir, proc = nproc_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    for rank in (0, 1):
        probe = _probe(work_dir, rank)
        assert (probe["rank"], probe["world_size"]) == (rank, 2)
        assert probe["model_type"] == "KilnDistributedDataParallel"
        assert probe["iter"] == 8
    # Checkpoints are written once, by rank 0, at iterations 4 and 8.
    assert sorted(p.name for p in work_dir.glob("iter_*.pth")) == ["iter_4.pth", "iter_8.pth"]


def test_ranks_end_identical_and_match_one_process_on_the_global_batch(nproc_run, single):
    work_dir, _ = nproc_run
    r0, r1 = _probe(work_dir, 0), _probe(work_dir, 1)
    for key, value in r0["state_dict"].items():
        assert torch.equal(value, r1["state_dict"][key]), key
        torch.testing.assert_close(value, single["state_dict"][key], atol=2e-5, rtol=1e-4, msg=key)
    assert single["iter"] == 8


def test_metrics_are_gathered_over_ranks_like_one_process(nproc_run, single):
    work_dir, _ = nproc_run
    r0, r1 = _probe(work_dir, 0), _probe(work_dir, 1)
    assert len(r0["metrics"]) == len(single["metrics"]) == 2
    assert r0["metrics"] == r1["metrics"]  # every rank gets the same gathered metrics
    for ddp, one in zip(r0["metrics"], single["metrics"]):
        # 359 samples, padding dropped: accuracy is a multiple of 100/359 and equals one process's.
        assert ddp["accuracy/top1"] == pytest.approx(one["accuracy/top1"])
        assert ddp["accuracy/top5"] == pytest.approx(one["accuracy/top5"])
        assert round(ddp["accuracy/top1"] * 359 / 100, 6) == round(ddp["accuracy/top1"] * 359 / 100)
        assert ddp["loss"] == pytest.approx(one["loss"], rel=1e-5)  # the repeated sample left out


def test_torchrun_resume_ends_with_the_uninterrupted_weights(nproc_run, tmp_path):
    work_dir, first = nproc_run
    assert first.returncode == 0
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--standalone",
           "-m", "torchkiln", "train", CONFIG, "--work-dir", str(tmp_path), "--launcher", "pytorch",
           "--resume", str(work_dir / "iter_4.pth"), "--cfg-options", *OPTIONS, "train_dataloader.batch_size=16"]
    proc = _run(cmd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    full = _probe(work_dir, 0)
    for rank in (0, 1):
        resumed = _probe(tmp_path, rank)
        assert resumed["first_iter"] == 4 and resumed["iter"] == 8
        for key, value in full["state_dict"].items():
            assert torch.equal(resumed["state_dict"][key], value), key
    r0, r1 = _probe(tmp_path, 0), _probe(tmp_path, 1)
    for key, value in r0["state_dict"].items():
        assert torch.equal(value, r1["state_dict"][key]), key


def test_a_failing_rank_ends_the_job_with_its_error(tmp_path):
    options = [o for o in OPTIONS if not o.startswith("+custom_hooks")]
    cmd = [sys.executable, "-m", "torchkiln", "train", CONFIG, "--work-dir", str(tmp_path), "--nproc", "2",
           "--cfg-options", *options, "+custom_hooks=[{type: _ddp_probe.ProbeHook, fail_rank: 1, fail_iter: 2}]"]
    start = time.monotonic()
    proc = _run(cmd)
    elapsed = time.monotonic() - start
    tail = proc.stderr[-3000:]
    assert proc.returncode != 0, tail
    assert "probe failure on rank 1 at iteration 2" in proc.stderr, tail
    assert "error: rank 1 (local rank 1) failed" in proc.stderr, tail
    assert elapsed < 120  # the surviving rank is stopped, not left waiting in a collective
