"""MMEngine's ``mmengine.dataset`` import path: the same names as :mod:`torchkiln.data`.

Code written for MMEngine imports samplers and collate functions from ``dataset``; here they
are the objects :mod:`torchkiln.data` defines (one registry entry, one class), resolved
lazily so importing this package does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torchkiln._lazy import lazy_exports
from torchkiln.data import _EXPORTS as _DATA_EXPORTS

_EXPORTS: dict[str, str] = dict(_DATA_EXPORTS)

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports("torchkiln.dataset", _EXPORTS, globals())


if TYPE_CHECKING:  # pragma: no cover
    from torchkiln.data import (
        COLLATE_FUNCTIONS as COLLATE_FUNCTIONS,
        DefaultSampler as DefaultSampler,
        DigitsDataset as DigitsDataset,
        InfiniteSampler as InfiniteSampler,
        build_dataloader as build_dataloader,
        default_collate as default_collate,
        pseudo_collate as pseudo_collate,
        worker_init_fn as worker_init_fn,
    )
