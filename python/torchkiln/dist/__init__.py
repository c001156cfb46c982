"""Distributed helpers over ``torch.distributed``: launch, rank queries and collectives.

Every function works in a single process without a process group (rank 0 of a world of 1),
so code written for many processes runs unchanged in one.

- :mod:`~torchkiln.dist.launch`: join the process group a launcher prepared (``init_dist``);
- :mod:`~torchkiln.dist.torchrun`: ``--nproc`` through torchrun, and worker error reports;
- :mod:`~torchkiln.dist.failures`: which rank caused a failed job, and which followed it;
- :mod:`~torchkiln.dist.collectives`, :mod:`~torchkiln.dist.utils`: collectives and rank queries;
- :mod:`~torchkiln.dist.groups`: the backend, per-node groups, and the devices data moves on;
- :mod:`~torchkiln.dist.fsdp`: the FSDP2 wrapper and sharded checkpoints (loaded on first use).
"""

from __future__ import annotations

from typing import Any

from torchkiln.dist.collectives import (
    all_gather,
    all_gather_object,
    all_reduce,
    all_reduce_dict,
    all_reduce_params,
    barrier,
    broadcast,
    broadcast_object,
    broadcast_object_list,
    collect_results,
    collect_results_cpu,
    collect_results_gpu,
    gather,
    gather_object,
    kept_sample_count,
    sync_random_seed,
)
from torchkiln.dist.groups import (
    cast_data_device,
    get_backend,
    get_comm_device,
    get_data_device,
    get_default_group,
    get_local_group,
    get_local_size,
    init_local_group,
)
from torchkiln.dist.launch import LAUNCHERS, find_free_port, first_slurm_host, init_dist
from torchkiln.dist.utils import (
    get_dist_info,
    get_local_rank,
    get_local_world_size,
    get_rank,
    get_world_size,
    is_distributed,
    is_main_process,
    master_only,
)

# Loaded on first use: FSDP pulls in torch.distributed.fsdp, the launcher torch.distributed.run.
_LAZY = {
    "KilnFullyShardedDataParallel": "torchkiln.dist.fsdp",
    "MMFullyShardedDataParallel": "torchkiln.dist.fsdp",
    "save_sharded_checkpoint": "torchkiln.dist.fsdp",
    "load_sharded_checkpoint": "torchkiln.dist.fsdp",
    "launch_local": "torchkiln.dist.torchrun",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'torchkiln.dist' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "LAUNCHERS",
    "KilnFullyShardedDataParallel",
    "MMFullyShardedDataParallel",
    "all_gather",
    "all_gather_object",
    "all_reduce",
    "all_reduce_dict",
    "all_reduce_params",
    "barrier",
    "broadcast",
    "broadcast_object",
    "broadcast_object_list",
    "cast_data_device",
    "collect_results",
    "collect_results_cpu",
    "collect_results_gpu",
    "find_free_port",
    "first_slurm_host",
    "gather",
    "gather_object",
    "get_backend",
    "get_comm_device",
    "get_data_device",
    "get_default_group",
    "get_dist_info",
    "get_local_group",
    "get_local_rank",
    "get_local_size",
    "get_local_world_size",
    "get_rank",
    "get_world_size",
    "init_dist",
    "init_local_group",
    "is_distributed",
    "is_main_process",
    "kept_sample_count",
    "launch_local",
    "load_sharded_checkpoint",
    "master_only",
    "save_sharded_checkpoint",
    "sync_random_seed",
]
