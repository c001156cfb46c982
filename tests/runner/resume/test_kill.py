"""SIGKILL a training process at random moments (one of them inside a checkpoint write) and
resume each time: the run completes, no checkpoint is ever corrupt, ``last_checkpoint``
always points to a loadable file, at most one checkpoint interval of work is lost per kill,
and the final weights are bit-identical to an uninterrupted run.

Checkpoints are written synchronously and, in a second run, in the background.
``TORCHKILN_KILL_ROUNDS=N`` runs N kills instead of 3 (e.g. 30 for a soak test),
``TORCHKILN_KILL_SEED`` picks other random moments.
"""

from __future__ import annotations

import os
import random
import signal
from pathlib import Path

import pytest
import torch
from resume_helpers import (
    assert_bit_identical,
    fork_training,
    progress,
    progress_lines,
    train,
    wait_until,
    weights,
    write_yaml,
)
from resume_support import config

from torchkiln.runner import load_checkpoint_file

INTERVAL = 4
MAX_ITERS = 48


def _check_folder(work: Path) -> int:
    """Every checkpoint loads; the pointer names a loadable file; return its iteration (0: none)."""
    for path in work.glob("*.pth"):
        ckpt = load_checkpoint_file(str(path))
        assert ckpt["meta"]["iter"] == int(path.stem.split("_")[1]), path
    pointer = work / "last_checkpoint"
    if not pointer.exists():
        return 0
    target = pointer.read_text()
    return int(load_checkpoint_file(target)["meta"]["iter"])


@pytest.mark.parametrize("async_save", [False, True], ids=["sync", "async"])
def test_kill_and_resume_until_done(tmp_path, async_save):
    rounds = int(os.environ.get("TORCHKILN_KILL_ROUNDS", "3"))
    rng = random.Random(int(os.environ.get("TORCHKILN_KILL_SEED", "0")))
    work = tmp_path / "work"
    cfg = config(str(work), by_epoch=False, max_iters=MAX_ITERS, interval=INTERVAL, val_interval=16)
    cfg["default_hooks"]["checkpoint"] = dict(cfg["default_hooks"]["checkpoint"], async_save=async_save)
    cfg_file = write_yaml(tmp_path / "run.yaml", cfg)
    marks = tmp_path / "progress.txt"
    marker = tmp_path / "writing.txt"
    kills = 0
    resumed_from = 0
    while True:
        args = ("--resume",) if kills else ()
        in_write = kills < rounds and kills % 3 == 1
        env = {"RESUME_TEST_PROGRESS": str(marks), "RESUME_TEST_SLEEP_S": "0.02" if kills < rounds else "0"}
        if in_write:  # every fsync marks the moment and takes a while
            env.update(RESUME_TEST_SLOW_FSYNC_S="0.05", RESUME_TEST_WRITE_MARKER=str(marker))
            marker.unlink(missing_ok=True)
        # A forked child runs the CLI (torch is already imported here: it starts at once).
        proc = fork_training(cfg_file, work, env, *args)
        if kills < rounds:
            if in_write:  # inside an atomic write: after its data, before its rename
                wait_until(marker.exists, proc)
            else:  # after a random number of iterations of this run (0: while it starts)
                before = len(progress_lines(marks))
                target = rng.randint(resumed_from, MAX_ITERS - 2)
                wait_until(lambda t=target: t == resumed_from or (len(progress_lines(marks)) > before and progress(marks) >= t), proc)
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.communicate()
                assert proc.returncode == -signal.SIGKILL
                kills += 1
                done = progress(marks)
                pointed = _check_folder(work)
                # Work lost: iterations done but not in the checkpoint resumed from next (with
                # background writes, the one still being written may be lost too).
                assert done - pointed <= INTERVAL * (2 if async_save else 1), (done, pointed)
                assert pointed >= resumed_from
                resumed_from = pointed
                continue
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        break
    assert kills == rounds
    assert _check_folder(work) == MAX_ITERS
    assert not [n for n in os.listdir(work) if n.endswith(".tmp")]
    final = load_checkpoint_file(str(work / f"iter_{MAX_ITERS}.pth"))
    straight_dir = tmp_path / "straight"
    straight = train(dict(cfg, work_dir=str(straight_dir), custom_hooks=cfg["custom_hooks"][:1]))
    reference = load_checkpoint_file(str(straight_dir / f"iter_{MAX_ITERS}.pth"))
    # state_dict holds the EMA weights, ema_state_dict the trained ones (EMAHook's layout).
    assert_bit_identical(reference["state_dict"], final["state_dict"])
    assert_bit_identical(reference["ema_state_dict"], final["ema_state_dict"])
    assert_bit_identical(weights(straight), {k[len("module."):]: v for k, v in final["ema_state_dict"].items() if k != "steps"})
    assert torch.equal(final["ema_state_dict"]["steps"], torch.tensor(MAX_ITERS))
