"""``MultiProcessTestCase``: run each test method once per rank, in spawned processes.

The case's ``setUp`` runs in the test process (rank ``-1``); a subclass calls
:meth:`MultiProcessTestCase._spawn_processes` there, and the test method then runs in
``world_size`` fresh processes, one per rank (``self.rank``), while the test process waits
for them and reports the first failure with its traceback. Each rank process calls
:meth:`prepare_subprocess` before the test method (register components, set up state the
test process built in ``setUp``), then sets up its process group itself, e.g.
``torch.distributed.init_process_group('gloo', rank=self.rank, world_size=self.world_size)``
with the ``MASTER_ADDR``/``MASTER_PORT`` environment variables or ``init_method=
'file://' + self.file_name``.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import sys
import tempfile
import traceback
import unittest
from collections.abc import Callable
from typing import Any

__all__ = ["MultiProcessTestCase"]


class MultiProcessTestCase(unittest.TestCase):
    """A ``TestCase`` whose test methods run in ``world_size`` processes, one per rank.

    :attr rank: ``-1`` in the test process; the process's rank in a spawned process.
    :attr file_name: a temporary file every rank can use as a ``file://`` rendezvous.
    :attr timeout: seconds the test process waits for the rank processes.
    """

    MAIN_PROCESS_RANK = -1
    TEST_ERROR_EXIT_CODE = 10
    TEST_SKIP_EXIT_CODE = 11
    timeout: float = 300.0

    def __init__(self, methodName: str = "runTest") -> None:
        super().__init__(methodName)
        self.rank = self.MAIN_PROCESS_RANK
        self.file_name = ""
        self.processes: list[Any] = []
        self._pipes: list[Any] = []
        test = getattr(self, methodName, None)
        if callable(test):
            setattr(self, methodName, self._join_or_run(test))

    @property
    def world_size(self) -> int:
        """How many rank processes run each test (2; override for more)."""
        return 2

    def _join_or_run(self, test: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(test)
        def run(*args: Any, **kwargs: Any) -> Any:
            if self.rank == self.MAIN_PROCESS_RANK:
                return self._join_processes()
            return test(*args, **kwargs)

        return run

    def setUp(self) -> None:
        """In the test process: rank ``-1`` and a fresh rendezvous file."""
        super().setUp()
        self.rank = self.MAIN_PROCESS_RANK
        self.processes = []
        self._pipes = []
        with tempfile.NamedTemporaryFile(delete=False) as fh:
            self.file_name = fh.name

    def tearDown(self) -> None:
        """Stop rank processes still running; remove the rendezvous file."""
        super().tearDown()
        for process in self.processes:
            if process.is_alive():
                process.terminate()
        self.processes = []
        if self.file_name and os.path.exists(self.file_name):
            os.remove(self.file_name)

    def prepare_subprocess(self) -> None:
        """Called in each rank process before the test method (nothing by default)."""

    # ------------------------------------------------------------------ the test process
    def _spawn_processes(self) -> None:
        """Start one ``spawn`` process per rank that will run the current test method."""
        context = multiprocessing.get_context("spawn")
        for rank in range(self.world_size):
            parent_end, child_end = context.Pipe(duplex=False)
            process = context.Process(
                target=type(self)._run,
                name=f"rank {rank}",
                args=(rank, self._testMethodName, self.file_name, child_end),
            )
            process.start()
            child_end.close()
            self.processes.append(process)
            self._pipes.append(parent_end)

    def _join_processes(self) -> None:
        """Wait for every rank; fail with the first rank's traceback, skip if all skipped."""
        outcomes: list[tuple[str, str]] = []
        for rank, (process, pipe) in enumerate(zip(self.processes, self._pipes)):
            process.join(self.timeout)
            if process.is_alive():
                process.terminate()
                self.fail(f"rank {rank} did not finish within {self.timeout:.0f} s")
            outcome = pipe.recv() if pipe.poll() else ("error", "")
            if outcome[0] == "error" and not outcome[1]:
                outcome = ("error", f"exited with code {process.exitcode} without a report")
            outcomes.append(outcome)
        for rank, (kind, detail) in enumerate(outcomes):
            if kind == "error":
                self.fail(f"rank {rank} of {self.world_size} failed:\n{detail}")
        if outcomes and all(kind == "skip" for kind, _ in outcomes):
            raise unittest.SkipTest(outcomes[0][1])

    # ------------------------------------------------------------------ a rank process
    @classmethod
    def _run(cls, rank: int, test_name: str, file_name: str, pipe: Any) -> None:
        """Entry point of a rank process: build the case, prepare it, run the test method."""
        case = cls(test_name)
        case.rank = rank
        case.file_name = file_name
        code = 0
        try:
            case.prepare_subprocess()
            getattr(case, test_name)()
            pipe.send(("ok", ""))
        except unittest.SkipTest as skip:
            pipe.send(("skip", str(skip)))
            code = cls.TEST_SKIP_EXIT_CODE
        except BaseException:
            pipe.send(("error", traceback.format_exc()))
            code = cls.TEST_ERROR_EXIT_CODE
        finally:
            pipe.close()
            _destroy_process_group()
        sys.exit(code)


def _destroy_process_group() -> None:
    """Leave the process group the test joined, so the process exits cleanly."""
    try:
        import torch.distributed as dist
    except ImportError:  # pragma: no cover - torch without distributed support
        return
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
