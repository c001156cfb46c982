"""``MultiProcessTestCase``: a ``unittest.TestCase`` whose tests run once per rank, in processes.

For distributed tests on one machine (CPU and the ``gloo`` backend do): ``setUp`` calls
``self._spawn_processes()``, which starts :attr:`~MultiProcessTestCase.world_size` fresh
(``spawn``) processes; each builds the test case again with its ``rank`` and runs the test
method's body, which usually begins by initialising the process group
(``torch.distributed.init_process_group(..., rank=self.rank, world_size=self.world_size)``).
The test in the parent process only waits for them: it fails with every failing rank's
traceback, is skipped when every rank skipped, and fails when a rank does not finish within
:attr:`~MultiProcessTestCase.timeout` seconds.

The test module must be importable by its name in a new process (``spawn`` imports it
again), and ``setUp`` does not run in the ranks' processes: each calls
:meth:`~MultiProcessTestCase.prepare_subprocess` before the test method instead.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import sys
import tempfile
import time
import traceback
import unittest
from collections.abc import Callable
from typing import Any

__all__ = ["MultiProcessTestCase"]

#: ``rank`` of the parent process, which only starts the ranks and waits for them.
MAIN_PROCESS_RANK = -1


class MultiProcessTestCase(unittest.TestCase):
    """Runs each test method in :attr:`world_size` processes, one per rank.

    Attributes a test reads: ``self.rank`` (0 .. world_size - 1 in a rank's process),
    ``self.world_size``, and ``self.file_name``, a fresh empty file shared by the ranks of
    one test (for a ``file://`` init method or a ``FileStore``).
    """

    #: seconds the ranks of one test may take, together
    timeout: float = 300.0

    @property
    def world_size(self) -> int:
        """How many processes run each test (2; override the property for more)."""
        return 2

    def __init__(self, methodName: str = "runTest") -> None:
        super().__init__(methodName)
        self.rank = MAIN_PROCESS_RANK
        self.file_name = ""
        self.processes: list[tuple[Any, Any]] = []
        method = getattr(self, methodName, None)
        if callable(method):
            setattr(self, methodName, self._rank_or_wait(method))

    def _rank_or_wait(self, method: Callable[[], Any]) -> Callable[[], Any]:
        @functools.wraps(method)  # keeps unittest's skip marks
        def run() -> Any:
            if self.rank == MAIN_PROCESS_RANK:
                return self._join_processes(method.__name__)
            return method()

        return run

    def setUp(self) -> None:
        """Prepare the shared file; subclasses call ``self._spawn_processes()`` after this."""
        super().setUp()
        self.processes = []
        self.rank = MAIN_PROCESS_RANK
        handle, self.file_name = tempfile.mkstemp(prefix="kiln_multiprocess_")
        os.close(handle)

    def tearDown(self) -> None:
        """Stop ranks still running and remove the shared file."""
        super().tearDown()
        for process, _ in self.processes:
            if process.is_alive():
                process.terminate()
            process.join(5)
        self.processes = []
        if self.file_name and os.path.exists(self.file_name):
            os.remove(self.file_name)

    def _spawn_processes(self) -> None:
        """Start one ``spawn`` process per rank running the current test method."""
        context = multiprocessing.get_context("spawn")
        for rank in range(self.world_size):
            parent_end, child_end = context.Pipe()
            process = context.Process(
                target=type(self)._run,
                args=(rank, self._testMethodName, self.file_name, child_end),
                name=f"{self._testMethodName} rank {rank}",
            )
            process.start()
            child_end.close()
            self.processes.append((process, parent_end))

    def prepare_subprocess(self) -> None:
        """Called in each rank's process before the test method (``setUp`` is not): register
        components, or build what the test reads from ``self``. Nothing by default."""

    @classmethod
    def _run(cls, rank: int, test_name: str, file_name: str, pipe: Any) -> None:
        """A rank's process: rebuild the case as ``rank``, prepare it, run the test."""
        case = cls(test_name)
        case.rank = rank
        case.file_name = file_name
        try:
            case.prepare_subprocess()
        except BaseException:
            pipe.send(("error", traceback.format_exc()))
            pipe.close()
            return
        case.run_test(test_name, pipe)

    def run_test(self, test_name: str, parent_pipe: Any) -> None:
        """Run ``test_name`` in this rank's process and send ``(status, text)`` to the parent.

        A subclass may override it to build per-process state first (then call
        ``super().run_test(test_name, parent_pipe)``), as MMEngine's test cases do.
        """
        report: tuple[str, str]
        try:
            getattr(self, test_name)()
        except unittest.SkipTest as exc:
            report = ("skip", str(exc))
        except BaseException:
            report = ("error", traceback.format_exc())
        else:
            report = ("ok", "")
        finally:
            dist = sys.modules.get("torch.distributed")
            if dist is not None and dist.is_available() and dist.is_initialized():
                dist.destroy_process_group()
        parent_pipe.send(report)
        parent_pipe.close()

    def _join_processes(self, test_name: str) -> None:
        """Wait for every rank; fail, skip or pass as they did."""
        if not self.processes:
            raise RuntimeError(
                f"{type(self).__name__}.{test_name}: no rank was started; call "
                "self._spawn_processes() in setUp"
            )
        deadline = time.monotonic() + self.timeout
        reports: list[tuple[str, str]] = []
        for rank, (process, pipe) in enumerate(self.processes):
            if not pipe.poll(max(0.0, deadline - time.monotonic())):
                for other, _ in self.processes:
                    other.terminate()
                self.fail(
                    f"{test_name}: rank {rank} did not finish within {self.timeout:g} s "
                    "(a collective waiting for a rank that failed or never joined?)"
                )
            try:
                reports.append(pipe.recv())
            except EOFError:
                process.join(5)
                reports.append(
                    ("error", f"the process exited with code {process.exitcode} without reporting")
                )
            process.join(max(0.0, deadline - time.monotonic()))
        failures = [
            f"rank {rank}:\n{text}"
            for rank, (status, text) in enumerate(reports)
            if status == "error"
        ]
        if failures:
            self.fail(f"{test_name} failed in {len(failures)} rank(s)\n" + "\n".join(failures))
        statuses = {status for status, _ in reports}
        if statuses == {"skip"}:
            raise unittest.SkipTest(reports[0][1])
        if "skip" in statuses:
            skipped = [rank for rank, (status, _) in enumerate(reports) if status == "skip"]
            self.fail(f"{test_name}: ranks {skipped} skipped while the others ran")
