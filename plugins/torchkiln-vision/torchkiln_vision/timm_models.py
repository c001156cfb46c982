"""``TimmClassifier``: any timm model, by name (needs ``pip install torchkiln-vision[timm]``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn
from torchkiln.errors import ConfigError, did_you_mean

from torchkiln_vision.classifier import NamedNetworkClassifier

__all__ = ["TimmClassifier"]


def build_timm_network(model_name: str, num_classes: int, kwargs: Mapping[str, Any]) -> nn.Module:
    """A randomly initialised timm network (``pretrained=False``: never downloads).

    :raises ConfigError: timm missing, an unknown name, or download arguments.
    """
    try:
        import timm
    except ImportError:
        raise ConfigError(
            "TimmClassifier needs timm, which is not installed",
            where="model.type",
            hint="pip install 'torchkiln-vision[timm]' (or pip install timm)",
        ) from None
    if not timm.is_model(model_name):
        names = timm.list_models()
        raise ConfigError(
            f"timm has no model {model_name!r}",
            where="model.model_name",
            hint=did_you_mean(model_name, names) or "see timm.list_models() for the names",
        )
    for key in ("pretrained_cfg", "pretrained_cfg_overlay"):
        if key in kwargs:
            raise ConfigError(
                f"{key} selects weights to download, and runs never download",
                where=f"model.{key}",
                hint="give a local file with pretrained: path (or init_cfg: {type: Pretrained, checkpoint: path})",
            )
    try:
        return timm.create_model(model_name, pretrained=False, num_classes=num_classes, **kwargs)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ConfigError(f"cannot build timm model {model_name!r}: {exc}", where="model") from None


class TimmClassifier(NamedNetworkClassifier):
    """A timm model (``resnet18``, ``vit_tiny_patch16_224``, ``convnext_atto``, ...).

    ``{type: TimmClassifier, model_name: resnet18, num_classes: 10}``. The network is
    ``timm.create_model(model_name, pretrained=False, num_classes=..., **kwargs)``; weights
    come only from local files (``pretrained`` or ``init_cfg``), ``.safetensors`` included.

    :param model_name: a name from ``timm.list_models()``.
    :param num_classes: number of classes.
    :param label_smoothing: cross-entropy label smoothing.
    :param pretrained: ``None``/``False`` or a local weights file (see :class:`ImageClassifier`).
    :param data_preprocessor: see :class:`ImageClassifier`.
    :param init_cfg: see :class:`ImageClassifier`.
    :param kwargs: further arguments of ``timm.create_model`` (``drop_rate``, ``img_size``, ...).
    """

    build_network = staticmethod(build_timm_network)
