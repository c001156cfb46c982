"""Process groups and devices: the backend, per-node groups, where collectives move data.

Under MMEngine's names (``get_backend``, ``init_local_group``, ``get_comm_device``,
``cast_data_device`` ...). Every query works in a single process without a process group.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.distributed as dist

from torchkiln.dist.utils import get_world_size, is_distributed
from torchkiln.errors import UsageTypeError, UsageValueError

__all__ = [
    "cast_data_device",
    "get_backend",
    "get_comm_device",
    "get_data_device",
    "get_default_group",
    "get_local_group",
    "get_local_size",
    "init_local_group",
]

# The group of the ranks on this node, made by init_local_group.
_local_group: Any = None

# Where each backend's collectives need their tensors.
_BACKEND_DEVICES = {"nccl": "cuda", "hccl": "npu", "cncl": "mlu", "mccl": "musa", "smddp": "cuda"}


def get_default_group() -> Any:
    """The default process group, or ``None`` when no process group exists."""
    return dist.distributed_c10d._get_default_group() if is_distributed() else None


def get_backend(group: Any = None) -> str | None:
    """The backend (``'gloo'``, ``'nccl'`` ...) of ``group`` (default: the default group), or
    ``None`` when no process group exists."""
    if not is_distributed():
        return None
    return str(dist.get_backend(group or get_default_group()))


def init_local_group(node_rank: int, num_gpus_per_node: int) -> None:
    """Make the group of this node's ranks (``num_gpus_per_node`` ranks per node).

    Every rank must call it (creating groups is collective). Node ``k``'s ranks are
    ``k * num_gpus_per_node`` to ``(k + 1) * num_gpus_per_node - 1``.
    """
    global _local_group
    if _local_group is not None:
        return
    if num_gpus_per_node < 1:
        raise UsageValueError(f"num_gpus_per_node must be at least 1, got {num_gpus_per_node}")
    world = get_world_size()
    for node in range(max(1, world // num_gpus_per_node)):
        ranks = list(range(node * num_gpus_per_node, min(world, (node + 1) * num_gpus_per_node)))
        group = dist.new_group(ranks) if is_distributed() else None
        if node == node_rank:
            _local_group = group if group is not None else "single-process"


def get_local_group() -> Any:
    """The group :func:`init_local_group` made for this node (``None`` before it ran)."""
    return None if _local_group == "single-process" else _local_group


def get_local_size() -> int:
    """How many ranks this node's group has: 1 in a single process or before
    :func:`init_local_group` ran."""
    group = get_local_group()
    if not is_distributed() or group is None:
        return 1
    return int(dist.get_world_size(group))


def get_comm_device(group: Any = None) -> torch.device:
    """The device collectives of ``group``'s backend exchange tensors on (``cpu`` for gloo)."""
    backend = get_backend(group)
    kind = _BACKEND_DEVICES.get(backend or "", "cpu")
    if kind == "cuda" and torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device(kind)


def get_data_device(data: Any) -> torch.device:
    """The device of ``data``: a tensor, or a list/tuple/mapping of tensors all on one device.

    :raises TypeError: for other data, or for containers holding no tensor.
    :raises ValueError: when the tensors of a container are on different devices.
    """
    if isinstance(data, torch.Tensor):
        return data.device
    if isinstance(data, Mapping):
        items = list(data.values())
    elif isinstance(data, (list, tuple)):
        items = list(data)
    else:
        raise UsageTypeError(
            f"get_data_device takes a tensor, or a list, tuple or dict of tensors; got "
            f"{type(data).__name__}"
        )
    devices = {get_data_device(item) for item in items}
    if not devices:
        raise UsageTypeError("get_data_device: the container holds no tensor")
    if len(devices) > 1:
        raise UsageValueError(
            f"get_data_device: the tensors are on different devices: {sorted(map(str, devices))}"
        )
    return devices.pop()


def cast_data_device(data: Any, device: torch.device | str, out: Any = None) -> Any:
    """``data`` (a tensor, or nested lists, tuples and dicts of tensors) moved to ``device``.

    :param out: optional containers of the same structure to copy the values into (in
        place); then ``out`` is returned.
    :raises TypeError: for other data, or when ``out`` has another structure.
    """
    if isinstance(data, torch.Tensor):
        moved = data.to(device)
        if out is None:
            return moved
        if not isinstance(out, torch.Tensor):
            raise UsageTypeError(f"cast_data_device: out must be a tensor here, got {type(out)}")
        out.copy_(moved)
        return out
    if isinstance(data, Mapping):
        if out is not None and (not isinstance(out, Mapping) or set(out) != set(data)):
            raise UsageTypeError("cast_data_device: out must be a dict with the same keys")
        moved_map = {
            key: cast_data_device(value, device, None if out is None else out[key])
            for key, value in data.items()
        }
        return type(data)(moved_map) if out is None else out  # type: ignore[call-arg]
    if isinstance(data, (list, tuple)):
        if out is not None and (not isinstance(out, (list, tuple)) or len(out) != len(data)):
            raise UsageTypeError("cast_data_device: out must be a sequence of the same length")
        moved_items = [
            cast_data_device(item, device, None if out is None else out[i])
            for i, item in enumerate(data)
        ]
        return type(data)(moved_items) if out is None else out
    raise UsageTypeError(
        f"cast_data_device takes a tensor, or lists, tuples or dicts of tensors; got "
        f"{type(data).__name__}"
    )
