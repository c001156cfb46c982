"""Components of torchkiln.hooks, by registry (read by the registry without importing torch)."""

from __future__ import annotations

COMPONENTS: dict[str, dict[str, str]] = {
    "HOOKS": {
        "RuntimeInfoHook": "torchkiln.hooks.runtime_info_hook:RuntimeInfoHook",
        "IterTimerHook": "torchkiln.hooks.iter_timer_hook:IterTimerHook",
        "DistSamplerSeedHook": "torchkiln.hooks.sampler_seed_hook:DistSamplerSeedHook",
        "LoggerHook": "torchkiln.hooks.logger_hook:LoggerHook",
        "ProgressBarHook": "torchkiln.hooks.progress_bar_hook:ProgressBarHook",
        "ParamSchedulerHook": "torchkiln.hooks.param_scheduler_hook:ParamSchedulerHook",
        "CheckpointHook": "torchkiln.hooks.checkpoint_hook:CheckpointHook",
        "EMAHook": "torchkiln.hooks.ema_hook:EMAHook",
        "EarlyStoppingHook": "torchkiln.hooks.early_stopping_hook:EarlyStoppingHook",
        "EmptyCacheHook": "torchkiln.hooks.empty_cache_hook:EmptyCacheHook",
        "SyncBuffersHook": "torchkiln.hooks.sync_buffer_hook:SyncBuffersHook",
        "ProfilerHook": "torchkiln.hooks.profiler_hook:ProfilerHook",
        "NonFiniteLossHook": "torchkiln.hooks.loss_guard_hook:NonFiniteLossHook",
        "CheckInvalidLossHook": "torchkiln.hooks.loss_guard_hook:NonFiniteLossHook",
    },
}
