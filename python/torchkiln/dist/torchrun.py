"""Start a local multi-process job through ``torch.distributed.run`` (torchrun), and report
a worker's error back to it.

``torchkiln train CONFIG --nproc N`` re-runs the same command line in ``N`` worker processes
that torchrun starts and supervises (``--standalone``: a rendezvous on a free local port).
Each worker sees torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR``, ``MASTER_PORT``) and ``--launcher pytorch``; it does not start workers again.
When a worker fails, torchrun stops the others and this process prints which rank caused
the failure and why (see :mod:`torchkiln.dist.failures`), and exits with that rank's exit
code.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

from torchkiln.dist import failures as failure_report
from torchkiln.dist.failures import (
    WorkerFailure,
    failures_from_records,
    format_report,
    job_exit_code,
)
from torchkiln.errors import EXIT_INTERRUPTED, UsageError

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


def _failures(exc: Any) -> list[WorkerFailure]:
    """The failed workers torchrun reports, and those it stopped after they wrote their error.

    torchrun reports the workers that had exited with an error when it noticed the first
    failure; a worker that was still on its way out is then stopped and left out, although
    it wrote its error. Its error file sits next to the reported ones
    (``<attempt dir>/<local rank>/error.json``), so it is read from there. Local ranks are
    global ranks here: ``--nproc`` runs on one node.
    """
    rows: list[tuple[int, int, int | None, str, float]] = []
    seen: set[int] = set()
    attempt_dirs = set()
    latest = 0.0
    for rank, failure in exc.failures.items():
        error_file = getattr(failure, "error_file", "") or ""
        noticed = float(failure.timestamp)
        latest = max(latest, noticed)
        rows.append(
            (int(rank), int(failure.local_rank), int(failure.exitcode), error_file, noticed)
        )
        seen.add(int(failure.local_rank))
        if os.path.isabs(error_file):
            attempt_dirs.add(os.path.dirname(os.path.dirname(error_file)))
    for attempt in attempt_dirs:
        try:
            names = os.listdir(attempt)
        except OSError:
            continue
        for name in names:
            path = os.path.join(attempt, name, "error.json")
            if name.isdigit() and int(name) not in seen and os.path.isfile(path):
                rows.append((int(name), int(name), None, path, latest))
    return failures_from_records(rows)


def _report(exc: Any) -> int:
    """Print the failure report, the cause first; return the exit code for the job."""
    failures = _failures(exc)
    for line in format_report(failures):
        print(line, file=sys.stderr)
    return job_exit_code(failures)


def launch_local(nproc: int, argv: Sequence[str], module: str = "torchkiln") -> int:
    """Run ``python -m module *argv --launcher pytorch`` on ``nproc`` local workers via torchrun.

    :param nproc: number of worker processes (>= 1).
    :param argv: the command line of each worker, without the program name.
    :param module: the module the workers run.
    :return: 0 when every worker succeeded, else the exit code of the worker whose error
        caused the failure (``128 + signal`` for a worker killed by a signal). Ranks whose
        collective failed because that rank was gone are listed after it, as consequences.
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


def record_worker_error(exc: BaseException, exit_code: int | None = None) -> None:
    """Write ``exc`` to the error file torchrun gave this worker (``TORCHELASTIC_ERROR_FILE``).

    torchrun then shows the worker's message in its failure summary, and ``--nproc``'s report
    orders the ranks by the exact time recorded there (see
    :func:`torchkiln.dist.failures.record_worker_error`). Does nothing outside torchrun; never
    raises.

    :param exit_code: the exit code the worker ends with for this error.
    """
    failure_report.record_worker_error(exc, exit_code)
