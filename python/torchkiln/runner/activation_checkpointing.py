"""Activation checkpointing for named submodules: recompute their forward in the backward pass.

Trades compute for memory: the activations inside each chosen submodule are not kept but
recomputed when gradients are needed (``torch.utils.checkpoint``, non-reentrant).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from torch import nn
from torch.utils.checkpoint import checkpoint

__all__ = ["turn_on_activation_checkpointing"]


def _checkpointed(forward: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(forward)
    def run(*args: Any, **kwargs: Any) -> Any:
        return checkpoint(forward, *args, use_reentrant=False, **kwargs)

    return run


def turn_on_activation_checkpointing(model: nn.Module, modules: list[str] | str) -> None:
    """Checkpoint the activations of ``model``'s submodules named in ``modules``.

    :param modules: dotted submodule names as ``named_modules()`` gives them (``'layer1'``,
        ``'backbone.stage2'``).
    :raises ValueError: a name that is not a submodule of ``model`` (with the valid names).
    """
    names = [modules] if isinstance(modules, str) else list(modules)
    for name in names:
        try:
            submodule = model.get_submodule(name)
        except AttributeError:
            children = ", ".join(child for child, _ in model.named_children())
            raise ValueError(
                f"turn_on_activation_checkpointing: {type(model).__name__} has no submodule "
                f"{name!r}; its direct children are: {children}"
            ) from None
        submodule.forward = _checkpointed(submodule.forward)
