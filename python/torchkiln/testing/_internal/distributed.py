"""MultiProcessTestCase: a ``unittest`` case whose test methods run in several processes.

A test class calls :meth:`MultiProcessTestCase._spawn_processes` in ``setUp``; each test
method then runs once in each of :attr:`~MultiProcessTestCase.world_size` fresh processes
(started with ``spawn``), where :attr:`~MultiProcessTestCase.rank` is that process's rank,
while the test in the main process waits for them and fails with the traceback of every
process that failed (or skips when they all skipped). ``file_name`` names a file the
processes share, e.g. for ``init_method=f'file://{self.file_name}'``::

    class TestAllReduce(MultiProcessTestCase):
        def setUp(self):
            super().setUp()
            self._spawn_processes()

        def test_sum(self):
            torch.distributed.init_process_group(
                'gloo', init_method=f'file://{self.file_name}',
                rank=self.rank, world_size=self.world_size)
            ...
"""

from __future__ import annotations

import functools
import os
import sys
import tempfile
import time
import traceback
import unittest
from collections.abc import Callable
from typing import Any

__all__ = ["MultiProcessTestCase"]


class MultiProcessTestCase(unittest.TestCase):
    """A test case whose test methods run in :attr:`world_size` processes (see the module)."""

    #: :attr:`rank` in the main process, which only starts and waits for the others.
    MAIN_PROCESS_RANK = -1
    #: Exit code of a process whose test raised (its traceback is sent to the main process).
    TEST_ERROR_EXIT_CODE = 10
    #: Exit code of a process whose test was skipped.
    TEST_SKIP_EXIT_CODE = 75
    #: Seconds the main process waits for the test processes before failing the test.
    timeout = 300

    @property
    def world_size(self) -> int:
        """How many processes run each test (2; override in a subclass for more)."""
        return 2

    def __init__(self, methodName: str = "runTest") -> None:
        super().__init__(methodName)
        method = getattr(self, methodName, None)
        if method is not None:
            setattr(self, methodName, self._join_or_run(method))
        self.rank = self.MAIN_PROCESS_RANK
        self.file_name = ""
        self.processes: list[Any] = []
        self._pipes: list[Any] = []

    def _join_or_run(self, fn: Callable[[], Any]) -> Callable[[], None]:
        @functools.wraps(fn)
        def wrapper() -> None:
            if self.rank == self.MAIN_PROCESS_RANK:
                self._join_processes(fn)
            else:
                fn()

        return wrapper

    def setUp(self) -> None:
        """Prepare the shared file; a subclass then calls :meth:`_spawn_processes`."""
        super().setUp()
        self.processes = []
        self._pipes = []
        self.rank = self.MAIN_PROCESS_RANK
        with tempfile.NamedTemporaryFile(delete=False) as shared:
            self.file_name = shared.name

    def tearDown(self) -> None:
        """Stop any test process still running and remove the shared file."""
        super().tearDown()
        for process in self.processes:
            if process.is_alive():
                process.terminate()
            process.join(5)
        self.processes = []
        for pipe in self._pipes:
            pipe.close()
        self._pipes = []
        if self.file_name and os.path.exists(self.file_name):
            os.remove(self.file_name)

    def _current_test_name(self) -> str:
        return self.id().split(".")[-1]

    def _start_processes(self, context: Any) -> None:
        """Start one process per rank from ``context`` (a multiprocessing context)."""
        self.processes = []
        self._pipes = []
        for rank in range(self.world_size):
            parent_end, child_end = context.Pipe(duplex=False)
            process = context.Process(
                target=type(self)._run,
                name=f"rank {rank}",
                args=(rank, self._current_test_name(), self.file_name, child_end),
            )
            process.start()
            child_end.close()
            self.processes.append(process)
            self._pipes.append(parent_end)

    def _spawn_processes(self) -> None:
        """Start the test processes with the ``spawn`` method (fresh interpreters)."""
        import torch.multiprocessing

        self._start_processes(torch.multiprocessing.get_context("spawn"))

    @classmethod
    def _run(cls, rank: int, test_name: str, file_name: str, pipe: Any) -> None:
        """Entry point of a test process: rebuild the test case and run the test as ``rank``."""
        self = cls(test_name)
        self.rank = rank
        self.file_name = file_name
        self.run_test(test_name, pipe)

    def run_test(self, test_name: str, parent_pipe: Any) -> None:
        """Run ``test_name`` in this process; report a failure or a skip, then exit."""
        code = 0
        try:
            getattr(self, test_name)()
        except unittest.SkipTest as skip:
            parent_pipe.send(f"skipped: {skip}")
            code = self.TEST_SKIP_EXIT_CODE
        except BaseException:  # every failure, as a traceback, goes to the main process
            parent_pipe.send(traceback.format_exc())
            code = self.TEST_ERROR_EXIT_CODE
        finally:
            parent_pipe.close()
            _destroy_process_group()
        if code:
            sys.exit(code)

    def _join_processes(self, fn: Callable[[], Any]) -> None:
        """Wait for the test processes; fail with their errors, or skip if all skipped."""
        deadline = time.monotonic() + self.timeout
        messages: dict[int, str] = {}
        while True:
            self._collect(messages)
            codes = [process.exitcode for process in self.processes]
            failed = any(code not in (None, 0, self.TEST_SKIP_EXIT_CODE) for code in codes)
            if failed or all(code is not None for code in codes):
                break
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        if failed:  # one rank failed: the others may wait for it forever
            time.sleep(0.5)
        stopped = set()
        for rank, process in enumerate(self.processes):
            if process.is_alive():
                process.terminate()
                stopped.add(rank)
            process.join(5)
        self._collect(messages)
        self._check_return_codes(messages, stopped, "after another rank failed" if failed else "")

    def _collect(self, messages: dict[int, str]) -> None:
        """Read what the test processes sent (an error or a skip), without blocking."""
        for rank, pipe in enumerate(self._pipes):
            if rank in messages or not pipe.poll():
                continue
            try:
                messages[rank] = pipe.recv()
            except EOFError:  # closed without a message: the test passed
                continue

    def _check_return_codes(self, messages: dict[int, str], stopped: set[int], why: str) -> None:
        errors = []
        skipped = []
        for rank, process in enumerate(self.processes):
            code = process.exitcode
            if code == self.TEST_SKIP_EXIT_CODE:
                skipped.append(messages.get(rank, "skipped"))
            elif code == self.TEST_ERROR_EXIT_CODE:
                errors.append(f"rank {rank} failed:\n{messages.get(rank, '')}")
            elif rank in stopped:
                errors.append(f"rank {rank} was stopped {why or f'after {self.timeout} s'}")
            elif code != 0:
                errors.append(f"rank {rank} exited with code {code}")
        if errors:
            self.fail(f"{self._current_test_name()}: " + "\n".join(errors))
        if self.processes and len(skipped) == len(self.processes):
            raise unittest.SkipTest(skipped[0].removeprefix("skipped: "))


def _destroy_process_group() -> None:
    """Leave the process group a test set up, so the process exits cleanly."""
    try:
        import torch.distributed as dist
    except ImportError:  # pragma: no cover
        return
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
