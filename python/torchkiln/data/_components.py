"""Components of ``torchkiln.data``, by registry, for lazy lookup (imports nothing heavy)."""

from __future__ import annotations

COMPONENTS: dict[str, dict[str, str]] = {
    "DATA_SAMPLERS": {
        "DefaultSampler": "torchkiln.data.samplers:DefaultSampler",
        "InfiniteSampler": "torchkiln.data.samplers:InfiniteSampler",
        "BatchSampler": "torch.utils.data:BatchSampler",
    },
    "DATASETS": {
        "DigitsDataset": "torchkiln.data.digits:DigitsDataset",
    },
    "FUNCTIONS": {
        "default_collate": "torchkiln.data.collate:default_collate",
        "pseudo_collate": "torchkiln.data.collate:pseudo_collate",
        "worker_init_fn": "torchkiln.data.builder:worker_init_fn",
    },
}
