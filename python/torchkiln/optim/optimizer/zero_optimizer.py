"""ZeroRedundancyOptimizer: torch's ZeRO-1 sharded optimizer, configured by optimizer name.

``torch.distributed.optim.ZeroRedundancyOptimizer`` takes the local optimizer as a class;
a config can only name it, so this subclass takes ``optimizer_type`` (``'SGD'``,
``'AdamW'``, or any name ``OPTIMIZERS`` builds) and keeps the rest of torch's arguments.
Each rank keeps the optimizer state of its own share of the parameters; :meth:`state_dict`
gathers the whole state on rank 0 for the checkpoint (the other ranks return ``{}``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch.distributed.optim import ZeroRedundancyOptimizer as _TorchZeroRedundancyOptimizer

from torchkiln.errors import ConfigKeyError
from torchkiln.registry import OPTIMIZERS

__all__ = ["ZeroRedundancyOptimizer"]


def _optimizer_class(optimizer_type: str | type) -> type:
    if isinstance(optimizer_type, type):
        return optimizer_type
    found = getattr(torch.optim, str(optimizer_type), None)
    if isinstance(found, type) and issubclass(found, torch.optim.Optimizer):
        return found
    try:
        return OPTIMIZERS.get(optimizer_type)
    except KeyError:
        raise ConfigKeyError(
            f"ZeroRedundancyOptimizer: unknown optimizer_type {optimizer_type!r}",
            where="optim_wrapper.optimizer.optimizer_type",
            hint="name a torch.optim optimizer (SGD, AdamW, ...) or one registered in OPTIMIZERS",
        ) from None


@OPTIMIZERS.register_module()
class ZeroRedundancyOptimizer(_TorchZeroRedundancyOptimizer):
    """Shard the optimizer state across the ranks of the default process group.

    :param params: the parameters, or param groups (dicts), to optimize.
    :param optimizer_type: the local optimizer, by name (or class).
    :param kwargs: torch's ``ZeroRedundancyOptimizer`` arguments and the local optimizer's
        (``lr``, ``momentum``, ...).
    """

    def __init__(self, params: Any, optimizer_type: str | type, **kwargs: Any) -> None:
        super().__init__(list(params), _optimizer_class(optimizer_type), **kwargs)

    def state_dict(self) -> dict[str, Any]:
        """The whole optimizer state on rank 0 (gathered from every rank); ``{}`` elsewhere."""
        from torchkiln.dist import is_main_process

        self.consolidate_state_dict()
        return super().state_dict() if is_main_process() else {}
