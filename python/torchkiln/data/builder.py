"""Build a ``torch.utils.data.DataLoader`` from an MMEngine-style dataloader config.

Keys: ``dataset`` (a config built through DATASETS, or an object), ``sampler`` (a config
built through DATA_SAMPLERS, or an object; default :class:`DefaultSampler` with
``shuffle``), ``batch_sampler`` (optional, through DATA_SAMPLERS), ``collate_fn`` (a FUNCTIONS
config, name or callable; default ``pseudo_collate``, as in MMEngine), ``worker_init_fn``
(same; default seeds each worker), ``num_batch_per_epoch`` (use only the first
``num_batch_per_epoch * batch_size * world_size`` samples: quick trial runs), and the
DataLoader's own arguments (``batch_size``, ``num_workers``, ``persistent_workers``,
``pin_memory``, ``drop_last``, ``prefetch_factor``, ``generator``, ...).

A ``collate_fn`` or ``worker_init_fn`` config becomes ``functools.partial(function, **rest)``,
as in MMEngine.
"""

from __future__ import annotations

import functools
import inspect
import random
import signal
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from torchkiln.data.collate import pseudo_collate
from torchkiln.data.samplers import DefaultSampler
from torchkiln.dist import get_dist_info
from torchkiln.errors import BuildError, BuildKeyError, BuildTypeError, did_you_mean
from torchkiln.registry import DATA_SAMPLERS, DATASETS, FUNCTIONS

__all__ = ["build_dataloader", "worker_init_fn"]

_OWN_KEYS = (
    "dataset",
    "sampler",
    "batch_sampler",
    "collate_fn",
    "worker_init_fn",
    "shuffle",
    "num_batch_per_epoch",
)
_LOADER_KEYS = tuple(
    name
    for name in inspect.signature(DataLoader.__init__).parameters
    if name
    not in (
        "self",
        "dataset",
        "sampler",
        "batch_sampler",
        "collate_fn",
        "worker_init_fn",
        "shuffle",
    )
)
# Only meaningful with worker processes; torch rejects them otherwise.
_WORKER_ONLY_KEYS = ("persistent_workers", "prefetch_factor", "multiprocessing_context", "timeout")


@FUNCTIONS.register_module()
def worker_init_fn(worker_id: int, num_workers: int, rank: int, seed: int | None) -> None:
    """Seed ``random``, ``numpy`` and ``torch`` in a DataLoader worker.

    With a ``seed`` every worker gets ``seed + rank * num_workers + worker_id``: distinct per
    rank and worker, the same in every run. Without one, numpy and ``random`` follow the
    seed torch already gave the worker, so workers never share numpy's global stream.
    Per-epoch randomness belongs in the dataset (see ``DigitsDataset.set_epoch``).

    Workers ignore SIGINT, SIGTERM and SIGUSR1: Ctrl-C and schedulers (SLURM) signal every
    process of the job, and a worker dying of it mid-batch would crash the main process
    instead of letting it finish the iteration and save a checkpoint. The main process ends
    its workers itself (and they exit when it dies).
    """
    _ignore_stop_signals()
    if seed is None:
        worker_seed = torch.initial_seed() % 2**32
    else:
        worker_seed = (int(seed) + rank * num_workers + worker_id) % 2**32
        torch.manual_seed(worker_seed)
    random.seed(worker_seed)
    np.random.seed(worker_seed)


def _ignore_stop_signals() -> None:
    for name in ("SIGINT", "SIGTERM", "SIGUSR1"):
        signum = getattr(signal, name, None)
        if signum is not None:
            try:
                signal.signal(signum, signal.SIG_IGN)
            except (OSError, ValueError):  # not the main thread of the worker: leave it
                pass


def _accepts(func: Any, name: str) -> bool:
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def _function(
    value: Any, where: str, inject: Mapping[str, Any] | None = None
) -> Callable[..., Any]:
    """A callable from a FUNCTIONS config ``{type: name, **kwargs}``, a name or a callable."""
    if isinstance(value, str):
        try:
            return FUNCTIONS.get(value)
        except KeyError as exc:
            raise BuildTypeError(
                f"{where} should be a dict or callable object (or the name of a registered"
                f" function), got {value!r}, which is not registered",
                where=where,
                hint=getattr(exc, "hint", None),
            ) from None
    if isinstance(value, Mapping):
        kwargs = dict(value)
        if "type" not in kwargs:
            raise BuildKeyError(
                f"{where} needs a 'type' key", where=where, hint="e.g. {type: default_collate}"
            )
        func = FUNCTIONS.get(kwargs.pop("type"))
        if not callable(func):
            raise BuildTypeError(f"{where}: {func!r} is not callable", where=where)
        for key, val in (inject or {}).items():
            if key not in kwargs and _accepts(func, key):
                kwargs[key] = val
        return functools.partial(func, **kwargs)
    if callable(value):
        return value
    raise BuildTypeError(
        f"{where} must be a callable, a registered name or a config dict, got {value!r}",
        where=where,
    )


def _sampler_defaults(
    cls: Any, dataset: Any, seed: int | None, shuffle: bool | None
) -> dict[str, Any]:
    defaults: dict[str, Any] = {}
    if _accepts(cls, "dataset"):
        defaults["dataset"] = dataset
    elif _accepts(cls, "data_source"):  # torch's own samplers
        defaults["data_source"] = dataset
    if seed is not None and _accepts(cls, "seed"):
        defaults["seed"] = seed
    if shuffle is not None and _accepts(cls, "shuffle"):
        defaults["shuffle"] = shuffle
    return defaults


def _first_samples(dataset: Any, num_batches: Any, batch_size: Any, name: str) -> Any:
    """The first ``num_batches`` batches' worth of samples of ``dataset`` (every rank's)."""
    if isinstance(num_batches, bool) or not isinstance(num_batches, int) or num_batches < 1:
        raise BuildError(
            f"{name}.num_batch_per_epoch must be a positive int, got {num_batches!r}",
            where=f"{name}.num_batch_per_epoch",
        )
    _, world_size = get_dist_info()
    count = num_batches * int(batch_size or 1) * world_size
    if not hasattr(dataset, "__len__") or count >= len(dataset):
        return dataset
    subset = Subset(dataset, range(count))
    metainfo = getattr(dataset, "metainfo", None)
    if metainfo is not None:
        subset.metainfo = metainfo  # type: ignore[attr-defined]  # evaluators and checkpoints read it
    return subset


def build_dataloader(
    cfg: Mapping[str, Any] | DataLoader,
    *,
    seed: int | None = None,
    diff_rank_seed: bool = False,
    name: str = "dataloader",
) -> DataLoader:
    """Build a DataLoader from ``cfg``; an already built DataLoader is returned unchanged.

    :param cfg: the dataloader config (see the module docstring).
    :param seed: the run's seed: the sampler's seed (unless the sampler config sets one), the
        base of worker seeds, and the seed of the DataLoader's own ``generator`` (unless one
        is given), which keeps iterator creation off the global torch RNG.
    :param diff_rank_seed: ranks use different seeds; the sampler then takes a seed shared
        through :func:`torchkiln.dist.sync_random_seed` so shards stay disjoint.
    :param name: the config key, for error messages (e.g. ``'train_dataloader'``).
    :raises BuildError: an unknown key (with a suggestion), a missing dataset, conflicting
        batch options, or a component that cannot be built.
    """
    if isinstance(cfg, DataLoader):
        return cfg
    if not isinstance(cfg, Mapping):
        raise BuildTypeError(
            f"{name} must be a DataLoader or a config dict, got {type(cfg).__name__}", where=name
        )
    cfg = dict(cfg)
    allowed = (*_OWN_KEYS, *_LOADER_KEYS)
    for key in cfg:
        if key not in allowed:
            raise BuildTypeError(
                f"unknown {name} key {key!r}",
                where=f"{name}.{key}",
                hint=(did_you_mean(key, allowed) or "") + f" accepted: {', '.join(allowed)}",
            )
    if "dataset" not in cfg:
        raise BuildKeyError(
            f"{name} needs a 'dataset'", where=name, hint="add dataset: {type: <Name>, ...}"
        )

    rank, _ = get_dist_info()
    dataset = cfg.pop("dataset")
    if isinstance(dataset, Mapping):
        dataset = DATASETS.build(dataset)
    if hasattr(dataset, "full_init"):
        dataset.full_init()
    num_batch_per_epoch = cfg.pop("num_batch_per_epoch", None)
    if num_batch_per_epoch is not None:
        dataset = _first_samples(dataset, num_batch_per_epoch, cfg.get("batch_size", 1), name)

    sampler_seed = None if diff_rank_seed else seed
    shuffle = cfg.pop("shuffle", None)
    sampler_cfg = cfg.pop("sampler", None)
    if sampler_cfg is None:
        sampler = DefaultSampler(
            dataset, shuffle=True if shuffle is None else bool(shuffle), seed=sampler_seed
        )
    elif isinstance(sampler_cfg, Mapping):
        if "type" not in sampler_cfg:
            raise BuildKeyError(
                f"{name}.sampler needs a 'type' key",
                where=f"{name}.sampler",
                hint="e.g. {type: DefaultSampler, shuffle: true}",
            )
        sampler_cls = DATA_SAMPLERS.get(sampler_cfg["type"])
        defaults = _sampler_defaults(sampler_cls, dataset, sampler_seed, shuffle)
        sampler = DATA_SAMPLERS.build(sampler_cfg, default_args=defaults)
    else:
        sampler = sampler_cfg

    loader_kwargs: dict[str, Any] = {}
    batch_sampler_cfg = cfg.pop("batch_sampler", None)
    if batch_sampler_cfg is not None:
        if isinstance(batch_sampler_cfg, Mapping):
            batch_defaults: dict[str, Any] = {
                "sampler": sampler,
                "batch_size": cfg.pop("batch_size", 1),
            }
            if "drop_last" in cfg:
                batch_defaults["drop_last"] = cfg.pop("drop_last")
            loader_kwargs["batch_sampler"] = DATA_SAMPLERS.build(
                batch_sampler_cfg, default_args=batch_defaults
            )
        else:
            conflicting = [k for k in ("batch_size", "drop_last") if k in cfg]
            if conflicting:
                raise BuildError(
                    f"{name}: {', '.join(conflicting)} cannot be combined with a built batch_sampler",
                    where=f"{name}.batch_sampler",
                    hint="set them on the batch sampler instead",
                )
            loader_kwargs["batch_sampler"] = batch_sampler_cfg
    else:
        loader_kwargs["sampler"] = sampler

    loader_kwargs["collate_fn"] = _function(
        cfg.pop("collate_fn", pseudo_collate), f"{name}.collate_fn"
    )

    num_workers = int(cfg.get("num_workers", 0))
    if num_workers == 0:
        for key in _WORKER_ONLY_KEYS:
            cfg.pop(key, None)
    context = {"num_workers": num_workers, "rank": rank, "seed": seed}
    init_cfg = cfg.pop("worker_init_fn", None)
    if init_cfg is None:
        loader_kwargs["worker_init_fn"] = functools.partial(worker_init_fn, **context)
    else:
        loader_kwargs["worker_init_fn"] = _function(
            init_cfg, f"{name}.worker_init_fn", inject=context
        )

    generator = cfg.pop("generator", None)
    if isinstance(generator, int) and not isinstance(generator, bool):
        generator = torch.Generator().manual_seed(generator)
    if generator is None and seed is not None:
        # Every DataLoader iterator draws a worker base seed; from a private generator that
        # draw leaves the global torch RNG (dropout, init, ...) untouched, so model
        # randomness does not depend on how often or where a dataloader was (re)started.
        generator = torch.Generator().manual_seed(int(seed) % 2**63)
    if generator is not None:
        loader_kwargs["generator"] = generator

    loader_kwargs.update(cfg)
    try:
        return DataLoader(dataset, **loader_kwargs)
    except (TypeError, ValueError) as exc:
        raise BuildError(f"cannot build {name}: {exc}", where=name) from exc
