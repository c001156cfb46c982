"""``PrepareTTAHook``: wrap the runner's model in a test-time augmentation model before testing.

:func:`build_runner_with_tta` builds a runner from a config with ``tta_model`` and
``tta_pipeline`` set up for a test-time-augmented ``runner.test()``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torchkiln.hooks.hook import Hook
from torchkiln.registry import HOOKS, MODELS

__all__ = ["PrepareTTAHook", "build_runner_with_tta"]


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


def build_runner_with_tta(cfg: Any) -> Any:
    """A runner from ``cfg`` whose test run uses test-time augmentation.

    The test dataset's pipeline becomes ``cfg.tta_pipeline`` and a :class:`PrepareTTAHook`
    wraps the model in ``cfg.tta_model`` before testing. The runner is built by the
    ``runner_type`` registered in RUNNERS when the config names one, else by
    ``Runner.from_cfg``.

    :raises ConfigKeyError: ``cfg`` has no ``tta_model`` or no ``tta_pipeline``.
    """
    from torchkiln.errors import ConfigKeyError
    from torchkiln.registry import RUNNERS

    for key in ("tta_model", "tta_pipeline"):
        if cfg.get(key) is None:
            raise ConfigKeyError(
                f"build_runner_with_tta needs {key!r} in the config",
                where=key,
                hint="tta_model: the BaseTTAModel config; tta_pipeline: the test-time pipeline",
            )
    cfg["test_dataloader"]["dataset"]["pipeline"] = cfg["tta_pipeline"]
    if cfg.get("runner_type") is not None:
        runner = RUNNERS.build(cfg)
    else:
        from torchkiln.runner import Runner

        runner = Runner.from_cfg(cfg)
    runner.register_hook(PrepareTTAHook(tta_cfg=cfg["tta_model"]))
    return runner
