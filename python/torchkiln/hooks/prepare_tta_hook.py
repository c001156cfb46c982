"""``PrepareTTAHook``: wrap the runner's model in a test-time augmentation model before testing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torchkiln.hooks.hook import Hook
from torchkiln.registry import HOOKS, MODELS

__all__ = ["PrepareTTAHook"]


@HOOKS.register_module()
class PrepareTTAHook(Hook):
    """Before testing, replace ``runner.model`` by the TTA model ``tta_cfg`` builds around it.

    :param tta_cfg: the TTA model's config (a :class:`~torchkiln.model.BaseTTAModel`
        subclass); its ``module`` is set to the runner's model.

    Use it together with a test pipeline that gives several views per sample.
    """

    def __init__(self, tta_cfg: Mapping[str, Any]) -> None:
        if not isinstance(tta_cfg, Mapping) or "type" not in tta_cfg:
            raise TypeError(
                "PrepareTTAHook: tta_cfg must be a config dict with a 'type' (a BaseTTAModel "
                f"subclass), got {tta_cfg!r}"
            )
        # kept as given (MMEngine code checks it is the same dict); copied only if read-only
        self.tta_cfg: dict[str, Any] = tta_cfg if isinstance(tta_cfg, dict) else dict(tta_cfg)

    def before_test(self, runner: Any) -> None:
        """Build the TTA model around ``runner.model`` and make it the runner's model."""
        self.tta_cfg["module"] = runner.model
        runner.model = MODELS.build(self.tta_cfg)
