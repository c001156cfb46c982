"""Momentum schedulers: the generic schedules with ``param_name='momentum'``.

For Adam-style optimizers (``betas`` instead of ``momentum``) the scheduled value is
``betas[0]``; each step writes it back into ``betas``.
"""

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
    "ConstantMomentum",
    "CosineAnnealingMomentum",
    "CosineRestartMomentum",
    "ExponentialMomentum",
    "LinearMomentum",
    "MultiStepMomentum",
    "OneCycleMomentum",
    "PolyMomentum",
    "ReduceOnPlateauMomentum",
    "StepMomentum",
]


@PARAM_SCHEDULERS.register_module()
class ConstantMomentum(ConstantParamScheduler):
    """:class:`ConstantParamScheduler` for momentum (``param_name='momentum'``)."""

    __init__ = fixed_param_init(ConstantParamScheduler, "momentum")


@PARAM_SCHEDULERS.register_module()
class CosineAnnealingMomentum(CosineAnnealingParamScheduler):
    """:class:`CosineAnnealingParamScheduler` for momentum (``param_name='momentum'``)."""

    __init__ = fixed_param_init(CosineAnnealingParamScheduler, "momentum")


@PARAM_SCHEDULERS.register_module()
class CosineRestartMomentum(CosineRestartParamScheduler):
    """:class:`CosineRestartParamScheduler` for momentum (``param_name='momentum'``)."""

    __init__ = fixed_param_init(CosineRestartParamScheduler, "momentum")


@PARAM_SCHEDULERS.register_module()
class ExponentialMomentum(ExponentialParamScheduler):
    """:class:`ExponentialParamScheduler` for momentum (``param_name='momentum'``)."""

    __init__ = fixed_param_init(ExponentialParamScheduler, "momentum")


@PARAM_SCHEDULERS.register_module()
class LinearMomentum(LinearParamScheduler):
    """:class:`LinearParamScheduler` for momentum (``param_name='momentum'``)."""

    __init__ = fixed_param_init(LinearParamScheduler, "momentum")


@PARAM_SCHEDULERS.register_module()
class MultiStepMomentum(MultiStepParamScheduler):
    """:class:`MultiStepParamScheduler` for momentum (``param_name='momentum'``)."""

    __init__ = fixed_param_init(MultiStepParamScheduler, "momentum")


@PARAM_SCHEDULERS.register_module()
class OneCycleMomentum(OneCycleParamScheduler):
    """:class:`OneCycleParamScheduler` for momentum (``param_name='momentum'``)."""

    __init__ = fixed_param_init(OneCycleParamScheduler, "momentum")


@PARAM_SCHEDULERS.register_module()
class PolyMomentum(PolyParamScheduler):
    """:class:`PolyParamScheduler` for momentum (``param_name='momentum'``)."""

    __init__ = fixed_param_init(PolyParamScheduler, "momentum")


@PARAM_SCHEDULERS.register_module()
class ReduceOnPlateauMomentum(ReduceOnPlateauParamScheduler):
    """:class:`ReduceOnPlateauParamScheduler` for momentum (``param_name='momentum'``)."""

    __init__ = fixed_param_init(ReduceOnPlateauParamScheduler, "momentum")


@PARAM_SCHEDULERS.register_module()
class StepMomentum(StepParamScheduler):
    """:class:`StepParamScheduler` for momentum (``param_name='momentum'``)."""

    __init__ = fixed_param_init(StepParamScheduler, "momentum")
