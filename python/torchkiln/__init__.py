"""torchkiln: a plugin-based training engine for PyTorch with a Rust core.

``import torchkiln`` is cheap: public names are resolved lazily on first access, so the CLI
and config tooling never import torch unless they build something.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torchkiln._lazy import lazy_exports

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "Config": "torchkiln.config",
    "ConfigDict": "torchkiln.config",
    "ManagerMeta": "torchkiln.utils",
    "ManagerMixin": "torchkiln.utils",
    "ConfigError": "torchkiln.errors",
    "PluginError": "torchkiln.errors",
    "TorchkilnError": "torchkiln.errors",
    "Registry": "torchkiln.registry",
    "Runner": "torchkiln.runner",
    "BaseLoop": "torchkiln.runner",
    "EpochBasedTrainLoop": "torchkiln.runner",
    "IterBasedTrainLoop": "torchkiln.runner",
    "ValLoop": "torchkiln.runner",
    "TestLoop": "torchkiln.runner",
    "Hook": "torchkiln.hooks",
    "BaseModel": "torchkiln.model",
    "BaseModule": "torchkiln.model",
    "BaseDataPreprocessor": "torchkiln.model",
    "ImgDataPreprocessor": "torchkiln.model",
    "OptimWrapper": "torchkiln.optim",
    "AmpOptimWrapper": "torchkiln.optim",
    "OptimWrapperDict": "torchkiln.optim",
    "BaseMetric": "torchkiln.evaluation",
    "Evaluator": "torchkiln.evaluation",
    "MessageHub": "torchkiln.logging",
    "HistoryBuffer": "torchkiln.logging",
    "MMLogger": "torchkiln.logging",
    "print_log": "torchkiln.logging",
}
# the registry API and the root registries, at the top level as MMEngine has them
_EXPORTS.update(
    dict.fromkeys(
        [
            "DefaultScope",
            "build_from_cfg",
            "build_model_from_cfg",
            "init_default_scope",
            *("DATASETS", "DATA_SAMPLERS", "EVALUATOR", "FUNCTIONS", "HOOKS", "INFERENCERS"),
            *("LOG_PROCESSORS", "LOOPS", "METRICS", "MODELS", "MODEL_WRAPPERS", "OPTIMIZERS"),
            *("OPTIM_WRAPPERS", "OPTIM_WRAPPER_CONSTRUCTORS", "PARAM_SCHEDULERS", "RUNNERS"),
            *("RUNNER_CONSTRUCTORS", "STRATEGIES", "TASK_UTILS", "TRANSFORMS", "VISBACKENDS"),
            *("VISUALIZERS", "WEIGHT_INITIALIZERS"),
        ],
        "torchkiln.registry",
    )
)

__all__ = ["__version__", *sorted(_EXPORTS)]


__getattr__, __dir__ = lazy_exports("torchkiln", _EXPORTS, globals())


if TYPE_CHECKING:  # pragma: no cover
    from torchkiln.config import Config as Config, ConfigDict as ConfigDict
    from torchkiln.errors import (
        ConfigError as ConfigError,
        PluginError as PluginError,
        TorchkilnError as TorchkilnError,
    )
    from torchkiln.evaluation import BaseMetric as BaseMetric, Evaluator as Evaluator
    from torchkiln.hooks import Hook as Hook
    from torchkiln.logging import (
        HistoryBuffer as HistoryBuffer,
        MessageHub as MessageHub,
        MMLogger as MMLogger,
        print_log as print_log,
    )
    from torchkiln.model import (
        BaseDataPreprocessor as BaseDataPreprocessor,
        BaseModel as BaseModel,
        BaseModule as BaseModule,
        ImgDataPreprocessor as ImgDataPreprocessor,
    )
    from torchkiln.optim import (
        AmpOptimWrapper as AmpOptimWrapper,
        OptimWrapper as OptimWrapper,
        OptimWrapperDict as OptimWrapperDict,
    )
    from torchkiln.registry import (
        DATA_SAMPLERS as DATA_SAMPLERS,
        DATASETS as DATASETS,
        EVALUATOR as EVALUATOR,
        FUNCTIONS as FUNCTIONS,
        HOOKS as HOOKS,
        INFERENCERS as INFERENCERS,
        LOG_PROCESSORS as LOG_PROCESSORS,
        LOOPS as LOOPS,
        METRICS as METRICS,
        MODEL_WRAPPERS as MODEL_WRAPPERS,
        MODELS as MODELS,
        OPTIM_WRAPPER_CONSTRUCTORS as OPTIM_WRAPPER_CONSTRUCTORS,
        OPTIM_WRAPPERS as OPTIM_WRAPPERS,
        OPTIMIZERS as OPTIMIZERS,
        PARAM_SCHEDULERS as PARAM_SCHEDULERS,
        RUNNER_CONSTRUCTORS as RUNNER_CONSTRUCTORS,
        RUNNERS as RUNNERS,
        STRATEGIES as STRATEGIES,
        TASK_UTILS as TASK_UTILS,
        TRANSFORMS as TRANSFORMS,
        VISBACKENDS as VISBACKENDS,
        VISUALIZERS as VISUALIZERS,
        WEIGHT_INITIALIZERS as WEIGHT_INITIALIZERS,
        DefaultScope as DefaultScope,
        Registry as Registry,
        build_from_cfg as build_from_cfg,
        build_model_from_cfg as build_model_from_cfg,
        init_default_scope as init_default_scope,
    )
    from torchkiln.runner import (
        BaseLoop as BaseLoop,
        EpochBasedTrainLoop as EpochBasedTrainLoop,
        IterBasedTrainLoop as IterBasedTrainLoop,
        Runner as Runner,
        TestLoop as TestLoop,
        ValLoop as ValLoop,
    )
    from torchkiln.utils import ManagerMeta as ManagerMeta, ManagerMixin as ManagerMixin
