"""Start a local multi-process job through ``torch.distributed.run`` (torchrun), and report
a worker's error back to it.

``torchkiln train CONFIG --nproc N`` re-runs the same command line in ``N`` worker processes
that torchrun starts and supervises (``--standalone``: a rendezvous on a free local port).
Each worker sees torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR``, ``MASTER_PORT``) and ``--launcher pytorch``; it does not start workers again.
When a worker fails, torchrun stops the others and this process prints which rank failed
and why, and exits with that rank's exit code.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

import attrs

from torchkiln.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, UsageError

__all__ = [
    "LAUNCHED_ENV",
    "in_launched_process",
    "launch_local",
    "record_worker_error",
    "torchrun_args",
]

#: Variables a launcher sets in every worker it starts; any of them means "already launched".
LAUNCHED_ENV = ("RANK", "LOCAL_RANK", "TORCHELASTIC_RUN_ID", "OMPI_COMM_WORLD_RANK")


def in_launched_process() -> bool:
    """True inside a worker that torchrun, OpenMPI or SLURM's ``srun`` started.

    A SLURM batch script itself (``SLURM_PROCID`` but no ``SLURM_STEP_ID``) is not a worker.
    """
    if any(name in os.environ for name in LAUNCHED_ENV):
        return True
    return "SLURM_PROCID" in os.environ and "SLURM_STEP_ID" in os.environ


def torchrun_args(nproc: int, argv: Sequence[str], module: str = "torchkiln") -> Any:
    """torchrun's parsed arguments for ``python -m module *argv --launcher pytorch`` on ``nproc`` workers.

    The workers' command line is set after parsing, so torchrun's own option parser never
    sees it (it would reject words like ``--nproc`` as ambiguous abbreviations of its own
    options). ``--launcher pytorch`` is appended (argparse keeps the last value), so the
    workers join the process group torchrun prepares.
    """
    from torch.distributed import run as torchrun

    args = torchrun.parse_args(
        [
            "--nproc-per-node",
            str(int(nproc)),
            "--standalone",
            "--monitor-interval",
            "0.1",
            "-m",
            module,
        ]
    )
    args.training_script_args = [*argv, "--launcher", "pytorch"]
    return args


@attrs.frozen
class _Failure:
    """One failed worker as reported to the user."""

    rank: int
    local_rank: int
    exitcode: (
        int | None
    )  # None: the worker wrote its error but torchrun stopped it before it exited
    message: str
    timestamp: int

    @property
    def consequence(self) -> bool:
        """True when this looks like the echo of another rank's failure (listed after the cause)."""
        text = self.message.lower()
        return (self.exitcode is not None and self.exitcode < 0) or any(
            word in text for word in _CONSEQUENCES
        )


# Errors a worker gets because another worker died first (gloo/NCCL peers closing, signals).
_CONSEQUENCES = (
    "connection closed by peer",
    "connection reset by peer",
    "remote worker",
    "signal ",
)


def _message(raw: Any) -> str:
    if isinstance(raw, dict):  # a structured error file
        raw = raw.get("message", "") or str(raw)
    message = str(raw or "").strip()
    if message.startswith("To enable traceback"):
        message = ""  # torchrun's placeholder when the worker wrote no error file
    return message


def _read_error_file(path: str) -> tuple[str, int] | None:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        raw = data["message"]
        stamp = (
            int(raw["extraInfo"]["timestamp"])
            if isinstance(raw, dict)
            else int(data.get("timestamp", 0))
        )
        return _message(raw), stamp
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _failures(exc: Any) -> list[_Failure]:
    """The failed workers, the likely cause first.

    torchrun reports the workers that had exited with an error when it noticed the first
    failure; a worker that was still on its way out is then stopped and left out, although
    it wrote its error. Its error file sits next to the reported ones
    (``<attempt dir>/<local rank>/error.json``), so it is read from there. Local ranks are
    global ranks here: ``--nproc`` runs on one node.
    """
    found: dict[int, _Failure] = {}
    attempt_dirs = set()
    for rank, failure in exc.failures.items():
        found[int(failure.local_rank)] = _Failure(
            int(rank),
            int(failure.local_rank),
            int(failure.exitcode),
            _message(failure.message),
            int(failure.timestamp),
        )
        error_file = getattr(failure, "error_file", "") or ""
        if os.path.isabs(error_file):
            attempt_dirs.add(os.path.dirname(os.path.dirname(error_file)))
    for attempt in attempt_dirs:
        try:
            names = os.listdir(attempt)
        except OSError:
            continue
        for name in names:
            if not name.isdigit() or int(name) in found:
                continue
            read = _read_error_file(os.path.join(attempt, name, "error.json"))
            if read is not None:
                found[int(name)] = _Failure(int(name), int(name), None, read[0], read[1])
    return sorted(found.values(), key=lambda f: (f.consequence, f.timestamp, f.rank))


def _exit_code(code: int | None) -> int:
    if code is None or code == 0:
        return EXIT_INTERNAL
    if code < 0:  # killed by a signal
        return 128 + (-code)
    return code


def _report(exc: Any) -> int:
    """Print one line per failed worker, the cause first; return the exit code for the job."""
    failures = _failures(exc)
    for failure in failures:
        status = (
            "failed" if failure.exitcode is None else f"failed with exit code {failure.exitcode}"
        )
        print(
            f"error: rank {failure.rank} (local rank {failure.local_rank}) {status}"
            + (f": {failure.message}" if failure.message else " (its output is above)"),
            file=sys.stderr,
        )
    cause = failures[0]
    if len(failures) > 1:
        print(
            f"rank {cause.rank}'s error is the cause (listed first); the other ranks failed or were stopped after it",
            file=sys.stderr,
        )
    if cause.exitcode is None:  # stopped before it could exit: use the first exit code torchrun saw
        known = [f.exitcode for f in failures if f.exitcode is not None]
        return _exit_code(known[0] if known else None)
    return _exit_code(cause.exitcode)


def launch_local(nproc: int, argv: Sequence[str], module: str = "torchkiln") -> int:
    """Run ``python -m module *argv --launcher pytorch`` on ``nproc`` local workers via torchrun.

    :param nproc: number of worker processes (>= 1).
    :param argv: the command line of each worker, without the program name.
    :param module: the module the workers run.
    :return: 0 when every worker succeeded, else the exit code of the worker whose error
        caused the failure (``128 + signal`` for a worker killed by a signal). Failures that
        echo another rank's death (a closed connection, a signal) are listed after the cause.
    """
    if int(nproc) < 1:
        raise UsageError(f"--nproc must be at least 1, got {nproc}", where="--nproc")
    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    try:
        torchrun.run(torchrun_args(nproc, argv, module))
    except ChildFailedError as exc:
        return _report(exc)
    except SignalException as exc:
        print(
            f"interrupted: torchrun stopped the workers on {signal.Signals(exc.sigval).name}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED if exc.sigval == signal.SIGINT else 128 + int(exc.sigval)
    return 0


def record_worker_error(exc: BaseException) -> None:
    """Write ``exc`` to the error file torchrun gave this worker (``TORCHELASTIC_ERROR_FILE``).

    torchrun then shows the worker's message in its failure summary. Call it from inside the
    ``except`` block that handles ``exc`` (the traceback is read from there). Does nothing
    outside torchrun; never raises.
    """
    if not os.environ.get("TORCHELASTIC_ERROR_FILE"):
        return
    try:
        from torch.distributed.elastic.multiprocessing.errors import get_error_handler

        handler = get_error_handler()
        handler.initialize()
        handler.record_exception(exc)
    except Exception:  # reporting must never hide the original error
        pass
