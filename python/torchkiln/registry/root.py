"""The root registries, with MMEngine's names; each reads its own entry-point group.

They are the parents an OpenMMLab-style package declares its registries under
(``Registry('model', parent=MODELS, locations=['mypkg.models'])``); their scope is
``torchkiln`` (``mmengine`` is accepted as the same scope).
"""

from __future__ import annotations

from torchkiln.registry.build_functions import (
    build_model_from_cfg,
    build_runner_from_cfg,
    build_scheduler_from_cfg,
)
from torchkiln.registry.registry import Registry

__all__ = [
    "ALL_REGISTRIES",
    "DATASETS",
    "DATA_SAMPLERS",
    "EVALUATOR",
    "FUNCTIONS",
    "HOOKS",
    "INFERENCERS",
    "LOG_PROCESSORS",
    "LOOPS",
    "METRICS",
    "MODELS",
    "MODEL_WRAPPERS",
    "OPTIMIZERS",
    "OPTIM_WRAPPERS",
    "OPTIM_WRAPPER_CONSTRUCTORS",
    "PARAM_SCHEDULERS",
    "REGISTRY_CONSTANTS",
    "RUNNERS",
    "RUNNER_CONSTRUCTORS",
    "STRATEGIES",
    "TASK_UTILS",
    "TRANSFORMS",
    "VISBACKENDS",
    "VISUALIZERS",
    "WEIGHT_INITIALIZERS",
]


def _register_torch_optimizers(registry: Registry) -> None:
    """Register every ``torch.optim`` optimizer by its class name (run on first miss)."""
    import torch.optim

    for name in dir(torch.optim):
        obj = getattr(torch.optim, name)
        if (
            isinstance(obj, type)
            and issubclass(obj, torch.optim.Optimizer)
            and obj is not torch.optim.Optimizer
        ) and name not in registry._entries:
            registry._entries[name] = {"torch": obj}


RUNNERS = Registry("runners", build_func=build_runner_from_cfg)
RUNNER_CONSTRUCTORS = Registry("runner_constructors")
STRATEGIES = Registry("strategies")
LOOPS = Registry("loops")
HOOKS = Registry("hooks")
DATASETS = Registry("datasets")
DATA_SAMPLERS = Registry("data_samplers")
TRANSFORMS = Registry("transforms")
MODELS = Registry("models", build_func=build_model_from_cfg)
MODEL_WRAPPERS = Registry("model_wrappers")
WEIGHT_INITIALIZERS = Registry("weight_initializers")
OPTIMIZERS = Registry("optimizers", fallback=_register_torch_optimizers)
OPTIM_WRAPPERS = Registry("optim_wrappers")
OPTIM_WRAPPER_CONSTRUCTORS = Registry("optim_wrapper_constructors")
PARAM_SCHEDULERS = Registry("param_schedulers", build_func=build_scheduler_from_cfg)
METRICS = Registry("metrics")
EVALUATOR = Registry("evaluator")
VISBACKENDS = Registry("visbackends", entry_point_group="torchkiln.vis_backends")
LOG_PROCESSORS = Registry("log_processors")
FUNCTIONS = Registry("functions")
TASK_UTILS = Registry("task_utils")
VISUALIZERS = Registry("visualizers")
INFERENCERS = Registry("inferencers")

ALL_REGISTRIES: dict[str, Registry] = {
    r.name: r
    for r in (
        RUNNERS,
        LOOPS,
        HOOKS,
        DATASETS,
        DATA_SAMPLERS,
        TRANSFORMS,
        MODELS,
        MODEL_WRAPPERS,
        WEIGHT_INITIALIZERS,
        OPTIMIZERS,
        OPTIM_WRAPPERS,
        OPTIM_WRAPPER_CONSTRUCTORS,
        PARAM_SCHEDULERS,
        METRICS,
        EVALUATOR,
        VISBACKENDS,
        LOG_PROCESSORS,
        FUNCTIONS,
        RUNNER_CONSTRUCTORS,
        STRATEGIES,
        TASK_UTILS,
        VISUALIZERS,
        INFERENCERS,
    )
}

# The roots by their constant names (``MODELS``), as MMEngine's ``registry.root`` offers them.
REGISTRY_CONSTANTS: dict[str, Registry] = {
    constant: value for constant, value in globals().items() if isinstance(value, Registry)
}
