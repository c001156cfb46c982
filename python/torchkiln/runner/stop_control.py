"""Stopping a training run on request: signals, ``request_stop``, agreement across ranks.

A stop request (SIGTERM, SIGINT, SIGUSR1 or a call to :meth:`StopController.request`) ends
training after the current iteration; the runner then saves a resumable checkpoint and
raises :class:`~torchkiln.errors.RunInterrupted`. Under torch.distributed the ranks agree on
the iteration to stop after (:class:`~torchkiln.runner.signals.StopAgreement`), so every rank
saves the same position.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from torchkiln.errors import EXIT_TERMINATED
from torchkiln.runner.signals import StopAgreement, StopSignals, exit_code_for, signal_name

__all__ = ["StopController"]


class StopController:
    """Holds whether training stops, why, and with which exit code.

    :param distributed: whether ranks must agree before stopping.
    :param on_stop: called once when a stop is decided (the runner tells its train loop).
    """

    def __init__(self, distributed: bool, on_stop: Callable[[], None]) -> None:
        self._distributed = distributed
        self._on_stop = on_stop
        self.stop_requested = False
        self._local = False
        self.reason: str | None = None
        self.exit_code = EXIT_TERMINATED
        self._agreement: StopAgreement | None = None

    def reset(self) -> None:
        """Forget an earlier request (a new training phase starts)."""
        self.stop_requested = self._local = False
        self.reason = None
        self.exit_code = EXIT_TERMINATED

    def request(self, reason: str = "a stop request", exit_code: int = EXIT_TERMINATED) -> None:
        """Ask training to stop after the current iteration; safe in a signal handler."""
        if self.reason is None:
            self.reason = reason
            self.exit_code = exit_code
        self._local = True
        if not self._distributed:
            self.stop_requested = True
            self._on_stop()

    def poll(self) -> bool:
        """Whether training stops now; the loops ask after each iteration (all ranks together)."""
        agreement = self._agreement
        # poll() is collective: every rank calls it, whatever its own stop_requested says.
        if (
            agreement is not None
            and agreement.distributed
            and agreement.poll(self._local)
            and not self.stop_requested
        ):
            self.stop_requested = True
            if self.reason is None:
                self.reason = "a stop request on another rank"
        if self.stop_requested:
            self._on_stop()
        return self.stop_requested

    def on_signal(self, signum: int) -> None:
        """The handler for stop signals: a request named after the signal."""
        self.request(signal_name(signum), exit_code_for(signum))

    def signals(self, before_exit: Callable[[], None]) -> StopSignals:
        """A context that turns stop signals into requests while it is active."""
        return StopSignals(self.on_signal, before_exit)

    @contextlib.contextmanager
    def agreement(self) -> Iterator[None]:
        """While training runs: the ranks' agreement on when to stop."""
        self._agreement = StopAgreement(self._distributed)
        try:
            yield
        finally:
            self._agreement.close()
            self._agreement = None

    def __repr__(self) -> str:
        return f"StopController(stop_requested={self.stop_requested}, reason={self.reason!r})"
