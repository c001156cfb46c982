"""Helpers shared by the resume tests (importable: conftest puts this folder on sys.path)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from torchkiln.config import Config
from torchkiln.errors import RunInterrupted
from torchkiln.hooks.hook import Hook

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]


class StopAt(Hook):
    """Ask the runner to stop after iteration ``n`` (the path a signal takes)."""

    priority = "LOWEST"

    def __init__(self, n: int) -> None:
        self.n = n

    def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        if runner.iter + 1 == self.n:
            runner.request_stop("the test")


def build_runner(cfg: dict[str, Any], *, resume: Any = False, hooks: tuple[Any, ...] = ()) -> Any:
    """A Runner from a config dict, with a fresh message hub (as in a new process)."""
    from torchkiln.logging import MessageHub
    from torchkiln.runner import Runner

    MessageHub.reset_instances()
    config = Config(dict(cfg, resume=resume))
    runner = Runner.from_cfg(config)
    for hook in hooks:
        runner.register_hook(hook)
    return runner


def train(cfg: dict[str, Any], *, resume: Any = False, stop_at: int | None = None, hooks: tuple[Any, ...] = ()) -> Any:
    """Train a fresh runner; a stop at ``stop_at`` ends it with RunInterrupted (caught)."""
    extra = hooks + ((StopAt(stop_at),) if stop_at else ())
    runner = build_runner(cfg, resume=resume, hooks=extra)
    try:
        runner.train()
    except RunInterrupted:
        assert stop_at is not None, "the run stopped without a stop request"
    return runner


def weights(runner: Any) -> dict[str, torch.Tensor]:
    """The unwrapped model's state, copied."""
    return {k: v.detach().clone() for k, v in runner.unwrapped_model.state_dict().items()}


def assert_bit_identical(a: dict[str, Any], b: dict[str, Any]) -> None:
    """Every tensor equal (``torch.equal``), same keys."""
    assert list(a) == list(b)
    bad = [k for k in a if not torch.equal(a[k], b[k])]
    assert not bad, f"differ: {bad}; max abs diff {max(float((a[k] - b[k]).abs().max()) for k in bad):.3g}"


def write_yaml(path: Path, cfg: dict[str, Any]) -> Path:
    """Write ``cfg`` as YAML."""
    from torchkiln._native import dump_yaml

    path.write_text(dump_yaml(cfg))
    return path


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment of training subprocesses: one thread, this folder importable."""
    env = dict(os.environ, OMP_NUM_THREADS="1", TORCHKILN_DISABLE_PLUGIN_AUTOLOAD="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), str(REPO / "python"), env.get("PYTHONPATH", "")) if p)
    for name in ("RESUME_TEST_PROGRESS", "RESUME_TEST_SLEEP_S", "RESUME_TEST_SLOW_FSYNC_S", "RESUME_TEST_WRITE_MARKER"):
        env.pop(name, None)
    env.update(extra)
    return env


def start_training(config_path: Path, work_dir: Path, env: dict[str, str], *extra_args: str) -> subprocess.Popen:
    """``torchkiln train CONFIG --work-dir DIR ...`` in a subprocess (output captured)."""
    return subprocess.Popen(
        [sys.executable, "-m", "torchkiln", "train", str(config_path), "--work-dir", str(work_dir), *extra_args],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def progress_lines(path: Path) -> list[int]:
    """Every finished iteration the training processes recorded, in order."""
    try:
        return [int(x) for x in path.read_text().split()]
    except FileNotFoundError:
        return []


def progress(path: Path) -> int:
    """The last finished iteration a subprocess recorded (0 when none)."""
    lines = progress_lines(path)
    return lines[-1] if lines else 0


def wait_until(condition: Callable[[], bool], proc: subprocess.Popen, timeout: float = 240.0) -> bool:
    """Poll ``condition`` until true; False when the process ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if proc.poll() is not None:
            return condition()
        time.sleep(0.02)
    proc.kill()
    raise AssertionError("the training subprocess did not get there in time")


class ForkedCli:
    """``torchkiln <argv>`` in a forked child process (torch is already imported: fast start).

    Quacks like ``subprocess.Popen`` for what the tests need: ``pid``, ``poll()``,
    ``send_signal()``, ``communicate()`` (returns the child's stdout and stderr text) and
    ``returncode``. The child sets ``env`` in its environment, gets a fresh message hub,
    and ends with ``os._exit(exit code of the CLI)``.
    """

    def __init__(self, argv: list[str], env: dict[str, str], folder: Path) -> None:
        import multiprocessing

        prepare_fork()
        folder.mkdir(parents=True, exist_ok=True)
        self._out = folder / f"child{time.monotonic_ns()}.out"
        self._err = self._out.with_suffix(".err")
        self._process = multiprocessing.get_context("fork").Process(
            target=_run_cli_child, args=(argv, env, str(self._out), str(self._err)), daemon=False
        )
        self._process.start()
        self.pid = self._process.pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None and not self._process.is_alive():
            self._process.join()
            self.returncode = self._process.exitcode
        return self.returncode

    def send_signal(self, signum: int) -> None:
        os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(9)

    def signal_group(self, signum: int) -> None:
        """Signal the child and everything it started (its DataLoader workers), as a terminal
        or a cluster scheduler does."""
        os.killpg(self.pid, signum)

    def communicate(self, timeout: float | None = 240) -> tuple[str, str]:
        self._process.join(timeout)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
            raise AssertionError("the forked training process did not finish in time")
        self.returncode = self._process.exitcode
        # A child killed right after the fork has not opened its files yet.
        return tuple(p.read_text() if p.exists() else "" for p in (self._out, self._err))  # type: ignore[return-value]


def prepare_fork() -> None:
    """Make this process safe and quick to fork for a training child.

    Log files of earlier in-process runs are written by background threads, which a forked
    child does not have: they are closed first, or the child would wait for them forever.
    """
    from torchkiln.logging import close_all
    from torchkiln.logging.logger import shutdown_logging

    _warm_up()
    shutdown_logging()
    close_all()


def _warm_up() -> None:
    """Import here, once, what every forked child would otherwise import itself (seconds each)."""
    import torchkiln.cli  # noqa: F401
    import torchkiln.config.validation  # noqa: F401
    import torchkiln.runner.entry  # noqa: F401
    from torchkiln.data.digits import load_digits_arrays

    load_digits_arrays()
    # The first optimizer imports torch._dynamo.
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)


def _run_cli_child(argv: list[str], env: dict[str, str], out: str, err: str) -> None:
    code = 1
    try:
        os.setsid()  # a process group of its own, with its DataLoader workers
        out_fh = open(out, "w", buffering=1, encoding="utf-8")  # noqa: SIM115 - lives until _exit
        err_fh = open(err, "w", buffering=1, encoding="utf-8")  # noqa: SIM115
        os.dup2(out_fh.fileno(), 1)
        os.dup2(err_fh.fileno(), 2)
        sys.stdout, sys.stderr = out_fh, err_fh
        for name in ("RESUME_TEST_PROGRESS", "RESUME_TEST_SLEEP_S", "RESUME_TEST_SLOW_FSYNC_S", "RESUME_TEST_WRITE_MARKER"):
            os.environ.pop(name, None)
        os.environ.update(env)
        import resume_support

        from torchkiln.cli import main
        from torchkiln.logging import MessageHub

        resume_support._install_slow_fsync()
        MessageHub.reset_instances()
        code = main(argv)
    except BaseException:  # noqa: BLE001 - report and leave with a failure code
        import traceback

        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def fork_training(config_path: Path, work_dir: Path, env: dict[str, str], *extra_args: str) -> ForkedCli:
    """``torchkiln train CONFIG --work-dir DIR ...`` in a forked child."""
    argv = ["train", str(config_path), "--work-dir", str(work_dir), *extra_args]
    return ForkedCli(argv, env, work_dir.parent / "child_output")
