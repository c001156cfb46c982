"""Built-in hooks, one module each, and the ``Hook`` base class.

Any method of a hook named after a mount point is called there (see
:mod:`torchkiln.hookspecs`); ``priority`` orders hooks at each mount point.

Names are resolved lazily on first access, so importing the package or reading the
default hooks does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torchkiln._lazy import lazy_exports

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "Hook": "torchkiln.hooks.hook",
    "PRIORITIES": "torchkiln.hooks.hook",
    "get_priority": "torchkiln.hooks.hook",
    "DEFAULT_HOOKS": "torchkiln.hooks.defaults",
    "merge_default_hooks": "torchkiln.hooks.defaults",
    "RuntimeInfoHook": "torchkiln.hooks.runtime_info_hook",
    "IterTimerHook": "torchkiln.hooks.iter_timer_hook",
    "DistSamplerSeedHook": "torchkiln.hooks.sampler_seed_hook",
    "LoggerHook": "torchkiln.hooks.logger_hook",
    "ProgressBarHook": "torchkiln.hooks.progress_bar_hook",
    "ParamSchedulerHook": "torchkiln.hooks.param_scheduler_hook",
    "CheckpointHook": "torchkiln.hooks.checkpoint_hook",
    "EMAHook": "torchkiln.hooks.ema_hook",
    "EarlyStoppingHook": "torchkiln.hooks.early_stopping_hook",
    "EmptyCacheHook": "torchkiln.hooks.empty_cache_hook",
    "SyncBuffersHook": "torchkiln.hooks.sync_buffer_hook",
    "ProfilerHook": "torchkiln.hooks.profiler_hook",
    "NonFiniteLossHook": "torchkiln.hooks.loss_guard_hook",
    "CheckInvalidLossHook": "torchkiln.hooks.loss_guard_hook",
    "NonFiniteLossError": "torchkiln.hooks.loss_guard_hook",
    "GradientMonitorHook": "torchkiln.hooks.gradient_monitor_hook",
    "PrepareTTAHook": "torchkiln.hooks.prepare_tta_hook",
    "NaiveVisualizationHook": "torchkiln.hooks.naive_visualization_hook",
    "NPUProfilerHook": "torchkiln.hooks.npu_profiler_hook",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports("torchkiln.hooks", _EXPORTS, globals())


if TYPE_CHECKING:  # pragma: no cover
    from torchkiln.hooks.checkpoint_hook import CheckpointHook as CheckpointHook
    from torchkiln.hooks.defaults import (
        DEFAULT_HOOKS as DEFAULT_HOOKS,
        merge_default_hooks as merge_default_hooks,
    )
    from torchkiln.hooks.early_stopping_hook import EarlyStoppingHook as EarlyStoppingHook
    from torchkiln.hooks.ema_hook import EMAHook as EMAHook
    from torchkiln.hooks.empty_cache_hook import EmptyCacheHook as EmptyCacheHook
    from torchkiln.hooks.gradient_monitor_hook import GradientMonitorHook as GradientMonitorHook
    from torchkiln.hooks.hook import (
        PRIORITIES as PRIORITIES,
        Hook as Hook,
        get_priority as get_priority,
    )
    from torchkiln.hooks.iter_timer_hook import IterTimerHook as IterTimerHook
    from torchkiln.hooks.logger_hook import LoggerHook as LoggerHook
    from torchkiln.hooks.loss_guard_hook import (
        CheckInvalidLossHook as CheckInvalidLossHook,
        NonFiniteLossError as NonFiniteLossError,
        NonFiniteLossHook as NonFiniteLossHook,
    )
    from torchkiln.hooks.naive_visualization_hook import (
        NaiveVisualizationHook as NaiveVisualizationHook,
    )
    from torchkiln.hooks.npu_profiler_hook import NPUProfilerHook as NPUProfilerHook
    from torchkiln.hooks.param_scheduler_hook import ParamSchedulerHook as ParamSchedulerHook
    from torchkiln.hooks.prepare_tta_hook import PrepareTTAHook as PrepareTTAHook
    from torchkiln.hooks.profiler_hook import ProfilerHook as ProfilerHook
    from torchkiln.hooks.progress_bar_hook import ProgressBarHook as ProgressBarHook
    from torchkiln.hooks.runtime_info_hook import RuntimeInfoHook as RuntimeInfoHook
    from torchkiln.hooks.sampler_seed_hook import DistSamplerSeedHook as DistSamplerSeedHook
    from torchkiln.hooks.sync_buffer_hook import SyncBuffersHook as SyncBuffersHook
