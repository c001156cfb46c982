"""Join the process group a launcher prepared: torchrun (``pytorch``), SLURM or OpenMPI.

torchkiln never spawns its own workers here: the launcher starts the processes and sets
environment variables; :func:`init_dist` reads them, picks the backend and the CUDA device,
and calls ``torch.distributed.init_process_group``.
"""

from __future__ import annotations

import datetime
import os
import shutil
import socket
import subprocess
from typing import Any

import torch
import torch.distributed as dist

from torchkiln.dist.utils import get_dist_info
from torchkiln.errors import UsageError, did_you_mean

__all__ = ["DEFAULT_PORT", "LAUNCHERS", "find_free_port", "first_slurm_host", "init_dist"]

LAUNCHERS = ("none", "pytorch", "slurm", "mpi")
DEFAULT_PORT = 29500


def find_free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on right now (for local multi-process runs)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside ``[...]``."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p for p in (s.strip() for s in parts) if p]


def first_slurm_host(nodelist: str) -> str:
    """The first host name of a SLURM node list, e.g. ``'gpu[03-05,9],cpu1'`` -> ``'gpu03'``.

    Each bracketed range contributes its first element (zero padding kept), which is what
    ``scontrol show hostnames`` prints first.
    """
    items = _split_top_level(nodelist)
    if not items:
        raise UsageError(f"empty SLURM node list {nodelist!r}", where="SLURM_NODELIST")
    first, out, i = items[0], [], 0
    while i < len(first):
        ch = first[i]
        if ch == "[":
            end = first.index("]", i)
            choice = first[i + 1 : end].split(",")[0].split("-")[0]
            out.append(choice)
            i = end + 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _slurm_master_addr(nodelist: str) -> str:
    if shutil.which("scontrol"):
        try:
            text = subprocess.run(
                ["scontrol", "show", "hostnames", nodelist],
                capture_output=True,
                text=True,
                check=True,
                timeout=30,
            ).stdout
            hosts = text.split()
            if hosts:
                return hosts[0]
        except (subprocess.SubprocessError, OSError):
            pass
    return first_slurm_host(nodelist)


def _require_env(names: tuple[str, ...], launcher: str, how: str) -> dict[str, str]:
    missing = [n for n in names if n not in os.environ]
    if missing:
        raise UsageError(
            f"launcher {launcher!r} needs the environment variable(s) {', '.join(missing)}",
            where=f"launcher: {launcher}",
            hint=how,
        )
    return {n: os.environ[n] for n in names}


def _resolve_port(port: int | None) -> None:
    if port is not None:
        os.environ["MASTER_PORT"] = str(port)
    else:
        os.environ.setdefault("MASTER_PORT", str(DEFAULT_PORT))


def init_dist(
    launcher: str | None,
    backend: str | None = None,
    timeout: float | datetime.timedelta | None = None,
    port: int | None = None,
    **kwargs: Any,
) -> tuple[int, int]:
    """Initialise the default process group from the launcher's environment.

    :param launcher: ``'none'`` (do nothing), ``'pytorch'`` (torchrun: ``RANK``,
        ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``), ``'slurm'``
        (``SLURM_PROCID``, ``SLURM_NTASKS``, ``SLURM_LOCALID``, ``SLURM_NODELIST``; the master
        is the first node) or ``'mpi'`` (``OMPI_COMM_WORLD_RANK``, ``_SIZE``, ``_LOCAL_RANK``).
    :param backend: ``'nccl'`` when CUDA is available, else ``'gloo'``, unless given
        (``'nccl'`` without CUDA is a :class:`~torchkiln.errors.UsageError`).
    :param timeout: seconds (or a ``timedelta``) for collectives; torch's default if None.
    :param port: master port for ``slurm``/``mpi`` (else ``MASTER_PORT`` or 29500); with
        ``pytorch`` it only fills ``MASTER_PORT`` when the launcher left it unset.
    :param kwargs: passed on to ``torch.distributed.init_process_group`` (e.g. ``init_method``;
        ``device_id`` may be a CUDA device index). ``None`` values are left out, so every key
        of ``env_cfg.dist_cfg`` may be null.
    :return: ``(rank, world_size)``.

    Sets the current CUDA device to the local rank when CUDA is available. Calling it again
    once a process group exists does nothing.
    """
    name = "none" if launcher is None else str(launcher).lower()
    if name not in LAUNCHERS:
        raise UsageError(
            f"unknown launcher {launcher!r}",
            where="launcher",
            hint=(did_you_mean(name, LAUNCHERS) or "") + f" choose one of: {', '.join(LAUNCHERS)}",
        )
    if name == "none" or (dist.is_available() and dist.is_initialized()):
        return get_dist_info()
    if not dist.is_available():
        raise UsageError(
            "this torch build has no torch.distributed support", where=f"launcher: {name}"
        )

    if name == "pytorch":
        env = _require_env(
            ("RANK", "WORLD_SIZE"), name, "start the job with `torchrun --nproc-per-node N ...`"
        )
        rank, world_size = int(env["RANK"]), int(env["WORLD_SIZE"])
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        if port is not None:
            os.environ.setdefault("MASTER_PORT", str(port))
        os.environ.setdefault("MASTER_PORT", str(DEFAULT_PORT))
    elif name == "slurm":
        env = _require_env(
            ("SLURM_PROCID", "SLURM_NTASKS", "SLURM_NODELIST"),
            name,
            "start the job with `srun` inside an allocation",
        )
        rank, world_size = int(env["SLURM_PROCID"]), int(env["SLURM_NTASKS"])
        local_rank = int(os.environ.get("SLURM_LOCALID", "0"))
        _resolve_port(port)
        os.environ.setdefault("MASTER_ADDR", _slurm_master_addr(env["SLURM_NODELIST"]))
        per_node = os.environ.get("SLURM_NTASKS_PER_NODE", "")
        if per_node.isdigit():
            os.environ.setdefault("LOCAL_WORLD_SIZE", per_node)
    else:  # mpi
        env = _require_env(
            ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"),
            name,
            "start the job with OpenMPI's `mpirun -n N ...`",
        )
        rank, world_size = int(env["OMPI_COMM_WORLD_RANK"]), int(env["OMPI_COMM_WORLD_SIZE"])
        local_rank = int(os.environ.get("OMPI_COMM_WORLD_LOCAL_RANK", "0"))
        _resolve_port(port)
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        if "OMPI_COMM_WORLD_LOCAL_SIZE" in os.environ:
            os.environ.setdefault("LOCAL_WORLD_SIZE", os.environ["OMPI_COMM_WORLD_LOCAL_SIZE"])

    # Later code (and torch itself) reads the torchrun names, whatever the launcher.
    os.environ["RANK"] = str(rank)
    os.environ["WORLD_SIZE"] = str(world_size)
    os.environ["LOCAL_RANK"] = str(local_rank)

    cuda = torch.cuda.is_available()
    if backend is None:
        backend = "nccl" if cuda else "gloo"
    if str(backend).lower() == "nccl" and not cuda:
        raise UsageError(
            f"env_cfg.dist_cfg.backend is {backend!r} but this machine has no usable CUDA device",
            where="env_cfg.dist_cfg.backend",
            hint="use backend: gloo for CPU training, or leave backend out to pick it automatically",
        )
    if cuda:
        torch.cuda.set_device(local_rank % max(torch.cuda.device_count(), 1))
    if timeout is not None and not isinstance(timeout, datetime.timedelta):
        timeout = datetime.timedelta(seconds=float(timeout))
    init_kwargs: dict[str, Any] = {"backend": backend, "rank": rank, "world_size": world_size}
    init_kwargs.setdefault("init_method", "env://")
    if timeout is not None:
        init_kwargs["timeout"] = timeout
    device_id = kwargs.pop("device_id", None)
    if device_id is not None:
        # An int names a CUDA device; binding the group to it lets NCCL connect eagerly.
        init_kwargs["device_id"] = (
            torch.device("cuda", int(device_id))
            if isinstance(device_id, int)
            else torch.device(device_id)
        )
    init_kwargs.update({k: v for k, v in kwargs.items() if v is not None})
    dist.init_process_group(**init_kwargs)
    return get_dist_info()
