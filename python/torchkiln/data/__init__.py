"""Data: resumable samplers, collate functions, the dataloader builder and the demo dataset.

Names resolve lazily, so importing the package does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torchkiln._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "DefaultSampler": "torchkiln.data.samplers",
    "InfiniteSampler": "torchkiln.data.samplers",
    "DigitsDataset": "torchkiln.data.digits",
    "build_dataloader": "torchkiln.data.builder",
    "worker_init_fn": "torchkiln.data.builder",
    "COLLATE_FUNCTIONS": "torchkiln.data.collate",
    "default_collate": "torchkiln.data.collate",
    "pseudo_collate": "torchkiln.data.collate",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports("torchkiln.data", _EXPORTS, globals())


if TYPE_CHECKING:  # pragma: no cover
    from torchkiln.data.builder import (
        build_dataloader as build_dataloader,
        worker_init_fn as worker_init_fn,
    )
    from torchkiln.data.collate import (
        COLLATE_FUNCTIONS as COLLATE_FUNCTIONS,
        default_collate as default_collate,
        pseudo_collate as pseudo_collate,
    )
    from torchkiln.data.digits import DigitsDataset as DigitsDataset
    from torchkiln.data.samplers import (
        DefaultSampler as DefaultSampler,
        InfiniteSampler as InfiniteSampler,
    )
