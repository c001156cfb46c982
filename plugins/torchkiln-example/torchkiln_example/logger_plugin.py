"""``example_logger``: a hook plugin made of module-level functions.

Each function named after a mount point runs there, with the runner as first argument.
This one counts finished training epochs in the message hub (``example/epochs_finished``)
and logs at debug level, so it stays quiet in normal runs.
"""

from __future__ import annotations

from typing import Any

__all__ = ["after_train_epoch", "before_run"]

COUNTER_KEY = "example/epochs_finished"


def before_run(runner: Any) -> None:
    """Start the epoch counter at zero."""
    runner.message_hub.update_info(COUNTER_KEY, 0)


def after_train_epoch(runner: Any) -> None:
    """Count the finished epoch and log it."""
    done = int(runner.message_hub.get_info(COUNTER_KEY, 0) or 0) + 1
    runner.message_hub.update_info(COUNTER_KEY, done)
    runner.logger.debug(f"example_logger: {done} training epoch(s) finished (epoch {runner.epoch})")
