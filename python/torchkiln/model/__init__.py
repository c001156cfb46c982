"""Models: BaseModule and initializers, BaseModel, data preprocessors, wrappers, averaged models.

Names are resolved lazily on first access, so importing the package does not import torch.
"""

from __future__ import annotations

from torchkiln._lazy import lazy_exports
from typing import TYPE_CHECKING, Any

_BM = "torchkiln.model.base_module"
_WI = "torchkiln.model.weight_init"
_DP = "torchkiln.model.data_preprocessor"
_WR = "torchkiln.model.wrappers"
_AV = "torchkiln.model.averaged_model"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "BaseModule": _BM,
    "ModuleDict": _BM,
    "ModuleList": _BM,
    "Sequential": _BM,
    "BaseModel": "torchkiln.model.base_model",
    "BaseDataPreprocessor": _DP,
    "ImgDataPreprocessor": _DP,
    "stack_batch": _DP,
    "BaseInit": _WI,
    "ConstantInit": _WI,
    "XavierInit": _WI,
    "NormalInit": _WI,
    "TruncNormalInit": _WI,
    "UniformInit": _WI,
    "KaimingInit": _WI,
    "Caffe2XavierInit": _WI,
    "PretrainedInit": _WI,
    "bias_init_with_prob": _WI,
    "caffe2_xavier_init": _WI,
    "constant_init": _WI,
    "initialize": _WI,
    "kaiming_init": _WI,
    "normal_init": _WI,
    "trunc_normal_init": _WI,
    "uniform_init": _WI,
    "xavier_init": _WI,
    "is_model_wrapper": _WR,
    "unwrap_model": _WR,
    "wrap_model": _WR,
    "KilnDistributedDataParallel": _WR,
    "KilnSeparateDistributedDataParallel": _WR,
    "MMDistributedDataParallel": _WR,
    "MMSeparateDistributedDataParallel": _WR,
    "BaseAveragedModel": _AV,
    "ExponentialMovingAverage": _AV,
    "MomentumAnnealingEMA": _AV,
    "StochasticWeightAverage": _AV,
    "DigitsMLP": "torchkiln.model.demo_models",
    "DigitsCNN": "torchkiln.model.demo_models",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports("torchkiln.model", _EXPORTS, globals())


if TYPE_CHECKING:  # pragma: no cover
    from torchkiln.model.averaged_model import (
        BaseAveragedModel,
        ExponentialMovingAverage,
        MomentumAnnealingEMA,
        StochasticWeightAverage,
    )
    from torchkiln.model.base_model import BaseModel
    from torchkiln.model.base_module import BaseModule, ModuleDict, ModuleList, Sequential
    from torchkiln.model.data_preprocessor import (
        BaseDataPreprocessor,
        ImgDataPreprocessor,
        stack_batch,
    )
    from torchkiln.model.demo_models import DigitsCNN, DigitsMLP
    from torchkiln.model.weight_init import (
        BaseInit,
        Caffe2XavierInit,
        ConstantInit,
        KaimingInit,
        NormalInit,
        PretrainedInit,
        TruncNormalInit,
        UniformInit,
        XavierInit,
        bias_init_with_prob,
        caffe2_xavier_init,
        constant_init,
        initialize,
        kaiming_init,
        normal_init,
        trunc_normal_init,
        uniform_init,
        xavier_init,
    )
    from torchkiln.model.wrappers import (
        KilnDistributedDataParallel,
        KilnSeparateDistributedDataParallel,
        MMDistributedDataParallel,
        MMSeparateDistributedDataParallel,
        is_model_wrapper,
        unwrap_model,
        wrap_model,
    )
