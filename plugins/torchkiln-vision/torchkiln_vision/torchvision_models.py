"""``TorchvisionClassifier``: any torchvision classification model, by name."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn
from torchkiln.errors import ConfigError, did_you_mean

from torchkiln_vision.classifier import NamedNetworkClassifier

__all__ = ["TorchvisionClassifier", "torchvision_model_names"]


def torchvision_model_names() -> list[str]:
    """The classification models torchvision offers (``torchvision.models.list_models``)."""
    import torchvision.models

    return list(torchvision.models.list_models(module=torchvision.models))


def build_torchvision_network(
    model_name: str, num_classes: int, kwargs: Mapping[str, Any]
) -> nn.Module:
    """A randomly initialised torchvision classification network (never downloads).

    :raises ConfigError: an unknown name, or a ``weights`` argument (it would download).
    """
    import torchvision.models

    names = torchvision_model_names()
    if model_name not in names:
        raise ConfigError(
            f"torchvision has no classification model {model_name!r}",
            where="model.model_name",
            hint=(did_you_mean(model_name, names) or "") + f" known: {', '.join(names)}",
        )
    for key in ("weights", "weights_backbone"):
        if kwargs.get(key) is not None:
            raise ConfigError(
                f"{key} would download weights, and runs never download",
                where=f"model.{key}",
                hint="give a local file with pretrained: path (or init_cfg: {type: Pretrained, checkpoint: path})",
            )
    try:
        return torchvision.models.get_model(
            model_name, weights=None, num_classes=num_classes, **kwargs
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"cannot build torchvision model {model_name!r}: {exc}", where="model"
        ) from None


class TorchvisionClassifier(NamedNetworkClassifier):
    """A torchvision classification model (``resnet18``, ``mobilenet_v3_small``, ...).

    ``{type: TorchvisionClassifier, model_name: resnet18, num_classes: 10}``. The network is
    ``torchvision.models.get_model(model_name, weights=None, num_classes=..., **kwargs)``;
    weights come only from local files (``pretrained`` or ``init_cfg``).

    :param model_name: a name from ``torchvision.models.list_models()`` (classification).
    :param num_classes: number of classes.
    :param label_smoothing: cross-entropy label smoothing.
    :param pretrained: ``None``/``False`` or a local weights file (see :class:`ImageClassifier`).
    :param data_preprocessor: see :class:`ImageClassifier`.
    :param init_cfg: see :class:`ImageClassifier`.
    :param kwargs: further arguments of the torchvision builder (``dropout``, ...).
    """

    build_network = staticmethod(build_torchvision_network)
