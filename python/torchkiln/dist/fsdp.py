"""Fully sharded data parallel training with FSDP2 (``torch.distributed.fsdp.fully_shard``).

``model_wrapper_cfg: {type: FSDPWrapper, shard_modules: [Block]}`` shards every ``Block``
and then the whole model: each rank keeps only its slice of the parameters, gradients and
optimizer state, and gathers a layer's parameters just for its forward and backward pass.

Checkpoints come in two forms:

- **full** (what the runner writes): ``state_dict()`` of the sharded model and
  ``state_dict()`` of its optimizers gather every tensor into whole tensors, so a
  checkpoint holds exactly what a single-process run would hold: it loads into a plain model
  (``load_from`` in one process, inference), and a full checkpoint loads back into a sharded
  model on any number of ranks (each rank keeps its slice). Gathering is collective: every
  rank must call ``state_dict()`` together (the runner does: each rank builds the checkpoint,
  rank 0 writes it).
- **sharded** (:func:`save_sharded_checkpoint` / :func:`load_sharded_checkpoint`): every
  rank writes and reads only its own slices with ``torch.distributed.checkpoint`` (DCP) into
  a folder, without ever holding a whole tensor; for models too large to gather.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from torchkiln.errors import ConfigError, UsageTypeError
from torchkiln.registry import MODEL_WRAPPERS

__all__ = [
    "KilnFullyShardedDataParallel",
    "MMFullyShardedDataParallel",
    "load_sharded_checkpoint",
    "save_sharded_checkpoint",
]

_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
}


def _dtype(value: Any, where: str) -> torch.dtype | None:
    if value is None or isinstance(value, torch.dtype):
        return value
    key = str(value).replace("torch.", "").lower()
    if key not in _DTYPES:
        raise ConfigError(
            f"unknown dtype {value!r}", where=where, hint=f"use one of {', '.join(sorted(_DTYPES))}"
        )
    return _DTYPES[key]


def _mp_policy(cfg: Any) -> Any:
    from torch.distributed.fsdp import MixedPrecisionPolicy

    if cfg is None or isinstance(cfg, MixedPrecisionPolicy):
        return cfg
    if not isinstance(cfg, Mapping):
        raise ConfigError(
            f"mp_policy must be a dict, got {cfg!r}",
            where="model_wrapper_cfg.mp_policy",
            hint="e.g. mp_policy: {param_dtype: bfloat16, reduce_dtype: float32}",
        )
    kwargs = dict(cfg)
    for key in ("param_dtype", "reduce_dtype", "output_dtype"):
        if key in kwargs:
            kwargs[key] = _dtype(kwargs[key], f"model_wrapper_cfg.mp_policy.{key}")
    return MixedPrecisionPolicy(**kwargs)


def _offload_policy(cfg: Any) -> Any:
    from torch.distributed.fsdp import CPUOffloadPolicy, OffloadPolicy

    if cfg is None or isinstance(cfg, OffloadPolicy):
        return cfg
    if cfg == "cpu" or cfg is True:
        return CPUOffloadPolicy()
    if isinstance(cfg, Mapping) and cfg.get("type", "cpu") == "cpu":
        return CPUOffloadPolicy(**{k: v for k, v in cfg.items() if k != "type"})
    raise ConfigError(
        f"unknown offload_policy {cfg!r}",
        where="model_wrapper_cfg.offload_policy",
        hint="use offload_policy: cpu, or {type: cpu, pin_memory: false}",
    )


def _call(method: Any, *args: Any) -> Any:
    return method(*args)


def _weights_already_initialised() -> None:
    """Stands in for ``init_weights`` once the wrapper initialised the model before sharding."""


def _prepare_for_sharding(module: nn.Module) -> None:
    """Initialise the whole model and give every rank rank 0's weights, then shard.

    Initialising after sharding would draw DTensor slices from a different random stream than
    a single-process or DDP run with the same seed; initialising first keeps the three equal.
    The runner's own ``init_weights`` call later does nothing.
    """
    import torch.distributed as dist

    init = getattr(module, "init_weights", None)
    if callable(init) and not getattr(module, "is_init", False):
        init()
        module.init_weights = _weights_already_initialised  # type: ignore[assignment]  # an instance attribute shadows the method
    if dist.is_initialized() and dist.get_world_size() > 1:
        with torch.no_grad():
            for tensor in [*module.parameters(), *module.buffers()]:
                dist.broadcast(tensor.data, src=0)


def _is_dtensor(value: Any) -> bool:
    from torch.distributed.tensor import DTensor

    return isinstance(value, DTensor)


def _shard_like(value: torch.Tensor, like: Any) -> Any:
    """``value`` (a whole tensor every rank holds) as a DTensor laid out like ``like``; no communication."""
    from torch.distributed.tensor import distribute_tensor

    local = value.detach().to(device=like.device_mesh.device_type, dtype=like.dtype)
    return distribute_tensor(local, like.device_mesh, like.placements, src_data_rank=None)


@MODEL_WRAPPERS.register_module(name=["FSDPWrapper", "KilnFullyShardedDataParallel"])
class KilnFullyShardedDataParallel(nn.Module):
    """Shard a model across ranks with FSDP2 and run the runner's step protocol on it.

    The model is first initialised (``init_weights``) and given rank 0's weights on every
    rank, so a sharded run starts where a DDP or single-process run with the same seed starts.
    ``fully_shard`` is then applied to every submodule whose class is named in ``shard_modules``
    (innermost first), and to the model itself. The model keeps its class, attributes and
    methods (``fully_shard`` changes it in place), so ``train_step`` is the model's own; the
    wrapper only turns gradient synchronisation off on steps that do not close a gradient
    accumulation window (``set_requires_gradient_sync``) and converts optimizer state that
    was loaded from a full checkpoint back into slices before the first step.

    :param module: the model (on this rank's device).
    :param shard_modules: class names (or classes) of submodules that become their own
        shard unit, e.g. transformer blocks; ``None``: the whole model is one unit.
    :param reshard_after_forward: free gathered parameters after the forward pass (less
        memory, one more all-gather in backward); ``fully_shard``'s argument.
    :param mp_policy: ``{param_dtype, reduce_dtype, output_dtype, cast_forward_inputs}`` with
        dtype names (``bfloat16``, ``float16``, ``float32``).
    :param offload_policy: ``'cpu'`` or ``{type: cpu, pin_memory: bool}`` keeps parameters,
        gradients and optimizer state on the CPU.
    :param full_state_dict: ``state_dict()`` gathers whole tensors (the runner's checkpoints
        need this); ``False`` leaves DTensor slices (only for code that handles them).
    """

    def __init__(
        self,
        module: nn.Module,
        shard_modules: Sequence[str | type] | None = None,
        reshard_after_forward: bool | int = True,
        mp_policy: Mapping[str, Any] | None = None,
        offload_policy: str | Mapping[str, Any] | None = None,
        full_state_dict: bool = True,
    ) -> None:
        super().__init__()
        from torch.distributed.fsdp import fully_shard

        kwargs: dict[str, Any] = {"reshard_after_forward": reshard_after_forward}
        policy = _mp_policy(mp_policy)
        if policy is not None:
            kwargs["mp_policy"] = policy
        offload = _offload_policy(offload_policy)
        if offload is not None:
            kwargs["offload_policy"] = offload
        wanted = tuple(shard_modules or ())
        names = {w for w in wanted if isinstance(w, str)}
        classes = tuple(w for w in wanted if isinstance(w, type))
        units = []
        # modules() is pre-order, so reversed it visits every child before its parent.
        for sub in reversed(list(module.modules())):
            if sub is module:
                continue
            if type(sub).__name__ in names or (classes and isinstance(sub, classes)):
                units.append(sub)
        found = {type(u).__name__ for u in units}
        unknown = sorted(n for n in names if n not in found)
        if unknown:
            raise ConfigError(
                f"shard_modules names {', '.join(unknown)}, which the model does not contain",
                where="model_wrapper_cfg.shard_modules",
                hint="name classes of the model's submodules, e.g. "
                + (
                    ", ".join(
                        sorted({type(m).__name__ for m in module.modules() if m is not module})
                    )[:200]
                    or "none"
                ),
            )
        _prepare_for_sharding(module)
        for unit in units:
            fully_shard(unit, **kwargs)
        fully_shard(module, **kwargs)
        self.module = module
        self.full_state_dict = bool(full_state_dict)
        self._full_state = True
        self._optimizers: list[Any] = []
        self._reshard_pending = False
        # torch tags registered hooks with attributes, which bound methods cannot carry.
        module.register_state_dict_post_hook(functools.partial(_call, self._gather_state_dict))
        module.register_load_state_dict_pre_hook(functools.partial(_call, self._shard_loaded_state))

    # ------------------------------------------------------------------ steps
    def train_step(self, data: Any, optim_wrapper: Any) -> Any:
        """The model's ``train_step``; gradients are reduced only on accumulation-closing steps."""
        self._watch_optimizers(optim_wrapper)
        should_sync = getattr(optim_wrapper, "should_sync", None)
        self.module.set_requires_gradient_sync(
            bool(should_sync()) if callable(should_sync) else True
        )  # type: ignore[operator]  # nn.Module types attribute access as Tensor | Module
        return self.module.train_step(data, optim_wrapper)  # type: ignore[operator]  # nn.Module types attribute access as Tensor | Module

    def val_step(self, data: Any) -> Any:
        """The model's ``val_step``."""
        return self.module.val_step(data)  # type: ignore[operator]  # nn.Module types attribute access as Tensor | Module

    def test_step(self, data: Any) -> Any:
        """The model's ``test_step``."""
        return self.module.test_step(data)  # type: ignore[operator]  # nn.Module types attribute access as Tensor | Module

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The model's ``forward`` (through FSDP's hooks)."""
        return self.module(*args, **kwargs)

    @contextmanager
    def no_sync(self) -> Iterator[None]:
        """Accumulate gradients locally (no reduce-scatter) inside the block."""
        self.module.set_requires_gradient_sync(False)  # type: ignore[operator]  # nn.Module types attribute access as Tensor | Module
        try:
            yield
        finally:
            self.module.set_requires_gradient_sync(True)  # type: ignore[operator]  # nn.Module types attribute access as Tensor | Module

    # ------------------------------------------------------------------ full state dicts
    @contextmanager
    def sharded_state(self) -> Iterator[None]:
        """Inside the block ``state_dict()`` of the model and its optimizers return DTensor slices."""
        previous, self._full_state = self._full_state, False
        try:
            yield
        finally:
            self._full_state = previous

    def _gathering(self) -> bool:
        return self.full_state_dict and self._full_state

    def _gather_state_dict(
        self, module: nn.Module, state_dict: dict[str, Any], prefix: str, local_metadata: Any
    ) -> None:
        # Collective: every rank gathers the same keys in the same order.
        if not self._gathering():
            return
        for key, value in list(state_dict.items()):
            if _is_dtensor(value):
                state_dict[key] = value.full_tensor()

    def _shard_loaded_state(
        self,
        module: nn.Module,
        state_dict: dict[str, Any],
        prefix: str,
        local_metadata: Any,
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        own: dict[str, torch.Tensor] = {prefix + name: t for name, t in module.named_parameters()}
        own.update({prefix + name: t for name, t in module.named_buffers()})
        for key, value in list(state_dict.items()):
            target = own.get(key)
            if (
                target is None
                or not _is_dtensor(target)
                or _is_dtensor(value)
                or not isinstance(value, torch.Tensor)
            ):
                continue
            if tuple(value.shape) == tuple(target.shape):
                state_dict[key] = _shard_like(value, target)

    def _watch_optimizers(self, optim_wrapper: Any) -> None:
        """Hook every optimizer of ``optim_wrapper`` once; re-slice state loaded from full checkpoints."""
        wrappers = (
            list(optim_wrapper.values()) if hasattr(optim_wrapper, "values") else [optim_wrapper]
        )
        for wrapper in wrappers:
            optimizer = getattr(wrapper, "optimizer", None)
            if optimizer is None or any(optimizer is o for o in self._optimizers):
                continue
            self._optimizers.append(optimizer)
            optimizer.register_state_dict_post_hook(
                functools.partial(_call, self._gather_optim_state)
            )
            optimizer.register_load_state_dict_post_hook(
                functools.partial(_call, self._mark_reshard)
            )
            self._reshard_pending = True
        if self._reshard_pending:
            self._reshard_pending = False
            for optimizer in self._optimizers:
                self._reshard_optim_state(optimizer)

    def _gather_optim_state(self, optimizer: Any, state_dict: dict[str, Any]) -> dict[str, Any]:
        if not self._gathering():
            return state_dict
        state = state_dict.get("state", {})
        for index in sorted(state, key=str):
            # The entries are the optimizer's live per-parameter dicts: build new ones.
            entry = state[index]
            state[index] = {
                name: entry[name].full_tensor() if _is_dtensor(entry[name]) else entry[name]
                for name in sorted(entry)
            }
        return state_dict

    def _mark_reshard(self, optimizer: Any) -> None:
        self._reshard_pending = True

    @staticmethod
    def _reshard_optim_state(optimizer: Any) -> None:
        # A full checkpoint loads whole tensors into the optimizer's state; slice them like their parameter.
        for group in optimizer.param_groups:
            for param in group["params"]:
                entry = optimizer.state.get(param)
                if not entry or not _is_dtensor(param):
                    continue
                for name, value in list(entry.items()):
                    if (
                        isinstance(value, torch.Tensor)
                        and not _is_dtensor(value)
                        and tuple(value.shape) == tuple(param.shape)
                        and value.ndim
                    ):
                        entry[name] = _shard_like(value, param)


@MODEL_WRAPPERS.register_module()
class MMFullyShardedDataParallel(KilnFullyShardedDataParallel):
    """MMEngine's FSDP wrapper name, on :class:`KilnFullyShardedDataParallel` (FSDP2).

    Takes :class:`KilnFullyShardedDataParallel`'s arguments, and of MMEngine's (those of
    torch's ``FullyShardedDataParallel``) ``cpu_offload`` (``True`` or a ``CPUOffload``: kept
    on the CPU as ``offload_policy='cpu'``). The others have no FSDP2 counterpart and are
    refused with the argument to use instead.

    :raises UsageTypeError: an argument only torch's first FSDP takes, such as
        ``auto_wrap_policy`` (use ``shard_modules``) or ``mixed_precision`` (use ``mp_policy``).
    """

    def __init__(self, module: nn.Module, **kwargs: Any) -> None:
        offload = kwargs.pop("cpu_offload", None)
        wants_offload = offload is True or getattr(offload, "offload_params", False)
        if wants_offload and kwargs.get("offload_policy") is None:
            kwargs["offload_policy"] = "cpu"
        replacements = {
            "auto_wrap_policy": "shard_modules=[<class names of the submodules to shard>]",
            "mixed_precision": "mp_policy={param_dtype: ..., reduce_dtype: ...}",
        }
        accepted = set(inspect.signature(KilnFullyShardedDataParallel.__init__).parameters)
        unknown = sorted(k for k in kwargs if k not in accepted)
        if unknown:
            hints = [f"{k}: use {replacements[k]}" for k in unknown if k in replacements]
            raise UsageTypeError(
                f"MMFullyShardedDataParallel does not take {', '.join(unknown)} (arguments "
                "of torch's first FSDP): torchkiln shards with FSDP2 (fully_shard)",
                where="model_wrapper_cfg",
                hint="; ".join(hints) or "see KilnFullyShardedDataParallel's arguments",
            )
        super().__init__(module, **kwargs)


def _optimizers_of(optim_wrapper: Any) -> dict[str, Any]:
    if optim_wrapper is None:
        return {}
    if hasattr(optim_wrapper, "items"):
        return {name: wrapper.optimizer for name, wrapper in optim_wrapper.items()}
    return {"optimizer": getattr(optim_wrapper, "optimizer", optim_wrapper)}


@contextmanager
def _sharded(model: nn.Module) -> Iterator[nn.Module]:
    """The model to hand to DCP (the unwrapped module), with full gathering off."""
    if isinstance(model, KilnFullyShardedDataParallel):
        with model.sharded_state():
            yield model.module
        return
    from torchkiln.model.wrappers import unwrap_model

    yield unwrap_model(model)


def save_sharded_checkpoint(
    path: str | os.PathLike[str], model: nn.Module, optim_wrapper: Any = None
) -> str:
    """Write the model's (and optimizers') state as a ``torch.distributed.checkpoint`` folder.

    Every rank writes only the slices it owns (tensors replicated on all ranks are written
    once); nothing is gathered. Collective: call it on every rank.

    :param path: the folder (created).
    :param model: the model, wrapped (FSDP, DDP) or not.
    :param optim_wrapper: an OptimWrapper or OptimWrapperDict whose state is saved too.
    :return: the folder.
    """
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import (
        get_model_state_dict,
        get_optimizer_state_dict,
    )

    path = os.fspath(path)
    with _sharded(model) as module:
        state: dict[str, Any] = {"model": get_model_state_dict(module)}
        for name, optimizer in _optimizers_of(optim_wrapper).items():
            state[f"optim.{name}"] = get_optimizer_state_dict(module, optimizer)
        dcp.save(state, checkpoint_id=path)
    return path


def load_sharded_checkpoint(
    path: str | os.PathLike[str], model: nn.Module, optim_wrapper: Any = None
) -> None:
    """Load a folder written by :func:`save_sharded_checkpoint` into ``model`` (and optimizers).

    Each rank reads the slices it owns; the number of ranks may differ from the saving run
    (DCP re-slices). Collective: call it on every rank.
    """
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import (
        get_model_state_dict,
        get_optimizer_state_dict,
        set_model_state_dict,
        set_optimizer_state_dict,
    )

    path = os.fspath(path)
    optimizers = _optimizers_of(optim_wrapper)
    with _sharded(model) as module:
        state: dict[str, Any] = {"model": get_model_state_dict(module)}
        for name, optimizer in optimizers.items():
            state[f"optim.{name}"] = get_optimizer_state_dict(module, optimizer)
        dcp.load(state, checkpoint_id=path)
        set_model_state_dict(module, state["model"])
        for name, optimizer in optimizers.items():
            set_optimizer_state_dict(module, optimizer, state[f"optim.{name}"])
