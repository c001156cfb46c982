"""Distributed helpers over ``torch.distributed``: launch, rank queries and collectives.

Every function works in a single process without a process group (rank 0 of a world of 1),
so code written for many processes runs unchanged in one.
"""

from __future__ import annotations

from torchkiln.dist.collectives import (
    all_gather,
    all_gather_object,
    all_reduce,
    barrier,
    broadcast,
    broadcast_object,
    collect_results,
    sync_random_seed,
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

__all__ = [
    "LAUNCHERS",
    "all_gather",
    "all_gather_object",
    "all_reduce",
    "barrier",
    "broadcast",
    "broadcast_object",
    "collect_results",
    "find_free_port",
    "first_slurm_host",
    "get_dist_info",
    "get_local_rank",
    "get_local_world_size",
    "get_rank",
    "get_world_size",
    "init_dist",
    "is_distributed",
    "is_main_process",
    "master_only",
    "sync_random_seed",
]
