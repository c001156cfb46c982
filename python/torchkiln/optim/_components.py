"""Components of torchkiln.optim by registry, for lazy lookup (no torch import here)."""

from __future__ import annotations

_OPT = "torchkiln.optim.optimizer"
_SCHED = "torchkiln.optim.scheduler"

COMPONENTS: dict[str, dict[str, str]] = {
    "OPTIM_WRAPPERS": {
        "OptimWrapper": f"{_OPT}.optim_wrapper:OptimWrapper",
        "AmpOptimWrapper": f"{_OPT}.amp_optim_wrapper:AmpOptimWrapper",
    },
    "OPTIM_WRAPPER_CONSTRUCTORS": {
        "DefaultOptimWrapperConstructor": f"{_OPT}.default_constructor:DefaultOptimWrapperConstructor",
        "MultiOptimWrapperConstructor": f"{_OPT}.multi_constructor:MultiOptimWrapperConstructor",
    },
    "PARAM_SCHEDULERS": {
        "ConstantParamScheduler": f"{_SCHED}.param_scheduler:ConstantParamScheduler",
        "CosineAnnealingParamScheduler": f"{_SCHED}.param_scheduler:CosineAnnealingParamScheduler",
        "CosineRestartParamScheduler": f"{_SCHED}.cyclic_scheduler:CosineRestartParamScheduler",
        "ExponentialParamScheduler": f"{_SCHED}.param_scheduler:ExponentialParamScheduler",
        "LinearParamScheduler": f"{_SCHED}.param_scheduler:LinearParamScheduler",
        "MultiStepParamScheduler": f"{_SCHED}.param_scheduler:MultiStepParamScheduler",
        "OneCycleParamScheduler": f"{_SCHED}.cyclic_scheduler:OneCycleParamScheduler",
        "PolyParamScheduler": f"{_SCHED}.param_scheduler:PolyParamScheduler",
        "ReduceOnPlateauParamScheduler": f"{_SCHED}.plateau:ReduceOnPlateauParamScheduler",
        "StepParamScheduler": f"{_SCHED}.param_scheduler:StepParamScheduler",
        "ConstantLR": f"{_SCHED}.lr_scheduler:ConstantLR",
        "CosineAnnealingLR": f"{_SCHED}.lr_scheduler:CosineAnnealingLR",
        "CosineRestartLR": f"{_SCHED}.lr_scheduler:CosineRestartLR",
        "ExponentialLR": f"{_SCHED}.lr_scheduler:ExponentialLR",
        "LinearLR": f"{_SCHED}.lr_scheduler:LinearLR",
        "MultiStepLR": f"{_SCHED}.lr_scheduler:MultiStepLR",
        "OneCycleLR": f"{_SCHED}.lr_scheduler:OneCycleLR",
        "PolyLR": f"{_SCHED}.lr_scheduler:PolyLR",
        "ReduceOnPlateauLR": f"{_SCHED}.lr_scheduler:ReduceOnPlateauLR",
        "StepLR": f"{_SCHED}.lr_scheduler:StepLR",
        "ConstantMomentum": f"{_SCHED}.momentum_scheduler:ConstantMomentum",
        "CosineAnnealingMomentum": f"{_SCHED}.momentum_scheduler:CosineAnnealingMomentum",
        "CosineRestartMomentum": f"{_SCHED}.momentum_scheduler:CosineRestartMomentum",
        "ExponentialMomentum": f"{_SCHED}.momentum_scheduler:ExponentialMomentum",
        "LinearMomentum": f"{_SCHED}.momentum_scheduler:LinearMomentum",
        "MultiStepMomentum": f"{_SCHED}.momentum_scheduler:MultiStepMomentum",
        "OneCycleMomentum": f"{_SCHED}.momentum_scheduler:OneCycleMomentum",
        "PolyMomentum": f"{_SCHED}.momentum_scheduler:PolyMomentum",
        "ReduceOnPlateauMomentum": f"{_SCHED}.momentum_scheduler:ReduceOnPlateauMomentum",
        "StepMomentum": f"{_SCHED}.momentum_scheduler:StepMomentum",
    },
}
