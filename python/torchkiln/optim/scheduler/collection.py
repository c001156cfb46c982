"""A run's parameter schedulers as one flat sequence, whatever shape ``param_schedulers`` has."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from torchkiln.errors import ConfigTypeError

__all__ = ["iter_schedulers"]


def iter_schedulers(param_schedulers: Any) -> Iterator[Any]:
    """Every scheduler in ``runner.param_schedulers``: None, a list, one scheduler, or a dict
    of optimizer name to list (for an OptimWrapperDict). Configs not built yet (dicts with a
    ``type`` key, e.g. in a run that only validates) are skipped."""
    if param_schedulers is None:
        return
    if isinstance(param_schedulers, Mapping):
        if "type" in param_schedulers:
            return
        for group in param_schedulers.values():
            yield from iter_schedulers(group)
    elif isinstance(param_schedulers, (list, tuple)):
        for scheduler in param_schedulers:
            yield from iter_schedulers(scheduler)
    elif callable(getattr(param_schedulers, "step", None)):
        yield param_schedulers
    else:
        raise ConfigTypeError(
            f"runner.param_schedulers must be a scheduler, a list of them or a dict of lists, "
            f"got {type(param_schedulers).__name__}",
            where="param_scheduler",
        )
