"""Registries: component names to classes, filled by decorators, built-ins and entry points."""

from __future__ import annotations

from torchkiln.registry._index import default_scope, set_default_scope
from torchkiln.registry.registry import Registry, build_from_cfg, check_kwargs, signature_params
from torchkiln.registry.root import (
    ALL_REGISTRIES,
    DATA_SAMPLERS,
    DATASETS,
    EVALUATOR,
    FUNCTIONS,
    HOOKS,
    LOG_PROCESSORS,
    LOOPS,
    METRICS,
    MODEL_WRAPPERS,
    MODELS,
    OPTIM_WRAPPER_CONSTRUCTORS,
    OPTIM_WRAPPERS,
    OPTIMIZERS,
    PARAM_SCHEDULERS,
    RUNNERS,
    TRANSFORMS,
    VISBACKENDS,
    WEIGHT_INITIALIZERS,
)

__all__ = [
    "ALL_REGISTRIES",
    "DATASETS",
    "DATA_SAMPLERS",
    "EVALUATOR",
    "FUNCTIONS",
    "HOOKS",
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
    "TRANSFORMS",
    "VISBACKENDS",
    "WEIGHT_INITIALIZERS",
    "Registry",
    "build_from_cfg",
    "check_kwargs",
    "default_scope",
    "set_default_scope",
    "signature_params",
]
