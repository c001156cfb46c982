"""Build functions a registry can use instead of :func:`build_from_cfg`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from torchkiln.registry.registry import build_from_cfg

if TYPE_CHECKING:
    from torchkiln.registry.registry import Registry

__all__ = ["build_model_from_cfg"]


def build_model_from_cfg(
    cfg: Mapping[str, Any] | list[Mapping[str, Any]],
    registry: Registry,
    default_args: Mapping[str, Any] | None = None,
) -> Any:
    """Build one module from a config dict, or a ``torch.nn.Sequential`` of them from a list
    of dicts (the MODELS registry's build function, as in MMEngine)."""
    if isinstance(cfg, list):
        import torch.nn

        return torch.nn.Sequential(*(build_from_cfg(c, registry, default_args) for c in cfg))
    return build_from_cfg(cfg, registry, default_args)
