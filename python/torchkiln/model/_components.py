"""The model subpackage's registered components, by registry, without importing torch."""

from __future__ import annotations

_WI = "torchkiln.model.weight_init"
_WR = "torchkiln.model.wrappers"
_AV = "torchkiln.model.averaged_model"

COMPONENTS: dict[str, dict[str, str]] = {
    "MODELS": {
        "BaseDataPreprocessor": "torchkiln.model.data_preprocessor:BaseDataPreprocessor",
        "ImgDataPreprocessor": "torchkiln.model.data_preprocessor:ImgDataPreprocessor",
        "ExponentialMovingAverage": f"{_AV}:ExponentialMovingAverage",
        "MomentumAnnealingEMA": f"{_AV}:MomentumAnnealingEMA",
        "StochasticWeightAverage": f"{_AV}:StochasticWeightAverage",
        "DigitsMLP": "torchkiln.model.demo_models:DigitsMLP",
        "DigitsCNN": "torchkiln.model.demo_models:DigitsCNN",
        "DigitsGAN": "torchkiln.model.demo_gan:DigitsGAN",
    },
    "MODEL_WRAPPERS": {
        "KilnDistributedDataParallel": f"{_WR}:KilnDistributedDataParallel",
        "MMDistributedDataParallel": f"{_WR}:MMDistributedDataParallel",
        "KilnSeparateDistributedDataParallel": f"{_WR}:KilnSeparateDistributedDataParallel",
        "MMSeparateDistributedDataParallel": f"{_WR}:MMSeparateDistributedDataParallel",
        "DistributedDataParallel": "torch.nn.parallel:DistributedDataParallel",
        "FSDPWrapper": "torchkiln.dist.fsdp:KilnFullyShardedDataParallel",
        "KilnFullyShardedDataParallel": "torchkiln.dist.fsdp:KilnFullyShardedDataParallel",
    },
    "WEIGHT_INITIALIZERS": {
        "Constant": f"{_WI}:ConstantInit",
        "Xavier": f"{_WI}:XavierInit",
        "Normal": f"{_WI}:NormalInit",
        "TruncNormal": f"{_WI}:TruncNormalInit",
        "Uniform": f"{_WI}:UniformInit",
        "Kaiming": f"{_WI}:KaimingInit",
        "Caffe2Xavier": f"{_WI}:Caffe2XavierInit",
        "Pretrained": f"{_WI}:PretrainedInit",
    },
}
