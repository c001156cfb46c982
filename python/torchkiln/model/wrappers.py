"""Model wrappers for distributed training, and the runner's ``wrap_model``.

The runner wraps the model, never the user: ``wrap_model(model, model_wrapper_cfg, device)``
builds a wrapper from ``MODEL_WRAPPERS`` when ``torch.distributed`` is initialised and
returns the model unchanged otherwise. ``train_step`` of the DDP wrapper runs the forward
pass through DDP itself, so gradient synchronisation hooks fire and ``no_sync`` (used by the
optimizer wrapper while accumulating gradients) takes effect.
"""

from __future__ import annotations

import inspect
import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DataParallel, DistributedDataParallel

from torchkiln.errors import ConfigValueError
from torchkiln.model.base_model import run_forward
from torchkiln.registry import MODEL_WRAPPERS

__all__ = [
    "KilnDistributedDataParallel",
    "KilnSeparateDistributedDataParallel",
    "MMDistributedDataParallel",
    "MMSeparateDistributedDataParallel",
    "find_unused_params",
    "is_model_wrapper",
    "no_buffer_sync_kwargs",
    "unwrap_model",
    "wrap_model",
]

logger = logging.getLogger(__name__)


def is_model_wrapper(model: Any, registry: Any = MODEL_WRAPPERS) -> bool:
    """True when ``model`` is a wrapper whose real model is ``model.module``.

    :param registry: where wrapper classes are registered; its children (registries made
        with ``parent=MODEL_WRAPPERS`` by other packages) count too, its parents do not.
        With ``MODEL_WRAPPERS`` (the default), torch's DDP, DataParallel and FSDP count as well.
    """
    classes: list[type] = []
    if registry is MODEL_WRAPPERS:
        classes += [DistributedDataParallel, DataParallel, KilnSeparateDistributedDataParallel]
        fsdp = sys.modules.get("torch.distributed.fsdp")
        if fsdp is not None and hasattr(fsdp, "FullyShardedDataParallel"):
            classes.append(fsdp.FullyShardedDataParallel)
    for reg in (registry, *registry._descendants()):
        classes += [c for c in reg.module_dict.values() if isinstance(c, type)]
    return isinstance(model, tuple(classes))


def unwrap_model(model: nn.Module) -> nn.Module:
    """``model.module`` for (nested) wrappers, the model itself otherwise."""
    while is_model_wrapper(model):
        model = model.module  # type: ignore[assignment]  # nn.Module types attribute access as Tensor | Module
    return model


def find_unused_params(loss: torch.Tensor, model: nn.Module) -> list[str]:
    """Names of trainable parameters of ``model`` that ``loss`` does not depend on.

    Walks the autograd graph from ``loss`` (debugging aid; costs a graph traversal).
    """
    reached: set[int] = set()
    seen: set[Any] = set()
    stack: list[Any] = [loss.grad_fn] if loss.grad_fn is not None else []
    while stack:
        fn = stack.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        variable = getattr(fn, "variable", None)
        if variable is not None:
            reached.add(id(variable))
        stack.extend(next_fn for next_fn, _ in fn.next_functions)
    return [
        name for name, p in model.named_parameters() if p.requires_grad and id(p) not in reached
    ]


@MODEL_WRAPPERS.register_module(name=["KilnDistributedDataParallel", "MMDistributedDataParallel"])
class KilnDistributedDataParallel(DistributedDataParallel):
    """``DistributedDataParallel`` that speaks the runner's step protocol.

    ``train_step`` preprocesses with the wrapped model's data preprocessor, runs the forward
    pass through DDP (so gradients are all-reduced during backward), parses the losses with
    the wrapped model's ``parse_losses`` and updates through the optimizer wrapper.
    ``val_step`` and ``test_step`` run on the wrapped model directly (no gradients to sync).

    :param module: the model (a :class:`~torchkiln.model.BaseModel`).
    :param detect_anomalous_params: after each loss, log the trainable parameters the loss does
        not reach (the usual cause of DDP's unused-parameter errors); slow, for debugging.
    :param kwargs: ``DistributedDataParallel`` arguments (``device_ids``,
        ``broadcast_buffers``, ``find_unused_parameters``, ...).
    """

    def __init__(
        self, module: nn.Module, detect_anomalous_params: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(module=module, **kwargs)
        self.detect_anomalous_params = detect_anomalous_params
        self._states_synced = False

    def sync_states(self) -> None:
        """Copy rank 0's parameters and buffers to every rank (a broadcast per tensor).

        DDP copies them once when it wraps the model, but the runner initialises weights
        (``init_weights``) after wrapping; with ``randomness.diff_rank_seed`` each rank would
        start from different weights and the replicas would never agree. The first
        ``train_step``/``val_step``/``test_step`` calls this once.
        """
        self._states_synced = True
        group = self.process_group
        if not dist.is_initialized() or dist.get_world_size(group) < 2:
            return
        src = dist.get_global_rank(group, 0)
        with torch.no_grad():
            for tensor in [*self.module.parameters(), *self.module.buffers()]:
                dist.broadcast(tensor.data, src=src, group=group)

    def train_step(self, data: Any, optim_wrapper: Any) -> dict[str, torch.Tensor]:
        """One optimisation step through DDP; returns detached log values.

        :param data: the collated batch.
        :param optim_wrapper: the optimizer wrapper.
        """
        if not self._states_synced:
            self.sync_states()
        with optim_wrapper.optim_context(self):
            data = self.module.data_preprocessor(data, True)
            losses = self._run_forward(data, mode="loss")
        parsed_losses, log_vars = self.module.parse_losses(losses)
        if self.detect_anomalous_params:
            unused = find_unused_params(parsed_losses, self.module)
            if unused:
                logger.warning(
                    "parameters of %s not reached by the loss: %s",
                    type(self.module).__name__,
                    unused,
                )
        optim_wrapper.update_params(parsed_losses)
        return log_vars

    def val_step(self, data: Any) -> Any:
        """The wrapped model's ``val_step``."""
        if not self._states_synced:
            self.sync_states()
        return self.module.val_step(data)

    def test_step(self, data: Any) -> Any:
        """The wrapped model's ``test_step``."""
        if not self._states_synced:
            self.sync_states()
        return self.module.test_step(data)

    def _run_forward(self, data: Any, mode: str) -> Any:
        return run_forward(self, data, mode, self.module.forward, type(self.module).__name__)


MMDistributedDataParallel = KilnDistributedDataParallel


def _strip_ddp_keys(
    module: nn.Module, state_dict: dict[str, Any], prefix: str, local_metadata: Any
) -> None:
    # ``<prefix>module.<rest>`` -> ``<prefix><rest>``, keeping the order of every key.
    head = prefix + "module."
    if not any(k.startswith(head) for k in state_dict):
        return
    items = list(state_dict.items())
    state_dict.clear()
    for key, value in items:
        state_dict[prefix + key[len(head) :] if key.startswith(head) else key] = value


def _add_ddp_keys(
    module: nn.Module,
    state_dict: dict[str, Any],
    prefix: str,
    local_metadata: Any,
    strict: bool,
    missing_keys: list[str],
    unexpected_keys: list[str],
    error_msgs: list[str],
) -> None:
    # Accept both ``<prefix><rest>`` (as saved through _strip_ddp_keys) and ``<prefix>module.<rest>``.
    head = prefix + "module."
    for key in [k for k in state_dict if k.startswith(prefix) and not k.startswith(head)]:
        state_dict[head + key[len(prefix) :]] = state_dict.pop(key)


@MODEL_WRAPPERS.register_module(
    name=["KilnSeparateDistributedDataParallel", "MMSeparateDistributedDataParallel"]
)
class KilnSeparateDistributedDataParallel(nn.Module):
    """Wraps each trainable child of the model in its own DDP (GANs and other multi-optimizer models).

    The model keeps its own ``train_step`` (which calls e.g. ``self.generator(...)``, now a DDP
    module, so its gradients are synchronised) and its attribute names; the state dict keeps
    the unwrapped keys (``generator.weight``, not ``generator.module.weight``), so checkpoints
    load into the plain model.

    :param module: the model; its direct children with trainable parameters are wrapped.
    :param find_unused_parameters: DDP's ``find_unused_parameters`` for every child.
    :param kwargs: other ``DistributedDataParallel`` arguments for every child; buffers are
        not broadcast at every forward unless ``broadcast_buffers``/``forward_sync_buffers`` says so.
    """

    def __init__(
        self, module: nn.Module, find_unused_parameters: bool = False, **kwargs: Any
    ) -> None:
        super().__init__()
        self.module = module
        kwargs = _with_buffer_default(dict(kwargs))
        for name, child in list(module.named_children()):
            if any(p.requires_grad for p in child.parameters()):
                wrapped = KilnDistributedDataParallel(
                    module=child, find_unused_parameters=find_unused_parameters, **kwargs
                )
                wrapped.register_state_dict_post_hook(_strip_ddp_keys)
                wrapped.register_load_state_dict_pre_hook(_add_ddp_keys)
                setattr(module, name, wrapped)
        self._states_synced = False

    def sync_states(self) -> None:
        """Copy rank 0's parameters and buffers of every wrapped child to all ranks (see
        :meth:`KilnDistributedDataParallel.sync_states`); runs once, at the first step."""
        self._states_synced = True
        for _, child in self.ddp_children():
            if isinstance(child, KilnDistributedDataParallel):
                child.sync_states()

    def train_step(self, data: Any, optim_wrapper: Any) -> Any:
        """The model's own ``train_step`` (its children run through their DDP wrappers)."""
        if not self._states_synced:
            self.sync_states()
        return self.module.train_step(data, optim_wrapper)  # type: ignore[operator]  # nn.Module types attribute access as Tensor | Module

    def val_step(self, data: Any) -> Any:
        """The model's ``val_step``."""
        if not self._states_synced:
            self.sync_states()
        return self.module.val_step(data)  # type: ignore[operator]  # nn.Module types attribute access as Tensor | Module

    def test_step(self, data: Any) -> Any:
        """The model's ``test_step``."""
        if not self._states_synced:
            self.sync_states()
        return self.module.test_step(data)  # type: ignore[operator]  # nn.Module types attribute access as Tensor | Module

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The model's ``forward``."""
        return self.module(*args, **kwargs)

    def ddp_children(self) -> Iterator[tuple[str, DistributedDataParallel]]:
        """The (name, DDP wrapper) pairs of the wrapped children."""
        for name, child in self.module.named_children():
            if isinstance(child, DistributedDataParallel):
                yield name, child

    @contextmanager
    def no_sync(self) -> Iterator[None]:
        """Skip gradient all-reduce in every wrapped child (gradient accumulation)."""
        with ExitStack() as stack:
            for _, child in self.ddp_children():
                stack.enter_context(child.no_sync())
            yield


MMSeparateDistributedDataParallel = KilnSeparateDistributedDataParallel

_DDP_LIKE = (DistributedDataParallel, KilnSeparateDistributedDataParallel)


def _ddp_accepts(name: str) -> bool:
    try:
        return name in inspect.signature(DistributedDataParallel.__init__).parameters
    except (TypeError, ValueError):  # pragma: no cover
        return False


def no_buffer_sync_kwargs() -> dict[str, bool]:
    """DDP arguments that stop broadcasting buffers from rank 0 at every forward.

    Newer torch spells this ``forward_sync_buffers=False`` (``broadcast_buffers`` is
    deprecated there); older torch ``broadcast_buffers=False``.
    """
    if _ddp_accepts("forward_sync_buffers"):
        return {"forward_sync_buffers": False}
    return {"broadcast_buffers": False}


def _with_buffer_default(kwargs: dict[str, Any]) -> dict[str, Any]:
    if "broadcast_buffers" not in kwargs and "forward_sync_buffers" not in kwargs:
        kwargs.update(no_buffer_sync_kwargs())
    return kwargs


def _convert_sync_bn(model: nn.Module, sync_bn: Any) -> nn.Module:
    if sync_bn in (None, False):
        return model
    if sync_bn is True or sync_bn == "torch":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    raise ConfigValueError(
        f"unknown sync_bn {sync_bn!r}",
        where="sync_bn",
        hint="use sync_bn: 'torch' (torch.nn.SyncBatchNorm) or leave it out",
    )


def wrap_model(
    model: nn.Module,
    model_wrapper_cfg: Mapping[str, Any] | None = None,
    device: torch.device | str | None = None,
    sync_bn: str | bool | None = None,
    distributed: bool | None = None,
) -> nn.Module:
    """Wrap ``model`` for distributed training, or return it unchanged in a single process.

    With ``torch.distributed`` initialised: convert BatchNorm to SyncBatchNorm when asked, move
    the model to ``device`` and build ``model_wrapper_cfg`` (default type
    ``KilnDistributedDataParallel``) with ``module=model``. DDP-type wrappers get
    ``device_ids=[device.index]`` on CUDA, no buffer broadcast at every forward
    (``broadcast_buffers=False``, or ``forward_sync_buffers=False`` where torch has it; buffers
    still start equal on all ranks) and ``find_unused_parameters=False`` unless the config says
    otherwise.

    :param model: the model.
    :param model_wrapper_cfg: ``{type: ..., **kwargs}``; may hold ``sync_bn: 'torch'``.
    :param device: the device of this rank; default: where the model's parameters are.
    :param sync_bn: ``'torch'`` (or ``True``) converts BatchNorm layers to SyncBatchNorm.
    :param distributed: override the detection of an initialised process group.
    """
    if distributed is None:
        distributed = dist.is_available() and dist.is_initialized()
    cfg = dict(model_wrapper_cfg or {})
    sync_bn = cfg.pop("sync_bn", sync_bn)
    if not distributed:
        return model
    if is_model_wrapper(model):
        return model
    model = _convert_sync_bn(model, sync_bn)
    if device is None:
        first = next(model.parameters(), None)
        device = first.device if first is not None else torch.device("cpu")
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    model = model.to(device)
    cfg.setdefault("type", "KilnDistributedDataParallel")
    wrapper_cls = MODEL_WRAPPERS.get(cfg["type"])
    if isinstance(wrapper_cls, type) and issubclass(wrapper_cls, _DDP_LIKE):
        if device.type == "cpu" and any(isinstance(m, nn.SyncBatchNorm) for m in model.modules()):
            raise ConfigValueError(
                "sync_bn needs CUDA devices: torch.nn.SyncBatchNorm does not run under DDP on the CPU",
                where="model_wrapper_cfg.sync_bn",
                hint="leave sync_bn out for CPU runs (each rank then normalises with its own batch statistics)",
            )
        _with_buffer_default(cfg)
        cfg.setdefault("find_unused_parameters", False)
        if device.type == "cuda":
            cfg.setdefault("device_ids", [device.index])
    return MODEL_WRAPPERS.build(cfg, default_args={"module": model})
