"""MMEngine's ``mmengine.dataset.utils`` import path: the collate functions, their registry
and the dataloader workers' seeding function, as :mod:`torchkiln.data` defines them."""

from __future__ import annotations

from torchkiln.data.builder import worker_init_fn
from torchkiln.data.collate import COLLATE_FUNCTIONS, default_collate, pseudo_collate

__all__ = ["COLLATE_FUNCTIONS", "default_collate", "pseudo_collate", "worker_init_fn"]
