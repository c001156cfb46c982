"""SIGTERM, SIGINT and SIGUSR1: finish the iteration, save, flush logs, exit 143/130; resume exactly."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
import torch
from resume_helpers import (
    assert_bit_identical,
    build_runner,
    fork_training,
    progress,
    start_training,
    subprocess_env,
    train,
    wait_until,
    weights,
    write_yaml,
)
from resume_support import config

from torchkiln.errors import RunInterrupted
from torchkiln.hooks.hook import Hook


class SignalAt(Hook):
    """Send ``signum`` to this process during iteration ``n`` (after its train step)."""

    def __init__(self, n: int, signum: int) -> None:
        self.n = n
        self.signum = signum

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if runner.iter + 1 == self.n:
            os.kill(os.getpid(), self.signum)


@pytest.mark.parametrize(
    ("signum", "code"),
    [(signal.SIGTERM, 143), (signal.SIGINT, 130), (signal.SIGUSR1, 143)],
    ids=["SIGTERM", "SIGINT", "SIGUSR1"],
)
def test_signal_in_process_saves_and_restores_handlers(tmp_path, signum, code):
    before = signal.getsignal(signum)
    cfg = config(str(tmp_path), by_epoch=False, max_iters=12, interval=-1, progress=False)
    runner = build_runner(cfg, hooks=(SignalAt(5, signum),))
    with pytest.raises(RunInterrupted) as info:
        runner.train()
    assert info.value.exit_code == code
    assert f"stopped by {signal.Signals(signum).name} after iteration 5" in str(info.value)
    assert runner.iter == 5
    assert signal.getsignal(signum) is before
    ckpt = torch.load(tmp_path / "iter_5.pth", weights_only=True)
    assert ckpt["meta"]["iter"] == 5 and "optimizer" in ckpt
    assert (tmp_path / "last_checkpoint").read_text() == str(tmp_path / "iter_5.pth")


def _signal_subprocess(tmp_path, cfg, signum, after_iter, fresh_interpreter, sleep="0.05"):
    """Train ``cfg`` through the CLI, send ``signum`` once ``after_iter`` iterations are done.

    ``fresh_interpreter``: ``python -m torchkiln`` in a new process; else a forked child of
    this one runs the CLI (it starts in well under a second).
    """
    cfg_file = write_yaml(tmp_path / "run.yaml", cfg)
    marks = tmp_path / "progress.txt"
    extra = {"RESUME_TEST_PROGRESS": str(marks), "RESUME_TEST_SLEEP_S": sleep}
    if fresh_interpreter:
        proc = start_training(cfg_file, tmp_path / "work", subprocess_env(**extra))
    else:
        proc = fork_training(cfg_file, tmp_path / "work", extra)
    assert wait_until(lambda: progress(marks) >= after_iter, proc), proc.communicate()
    if fresh_interpreter:
        proc.send_signal(signum)
    else:  # the whole process group, DataLoader workers included (Ctrl-C in a terminal)
        proc.signal_group(signum)
    out, err = proc.communicate(timeout=240)
    return proc.returncode, out, err, progress(marks)


@pytest.mark.parametrize(
    ("signum", "code", "by_epoch", "workers", "fresh_interpreter"),
    [(signal.SIGTERM, 143, False, 0, True), (signal.SIGINT, 130, True, 2, False)],
    ids=["SIGTERM-iter-python-m-torchkiln", "SIGINT-epoch-workers2-forked"],
)
def test_signal_to_training_subprocess(tmp_path, signum, code, by_epoch, workers, fresh_interpreter):
    name = signal.Signals(signum).name
    cfg = config(str(tmp_path / "work"), by_epoch=by_epoch, workers=workers, max_iters=40, interval=-1)
    rc, out, err, stopped_at = _signal_subprocess(tmp_path, cfg, signum, 6, fresh_interpreter)
    assert rc == code, err
    assert f"error: training stopped by {name} after iteration {stopped_at}" in err
    assert "Traceback" not in err
    work = tmp_path / "work"
    target = (work / "last_checkpoint").read_text()
    assert target == str(work / f"iter_{stopped_at}.pth")
    meta = torch.load(target, weights_only=True)["meta"]
    assert meta["iter"] == stopped_at
    # Logs are flushed: the text log has the stop line, the scalars file whole JSON records.
    (log_dir,) = [p for p in work.iterdir() if p.is_dir()]
    (text_log,) = log_dir.glob("*.log")
    assert f"training stopped by {name}" in text_log.read_text()
    steps = [json.loads(line)["step"] for line in (log_dir / "scalars.jsonl").read_text().splitlines()]
    assert steps and max(steps) <= stopped_at
    # Resuming continues from the stop and ends bit-identical to an uninterrupted run.
    resumed = train(dict(cfg, custom_hooks=cfg["custom_hooks"][:1]), resume=True)
    straight = train(dict(cfg, work_dir=str(tmp_path / "straight"), custom_hooks=cfg["custom_hooks"][:1]))
    assert resumed.iter == straight.iter
    assert_bit_identical(weights(straight), weights(resumed))


def test_second_signal_exits_at_once(tmp_path):
    cfg = config(str(tmp_path / "work"), max_iters=40, interval=-1)
    cfg_file = write_yaml(tmp_path / "run.yaml", cfg)
    marks = tmp_path / "progress.txt"
    proc = fork_training(cfg_file, tmp_path / "work", {"RESUME_TEST_PROGRESS": str(marks), "RESUME_TEST_SLEEP_S": "1"})
    wait_until(lambda: progress(marks) >= 1, proc)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    start = time.monotonic()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143
    assert "SIGTERM again: exiting at once (code 143)" in err
    assert time.monotonic() - start < 1.0  # did not finish the (1 s) iteration first


def test_dataloader_workers_ignore_stop_signals():
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    queue = ctx.SimpleQueue()

    def child() -> None:
        from torchkiln.data.builder import worker_init_fn

        worker_init_fn(0, num_workers=2, rank=0, seed=5)
        queue.put([signal.getsignal(s) is signal.SIG_IGN for s in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)])

    process = ctx.Process(target=child)
    process.start()
    process.join(60)
    assert process.exitcode == 0
    assert queue.get() == [True, True, True]
