"""Whether the runner's lazily built training components are built yet.

As in MMEngine, ``runner.optim_wrapper`` and ``runner.param_schedulers`` hold their configs
until ``train()`` (or resuming) builds them; code that reads them before then asks these.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["optim_wrapper_built", "schedulers_built"]


def optim_wrapper_built(optim_wrapper: Any) -> bool:
    """Whether ``runner.optim_wrapper`` holds a built wrapper (not ``None`` or a config)."""
    return optim_wrapper is not None and not isinstance(optim_wrapper, Mapping)


def schedulers_built(param_schedulers: Any) -> bool:
    """Whether ``runner.param_schedulers`` holds built schedulers: a list of them, or a dict
    of such lists (one per optimizer), rather than ``None`` or a config."""
    if isinstance(param_schedulers, Mapping):
        return "type" not in param_schedulers and all(
            isinstance(value, list) and _no_configs(value) for value in param_schedulers.values()
        )
    return isinstance(param_schedulers, list) and _no_configs(param_schedulers)


def _no_configs(schedulers: list[Any]) -> bool:
    return not any(isinstance(scheduler, Mapping) for scheduler in schedulers)
