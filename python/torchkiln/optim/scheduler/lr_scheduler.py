"""Learning-rate schedulers: the generic schedules with ``param_name='lr'``."""

from __future__ import annotations

from torchkiln.optim.scheduler.cyclic_scheduler import (
    CosineRestartParamScheduler,
    OneCycleParamScheduler,
)
from torchkiln.optim.scheduler.param_scheduler import (
    ConstantParamScheduler,
    CosineAnnealingParamScheduler,
    ExponentialParamScheduler,
    LinearParamScheduler,
    MultiStepParamScheduler,
    PolyParamScheduler,
    StepParamScheduler,
    fixed_param_init,
)
from torchkiln.optim.scheduler.plateau import ReduceOnPlateauParamScheduler
from torchkiln.registry import PARAM_SCHEDULERS

__all__ = [
    "ConstantLR",
    "CosineAnnealingLR",
    "CosineRestartLR",
    "ExponentialLR",
    "LinearLR",
    "MultiStepLR",
    "OneCycleLR",
    "PolyLR",
    "ReduceOnPlateauLR",
    "StepLR",
]


@PARAM_SCHEDULERS.register_module()
class ConstantLR(ConstantParamScheduler):
    """:class:`ConstantParamScheduler` for the learning rate (``param_name='lr'``)."""

    __init__ = fixed_param_init(ConstantParamScheduler, "lr")


@PARAM_SCHEDULERS.register_module()
class CosineAnnealingLR(CosineAnnealingParamScheduler):
    """:class:`CosineAnnealingParamScheduler` for the learning rate (``param_name='lr'``)."""

    __init__ = fixed_param_init(CosineAnnealingParamScheduler, "lr")


@PARAM_SCHEDULERS.register_module()
class CosineRestartLR(CosineRestartParamScheduler):
    """:class:`CosineRestartParamScheduler` for the learning rate (``param_name='lr'``)."""

    __init__ = fixed_param_init(CosineRestartParamScheduler, "lr")


@PARAM_SCHEDULERS.register_module()
class ExponentialLR(ExponentialParamScheduler):
    """:class:`ExponentialParamScheduler` for the learning rate (``param_name='lr'``)."""

    __init__ = fixed_param_init(ExponentialParamScheduler, "lr")


@PARAM_SCHEDULERS.register_module()
class LinearLR(LinearParamScheduler):
    """:class:`LinearParamScheduler` for the learning rate (``param_name='lr'``)."""

    __init__ = fixed_param_init(LinearParamScheduler, "lr")


@PARAM_SCHEDULERS.register_module()
class MultiStepLR(MultiStepParamScheduler):
    """:class:`MultiStepParamScheduler` for the learning rate (``param_name='lr'``)."""

    __init__ = fixed_param_init(MultiStepParamScheduler, "lr")


@PARAM_SCHEDULERS.register_module()
class OneCycleLR(OneCycleParamScheduler):
    """:class:`OneCycleParamScheduler` for the learning rate (``param_name='lr'``)."""

    __init__ = fixed_param_init(OneCycleParamScheduler, "lr")


@PARAM_SCHEDULERS.register_module()
class PolyLR(PolyParamScheduler):
    """:class:`PolyParamScheduler` for the learning rate (``param_name='lr'``)."""

    __init__ = fixed_param_init(PolyParamScheduler, "lr")


@PARAM_SCHEDULERS.register_module()
class ReduceOnPlateauLR(ReduceOnPlateauParamScheduler):
    """:class:`ReduceOnPlateauParamScheduler` for the learning rate (``param_name='lr'``)."""

    __init__ = fixed_param_init(ReduceOnPlateauParamScheduler, "lr")


@PARAM_SCHEDULERS.register_module()
class StepLR(StepParamScheduler):
    """:class:`StepParamScheduler` for the learning rate (``param_name='lr'``)."""

    __init__ = fixed_param_init(StepParamScheduler, "lr")
