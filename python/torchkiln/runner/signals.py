"""Stopping a training run cleanly on a signal, with every rank stopping at the same step.

SIGTERM, SIGINT and SIGUSR1 ask the run to stop: the current iteration finishes, a resumable
checkpoint is saved, logs are flushed, and training ends with
:class:`~torchkiln.errors.RunInterrupted` (exit code 130 for SIGINT, 143 otherwise). A second
signal exits the process at once with the same code.

Handlers are installed only from the main thread, only while ``Runner.train`` runs, and the
previous handlers are put back afterwards.

Agreement across ranks: a signal usually reaches one rank first (or only one). In a single
process the loop reads a flag after each iteration (an attribute read). Under
torch.distributed every rank contributes its flag to an ``all_reduce(MAX)`` of one integer
after each iteration, on a CPU (gloo) group and pipelined: the reduction started after
iteration ``i`` is read after iteration ``i + 1``, so all ranks stop after the same
iteration, one iteration after the signal, and the GPU stream is never synchronised for it.
The cost is one small CPU collective per iteration (tens of microseconds on one node).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from torchkiln.errors import EXIT_INTERRUPTED, EXIT_TERMINATED

__all__ = ["STOP_SIGNALS", "StopAgreement", "StopSignals", "exit_code_for", "signal_name"]


def _stop_signals() -> dict[int, int]:
    codes: dict[int, int] = {signal.SIGINT: EXIT_INTERRUPTED, signal.SIGTERM: EXIT_TERMINATED}
    usr1 = getattr(signal, "SIGUSR1", None)  # not on Windows
    if usr1 is not None:
        codes[usr1] = EXIT_TERMINATED
    return codes


#: The signals that stop training, with the exit code each leads to.
STOP_SIGNALS: dict[int, int] = _stop_signals()


def exit_code_for(signum: int) -> int:
    """The exit code for stopping on ``signum`` (130 for SIGINT, 143 otherwise)."""
    return STOP_SIGNALS.get(signum, EXIT_TERMINATED)


def signal_name(signum: int) -> str:
    """``'SIGTERM'`` for ``signal.SIGTERM``; the number for an unknown one."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class StopSignals:
    """Context manager: while active, stop signals call ``on_signal(signum)`` once.

    A second stop signal ends the process at once (``os._exit``) with the first one's exit
    code, after ``before_exit()`` (e.g. flushing logs). Outside the main thread nothing is
    installed (Python delivers signals there only).

    :param on_signal: called from the handler with the signal number.
    :param before_exit: called right before a second signal ends the process.
    """

    def __init__(
        self, on_signal: Callable[[int], None], before_exit: Callable[[], None] | None = None
    ) -> None:
        self._on_signal = on_signal
        self._before_exit = before_exit
        self._previous: dict[int, Any] = {}
        self.received: int | None = None

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is not threading.main_thread():
            return self
        for signum in STOP_SIGNALS:
            try:
                self._previous[signum] = signal.signal(signum, self._handle)
            except (OSError, ValueError):  # e.g. a signal this platform does not let us catch
                continue
        return self

    def __exit__(self, *exc_info: Any) -> None:
        for signum, previous in self._previous.items():
            try:
                signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
            except (OSError, ValueError):
                pass
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:
            code = exit_code_for(self.received)
            os.write(2, f"\n{signal_name(signum)} again: exiting at once (code {code})\n".encode())
            if self._before_exit is not None:
                try:
                    self._before_exit()
                except BaseException:  # exiting matters more
                    pass
            os._exit(code)
        self.received = signum
        self._on_signal(signum)


class StopAgreement:
    """Every rank learns, after the same iteration, whether any rank asked to stop.

    ``poll(local)`` is called by every rank once per iteration. In one process it returns
    ``local``. Under torch.distributed it starts an asynchronous ``all_reduce(MAX)`` of
    ``local`` and returns the result of the previous call's reduction (see the module
    docstring), so ranks agree, one iteration late.
    """

    def __init__(self, distributed: bool) -> None:
        self.distributed = distributed
        self._group: Any = None
        self._work: Any = None
        self._flag: Any = None
        self._device: Any = None
        if distributed:
            import torch
            import torch.distributed as dist

            try:
                self._group = dist.new_group(backend="gloo")
                self._device = torch.device("cpu")
            except (RuntimeError, ValueError):  # gloo unavailable: use the default group
                self._group = None
                backend = dist.get_backend()
                self._device = (
                    torch.device("cuda", torch.cuda.current_device())
                    if backend == "nccl"
                    else torch.device("cpu")
                )

    def poll(self, local: bool) -> bool:
        """Whether the run stops now (the same answer on every rank)."""
        if not self.distributed:
            return bool(local)
        import torch
        import torch.distributed as dist

        agreed = False
        if self._work is not None:
            self._work.wait()
            agreed = bool(self._flag.item())
        self._flag = torch.tensor([1 if local else 0], dtype=torch.int32, device=self._device)
        self._work = dist.all_reduce(
            self._flag, op=dist.ReduceOp.MAX, group=self._group, async_op=True
        )
        return agreed

    def close(self) -> None:
        """Wait for the last reduction (every rank issued the same number)."""
        if self._work is not None:
            self._work.wait()
            self._work = None
