"""A hook plugin that is a Hook class with an argument: it counts finished training epochs."""

from __future__ import annotations

from typing import Any

from torchkiln import Hook


class EpochCounterHook(Hook):
    """Counts finished training epochs into ``example/counted_epochs`` (every ``every``-th one).

    Installed as the ``example_counter`` plugin; configure it per run with
    ``plugins: {options: {example_counter: {every: 2}}}``.
    """

    priority = "LOW"

    def __init__(self, every: int = 1) -> None:
        self.every = every
        self.counted = 0

    def after_train_epoch(self, runner: Any) -> None:
        """Count this epoch when its number is a multiple of ``every``."""
        if (runner.epoch + 1) % self.every == 0:
            self.counted += 1
            runner.message_hub.update_info("example/counted_epochs", self.counted)
