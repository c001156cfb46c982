"""Data: resumable samplers, collate functions, the dataloader builder and the demo dataset.

Names resolve lazily: the registry imports ``torchkiln.data._components`` (and so this
package) without pulling in torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "DefaultSampler": "torchkiln.data.samplers",
    "InfiniteSampler": "torchkiln.data.samplers",
    "DigitsDataset": "torchkiln.data.digits",
    "build_dataloader": "torchkiln.data.builder",
    "worker_init_fn": "torchkiln.data.builder",
    "default_collate": "torchkiln.data.collate",
    "pseudo_collate": "torchkiln.data.collate",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'torchkiln.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:  # pragma: no cover
    from torchkiln.data.builder import build_dataloader, worker_init_fn
    from torchkiln.data.collate import default_collate, pseudo_collate
    from torchkiln.data.digits import DigitsDataset
    from torchkiln.data.samplers import DefaultSampler, InfiniteSampler
