"""torchkiln-vision: image classification for torchkiln, from one YAML file.

torchkiln finds every component through this distribution's entry points and imports its
module only when a config builds it; the names below load on first access, so importing the
package costs nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "CIFAR10": "torchkiln_vision.datasets.cifar",
    "CIFAR100": "torchkiln_vision.datasets.cifar",
    "ClsDataPreprocessor": "torchkiln_vision.preprocessor",
    "ConfusionMatrix": "torchkiln_vision.metrics",
    "CutMix": "torchkiln_vision.batch_augments",
    "ImageClassifier": "torchkiln_vision.classifier",
    "ImageFolder": "torchkiln_vision.datasets.image_folder",
    "MixUp": "torchkiln_vision.batch_augments",
    "Pipeline": "torchkiln_vision.pipeline",
    "SingleLabelMetric": "torchkiln_vision.metrics",
    "TimmClassifier": "torchkiln_vision.timm_models",
    "TorchvisionClassifier": "torchkiln_vision.torchvision_models",
    "build_pipeline": "torchkiln_vision.pipeline",
    "classification_loss": "torchkiln_vision.losses",
    "confusion_matrix_image": "torchkiln_vision.confusion_image",
    "load_local_weights": "torchkiln_vision.weights",
    "make_shapes_dataset": "torchkiln_vision.shapes",
}

__all__ = [
    "CIFAR10",
    "CIFAR100",
    "ClsDataPreprocessor",
    "ConfusionMatrix",
    "CutMix",
    "ImageClassifier",
    "ImageFolder",
    "MixUp",
    "Pipeline",
    "SingleLabelMetric",
    "TimmClassifier",
    "TorchvisionClassifier",
    "__version__",
    "build_pipeline",
    "classification_loss",
    "confusion_matrix_image",
    "load_local_weights",
    "make_shapes_dataset",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'torchkiln_vision' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:  # pragma: no cover
    from torchkiln_vision.batch_augments import CutMix, MixUp
    from torchkiln_vision.classifier import ImageClassifier
    from torchkiln_vision.confusion_image import confusion_matrix_image
    from torchkiln_vision.datasets.cifar import CIFAR10, CIFAR100
    from torchkiln_vision.datasets.image_folder import ImageFolder
    from torchkiln_vision.losses import classification_loss
    from torchkiln_vision.metrics import ConfusionMatrix, SingleLabelMetric
    from torchkiln_vision.pipeline import Pipeline, build_pipeline
    from torchkiln_vision.preprocessor import ClsDataPreprocessor
    from torchkiln_vision.shapes import make_shapes_dataset
    from torchkiln_vision.timm_models import TimmClassifier
    from torchkiln_vision.torchvision_models import TorchvisionClassifier
    from torchkiln_vision.weights import load_local_weights
