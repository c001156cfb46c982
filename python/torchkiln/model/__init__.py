"""Models: BaseModule and initializers, BaseModel, data preprocessors, wrappers, averaged models.

Names are resolved lazily on first access, so importing the package does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torchkiln._lazy import lazy_exports

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
    "MMFullyShardedDataParallel": "torchkiln.dist.fsdp",
    "BaseAveragedModel": _AV,
    "ExponentialMovingAverage": _AV,
    "MomentumAnnealingEMA": _AV,
    "StochasticWeightAverage": _AV,
    "DigitsMLP": "torchkiln.model.demo_models",
    "BaseTTAModel": "torchkiln.model.test_time_aug",
    "convert_sync_batchnorm": "torchkiln.model.sync_batchnorm",
    "revert_sync_batchnorm": "torchkiln.model.sync_batchnorm",
    "DigitsCNN": "torchkiln.model.demo_models",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports("torchkiln.model", _EXPORTS, globals())


if TYPE_CHECKING:  # pragma: no cover
    from torchkiln.dist.fsdp import MMFullyShardedDataParallel as MMFullyShardedDataParallel
    from torchkiln.model.averaged_model import (
        BaseAveragedModel as BaseAveragedModel,
        ExponentialMovingAverage as ExponentialMovingAverage,
        MomentumAnnealingEMA as MomentumAnnealingEMA,
        StochasticWeightAverage as StochasticWeightAverage,
    )
    from torchkiln.model.base_model import BaseModel as BaseModel
    from torchkiln.model.base_module import (
        BaseModule as BaseModule,
        ModuleDict as ModuleDict,
        ModuleList as ModuleList,
        Sequential as Sequential,
    )
    from torchkiln.model.data_preprocessor import (
        BaseDataPreprocessor as BaseDataPreprocessor,
        ImgDataPreprocessor as ImgDataPreprocessor,
        stack_batch as stack_batch,
    )
    from torchkiln.model.demo_models import DigitsCNN as DigitsCNN, DigitsMLP as DigitsMLP
    from torchkiln.model.sync_batchnorm import (
        convert_sync_batchnorm as convert_sync_batchnorm,
        revert_sync_batchnorm as revert_sync_batchnorm,
    )
    from torchkiln.model.test_time_aug import BaseTTAModel as BaseTTAModel
    from torchkiln.model.weight_init import (
        BaseInit as BaseInit,
        Caffe2XavierInit as Caffe2XavierInit,
        ConstantInit as ConstantInit,
        KaimingInit as KaimingInit,
        NormalInit as NormalInit,
        PretrainedInit as PretrainedInit,
        TruncNormalInit as TruncNormalInit,
        UniformInit as UniformInit,
        XavierInit as XavierInit,
        bias_init_with_prob as bias_init_with_prob,
        caffe2_xavier_init as caffe2_xavier_init,
        constant_init as constant_init,
        initialize as initialize,
        kaiming_init as kaiming_init,
        normal_init as normal_init,
        trunc_normal_init as trunc_normal_init,
        uniform_init as uniform_init,
        xavier_init as xavier_init,
    )
    from torchkiln.model.wrappers import (
        KilnDistributedDataParallel as KilnDistributedDataParallel,
        KilnSeparateDistributedDataParallel as KilnSeparateDistributedDataParallel,
        MMDistributedDataParallel as MMDistributedDataParallel,
        MMSeparateDistributedDataParallel as MMSeparateDistributedDataParallel,
        is_model_wrapper as is_model_wrapper,
        unwrap_model as unwrap_model,
        wrap_model as wrap_model,
    )
