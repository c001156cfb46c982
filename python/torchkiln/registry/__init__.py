"""Registries: component names to classes, filled by decorators, built-ins and entry points.

Root registries (``MODELS``, ``HOOKS``, ...) read installed distributions' entry points;
packages may hang child registries with their own scope below them, as in MMEngine.
"""

from __future__ import annotations

from torchkiln.registry import root
from torchkiln.registry._index import default_scope, set_default_scope
from torchkiln.registry.build_functions import (
    build_from_cfg,
    build_model_from_cfg,
    build_runner_from_cfg,
    build_scheduler_from_cfg,
    check_kwargs,
    signature_params,
)
from torchkiln.registry.default_scope import DefaultScope, init_default_scope
from torchkiln.registry.registry import Registry, scope_key
from torchkiln.registry.root import (
    ALL_REGISTRIES,
    DATA_SAMPLERS,
    DATASETS,
    EVALUATOR,
    FUNCTIONS,
    HOOKS,
    INFERENCERS,
    LOG_PROCESSORS,
    LOOPS,
    METRICS,
    MODEL_WRAPPERS,
    MODELS,
    OPTIM_WRAPPER_CONSTRUCTORS,
    OPTIM_WRAPPERS,
    OPTIMIZERS,
    PARAM_SCHEDULERS,
    RUNNER_CONSTRUCTORS,
    RUNNERS,
    STRATEGIES,
    TASK_UTILS,
    TRANSFORMS,
    VISBACKENDS,
    VISUALIZERS,
    WEIGHT_INITIALIZERS,
)
from torchkiln.registry.tree import count_registered_modules, traverse_registry_tree

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
    "RUNNERS",
    "RUNNER_CONSTRUCTORS",
    "STRATEGIES",
    "TASK_UTILS",
    "TRANSFORMS",
    "VISBACKENDS",
    "VISUALIZERS",
    "WEIGHT_INITIALIZERS",
    "DefaultScope",
    "Registry",
    "build_from_cfg",
    "build_model_from_cfg",
    "build_runner_from_cfg",
    "build_scheduler_from_cfg",
    "check_kwargs",
    "count_registered_modules",
    "default_scope",
    "init_default_scope",
    "root",
    "scope_key",
    "set_default_scope",
    "signature_params",
    "traverse_registry_tree",
]
