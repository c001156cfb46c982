"""MMEngine's module path for the test-time augmentation hook and runner builder.

Both live in :mod:`torchkiln.hooks.prepare_tta_hook`; this module gives code written as
``from mmengine.hooks.test_time_aug_hook import build_runner_with_tta`` the same names.
"""

from __future__ import annotations

from torchkiln.hooks.prepare_tta_hook import PrepareTTAHook, build_runner_with_tta

__all__ = ["PrepareTTAHook", "build_runner_with_tta"]
