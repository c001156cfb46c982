"""GradientMonitorHook: gradient norms per layer and the first non-finite gradient, at an interval.

It runs at ``before_optimizer_step``: once per real optimizer step (after a gradient
accumulation window completes), with the gradients unscaled under AMP float16 and before
clipping, so the norms are the ones the optimizer would otherwise see.
"""

from __future__ import annotations

import math
from typing import Any

from torchkiln.errors import ConfigError
from torchkiln.hooks.hook import Hook
from torchkiln.registry import HOOKS

__all__ = ["GradientMonitorHook"]

_WHERE = "custom_hooks.GradientMonitorHook"


@HOOKS.register_module()
class GradientMonitorHook(Hook):
    """Log the global and per-layer gradient norms every ``interval`` optimizer steps.

    Scalars (through the message hub, so they reach the log lines, ``scalars.jsonl`` and the
    vis backends): ``train/grad_norm/global`` and, per layer (the module that owns the
    parameters, e.g. ``backbone.layer1.0.conv1``), ``train/grad_norm/<layer>``. When a
    gradient holds NaN or Inf, a warning names the first layer (in the model's order) and
    parameter with one, and the step number.

    :param interval: every this many optimizer steps (reading norms synchronises with the
        device, so the hook costs nothing on the other steps).
    :param per_layer: also log each layer's norm (``False``: the global norm only).
    :param max_layers: log at most this many layers' norms, the largest first (``-1``: all).
    :param norm_type: the p of the p-norm (2.0 by default; ``inf`` for the max).
    """

    priority = "NORMAL"

    def __init__(
        self,
        interval: int = 50,
        per_layer: bool = True,
        max_layers: int = -1,
        norm_type: float = 2.0,
    ) -> None:
        if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
            raise ConfigError(
                f"GradientMonitorHook interval must be a positive int, got {interval!r}",
                where=f"{_WHERE}.interval",
            )
        if (
            isinstance(max_layers, bool)
            or not isinstance(max_layers, int)
            or max_layers == 0
            or max_layers < -1
        ):
            raise ConfigError(
                f"GradientMonitorHook max_layers must be -1 or a positive int, got {max_layers!r}",
                where=f"{_WHERE}.max_layers",
            )
        self.interval = interval
        self.per_layer = bool(per_layer)
        self.max_layers = max_layers
        self.norm_type = float(norm_type)
        self.steps = 0
        self.last_norms: dict[str, float] = {}
        self.first_nonfinite: str | None = None

    def before_optimizer_step(self, runner: Any, optim_wrapper: Any) -> None:
        """Every ``interval`` steps: compute and log the norms; name a non-finite gradient."""
        self.steps += 1
        if self.steps % self.interval:
            return
        import torch

        owned = {id(p) for group in optim_wrapper.param_groups for p in group["params"]}
        layers: dict[str, list[torch.Tensor]] = {}
        nonfinite: str | None = None
        for name, param in runner.unwrapped_model.named_parameters():
            if param.grad is None or id(param) not in owned:
                continue
            layer = name.rpartition(".")[0] or name
            norm = torch.linalg.vector_norm(param.grad.detach().float(), self.norm_type)
            layers.setdefault(layer, []).append(norm)
            if nonfinite is None and not bool(torch.isfinite(norm)):
                nonfinite = name
        if not layers:
            return
        layer_norms = {
            layer: float(torch.linalg.vector_norm(torch.stack(norms), self.norm_type))
            for layer, norms in layers.items()
        }
        total = float(
            torch.linalg.vector_norm(torch.tensor(list(layer_norms.values())), self.norm_type)
        )
        hub = runner.message_hub
        hub.update_scalar("train/grad_norm/global", total)
        self.last_norms = {"global": total}
        if self.per_layer:
            ranked = sorted(
                layer_norms.items(), key=lambda kv: -kv[1] if math.isfinite(kv[1]) else -math.inf
            )
            if self.max_layers > 0:
                ranked = ranked[: self.max_layers]
            for layer, value in ranked:
                hub.update_scalar(f"train/grad_norm/{layer}", value)
                self.last_norms[layer] = value
        if nonfinite is not None:
            self.first_nonfinite = nonfinite
            runner.logger.warning(
                f"non-finite gradient at optimizer step {self.steps}: first in layer "
                f"{nonfinite.rpartition('.')[0] or nonfinite} (parameter {nonfinite})"
            )
