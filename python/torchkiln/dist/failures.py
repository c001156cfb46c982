"""What went wrong when a multi-process job fails: which rank caused it, and which followed.

When one rank dies (an exception, a signal), the others fail soon after, inside a collective
whose peer is gone (gloo: "Connection reset by peer"; NCCL: "remote process exited"). Those
errors are consequences, not causes. Each worker records its error for the launcher with
the exact time, its exit code and whether it was such a consequence
(:func:`record_worker_error`); the launcher reads the records back
(:func:`failures_from_records`), lists the causes first, earliest first
(:func:`order_failures`), and prints the report (:func:`format_report`).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import traceback
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

__all__ = [
    "WorkerFailure",
    "describe_peer_loss",
    "failures_from_records",
    "format_report",
    "is_peer_loss",
    "job_exit_code",
    "order_failures",
    "record_worker_error",
]

#: The key of torchkiln's own entries in a worker's error file (next to torch's ``message``).
RECORD_KEY = "torchkiln"

# How a collective reports a peer that is gone. Matched only in errors that come from a
# process group (see is_peer_loss), so a hook's own network error is never mistaken for one.
_PEER_GONE = (
    "connection reset by peer",
    "connection closed by peer",
    "broken pipe",
    "remote process exited",
    "ncclremoteerror",
    "socket closed",
)
_FROM_PROCESS_GROUP = ("gloo", "nccl", "processgroup", "c10d", "tcpstore")

# What usually sends each signal to a worker that raised nothing itself.
_SIGNAL_HINTS = {
    "SIGKILL": "it raised no error: something outside the job ended it "
    "(the kernel's out-of-memory killer sends SIGKILL)",
    "SIGSEGV": "it crashed in native code (a segmentation fault)",
    "SIGBUS": "it crashed in native code (a bus error)",
    "SIGABRT": "native code aborted it (a failed check in a library)",
    "SIGTERM": "something outside the job asked it to stop",
    "SIGINT": "it was interrupted",
}


def _chain(exc: BaseException) -> Iterable[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def is_peer_loss(exc: BaseException) -> bool:
    """True when ``exc`` (or an exception it wraps) is a collective failing because another
    rank's process is gone: an echo of that rank's failure, not an error of this one."""
    dist = sys.modules.get("torch.distributed")
    dist_error = getattr(dist, "DistError", None) if dist is not None else None
    for item in _chain(exc):
        text = str(item).lower()
        from_group = (dist_error is not None and isinstance(item, dist_error)) or any(
            marker in text for marker in _FROM_PROCESS_GROUP
        )
        if from_group and any(words in text for words in _PEER_GONE):
            return True
    return False


def _first_line(text: str, limit: int = 300) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


def describe_peer_loss(exc: BaseException, rank: int | None = None) -> str:
    """The one line a worker prints when its collective failed because another rank left."""
    who = f"rank {rank}" if rank is not None else "this rank"
    return (
        f"error: {who} stopped: a collective operation failed because another rank left the job "
        f"({type(exc).__name__}: {_first_line(str(exc))}). This is a consequence: the other "
        "rank's error (above, or in the launcher's report) is the cause"
    )


def record_worker_error(exc: BaseException, exit_code: int | None = None) -> None:
    """Write ``exc`` to the error file torchrun gave this worker (``TORCHELASTIC_ERROR_FILE``).

    The file has torch's layout (torchrun shows the message in its own summary) plus
    torchkiln's record: the time to the microsecond, ``exit_code``, the rank, and whether the
    error is a lost peer (:func:`is_peer_loss`). Does nothing outside torchrun; never raises.
    """
    path = os.environ.get("TORCHELASTIC_ERROR_FILE")
    if not path:
        return
    try:
        now = time.time()
        rank = os.environ.get("RANK")
        data = {
            "message": {
                "message": f"{type(exc).__name__}: {exc}",
                "extraInfo": {
                    "py_callstack": "".join(
                        traceback.format_exception(type(exc), exc, exc.__traceback__)
                    ),
                    "timestamp": str(int(now)),
                },
            },
            RECORD_KEY: {
                "time": now,
                "exit_code": exit_code,
                "rank": int(rank) if rank and rank.isdigit() else None,
                "peer_loss": is_peer_loss(exc),
            },
        }
        tmp = f"{path}.tmp{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
        os.replace(tmp, path)
    except Exception:  # reporting must never hide the original error
        pass


@attrs.frozen
class WorkerFailure:
    """One failed worker as the launcher saw it.

    :param rank: the global rank.
    :param local_rank: the rank on its node.
    :param exitcode: the process's exit status (negative: killed by that signal); None when
        the launcher stopped it after it had written its error but before it exited.
    :param message: its error message ("" when it wrote none).
    :param time: when it failed (seconds since the epoch): the worker's own record when it
        wrote one, else when the launcher noticed the exit.
    :param peer_loss: its error was a collective failing because another rank was gone.
    :param recorded_exit: the exit code the worker chose for its error, when it recorded one.
    """

    rank: int
    local_rank: int
    exitcode: int | None
    message: str
    time: float
    peer_loss: bool = False
    recorded_exit: int | None = None

    @property
    def signal_name(self) -> str | None:
        """``'SIGKILL'`` and the like when a signal ended the process, else None."""
        if self.exitcode is None or self.exitcode >= 0:
            return None
        try:
            return signal.Signals(-self.exitcode).name
        except ValueError:
            return f"signal {-self.exitcode}"

    @property
    def exit_code(self) -> int:
        """The exit code this failure stands for (``128 + n`` for signal ``n``)."""
        if self.exitcode is not None and self.exitcode < 0:
            return 128 - self.exitcode
        if self.exitcode:
            return self.exitcode
        return self.recorded_exit or 1


def _message(raw: Any) -> str:
    if isinstance(raw, Mapping):  # torch's structured error file
        raw = raw.get("message", "") or str(raw)
    message = str(raw or "").strip()
    if message.startswith("To enable traceback") or message.startswith("Signal "):
        message = ""  # torchrun's placeholders when the worker wrote no error file
    return message


def _looks_like_peer_loss(message: str) -> bool:
    text = message.lower()
    return any(m in text for m in _FROM_PROCESS_GROUP) and any(w in text for w in _PEER_GONE)


def failure_from_record(
    rank: int,
    local_rank: int,
    exitcode: int | None,
    data: Mapping[str, Any] | None,
    noticed: float,
) -> WorkerFailure:
    """A :class:`WorkerFailure` from a worker's error file contents (``data``, may be None).

    :param noticed: when the launcher saw the exit; the time of a worker without a record.
    """
    data = data or {}
    message = _message(data.get("message"))
    own = data.get(RECORD_KEY)
    if isinstance(own, Mapping):
        recorded = own.get("exit_code")
        return WorkerFailure(
            rank,
            local_rank,
            exitcode,
            message,
            float(own.get("time") or noticed),
            bool(own.get("peer_loss")),
            int(recorded) if isinstance(recorded, int) else None,
        )
    stamp = noticed
    raw = data.get("message")
    try:  # torch's own layout: whole seconds
        if isinstance(raw, Mapping):
            stamp = float(raw["extraInfo"]["timestamp"])
        elif "timestamp" in data:
            stamp = float(data["timestamp"])
    except (KeyError, TypeError, ValueError):
        pass
    return WorkerFailure(rank, local_rank, exitcode, message, stamp, _looks_like_peer_loss(message))


def failures_from_records(
    records: Iterable[tuple[int, int, int | None, str, float]],
) -> list[WorkerFailure]:
    """Failures from ``(rank, local_rank, exitcode, error_file, noticed)`` rows.

    The error file (when it exists) is read for the message and torchkiln's record.
    """
    out = []
    for rank, local_rank, exitcode, error_file, noticed in records:
        data = None
        if error_file and os.path.isfile(error_file):
            try:
                with open(error_file, encoding="utf-8") as fh:
                    loaded = json.load(fh)
                data = loaded if isinstance(loaded, Mapping) else None
            except (OSError, ValueError):
                data = None
        out.append(failure_from_record(rank, local_rank, exitcode, data, noticed))
    return out


def order_failures(failures: Iterable[WorkerFailure]) -> list[WorkerFailure]:
    """Causes first, then consequences (lost peers); each group earliest first, then by rank.

    A worker killed by a signal is a cause: the launcher stops the survivors only after it
    noticed the failures it reports.
    """
    return sorted(failures, key=lambda f: (f.peer_loss, f.time, f.rank))


def _who(failure: WorkerFailure) -> str:
    return f"rank {failure.rank} (local rank {failure.local_rank})"


def _describe(failure: WorkerFailure) -> str:
    if failure.signal_name is not None:
        text = f"{_who(failure)} was killed by {failure.signal_name}"
        hint = _SIGNAL_HINTS.get(failure.signal_name)
        if failure.message:
            return f"{text}: {_first_line(failure.message)}"
        return f"{text}; {hint}" if hint else text
    status = "failed" if failure.exitcode is None else f"failed with exit code {failure.exitcode}"
    # The first line names the error; the rest (location, hints, traceback) is in the
    # worker's own output above.
    detail = _first_line(failure.message)
    return f"{_who(failure)} {status}" + (f": {detail}" if detail else " (its output is above)")


def format_report(failures: Iterable[WorkerFailure]) -> list[str]:
    """The report's lines, the cause first (see :func:`order_failures`)."""
    ordered = order_failures(failures)
    if not ordered:
        return []
    cause = ordered[0]
    lines = [f"error: {_describe(cause)}"]
    for failure in ordered[1:]:
        if failure.peer_loss and not cause.peer_loss:
            lines.append(
                f"  then {_who(failure)} stopped: its collective failed because rank "
                f"{cause.rank} was gone ({_first_line(failure.message, 160)})"
            )
        else:
            lines.append(f"  also: {_describe(failure)}")
    if cause.peer_loss:
        lines.append(
            "  no rank reported an error of its own: every failure is a collective whose peer "
            "left (look for a rank that was stopped from outside, e.g. in the system log)"
        )
    elif any(not f.peer_loss for f in ordered[1:]):
        lines.append(
            f"  rank {cause.rank} failed first (the cause, listed first); "
            "the others failed after it"
        )
    return lines


def job_exit_code(failures: Iterable[WorkerFailure]) -> int:
    """The job's exit code: the cause's (``128 + n`` when signal ``n`` killed it)."""
    ordered = order_failures(failures)
    return ordered[0].exit_code if ordered else 1
