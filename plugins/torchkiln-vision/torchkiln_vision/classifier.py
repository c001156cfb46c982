"""``ImageClassifier``: a network that maps images to class scores, as a torchkiln ``BaseModel``.

The batch is ``{'inputs': (N, C, H, W), 'data_samples': labels}`` (what the datasets of this
package give, collated), with ``labels`` ``(N,)`` class indices or, after MixUp or CutMix,
``(N, K)`` class probabilities. ``forward`` modes:

- ``'loss'``: ``{'loss': cross entropy}`` (label smoothing and soft targets supported);
- ``'predict'``: ``{'pred_scores': (N, K) softmax, 'pred_labels': (N,), 'gt_labels': (N,)}``,
  which torchkiln's ``Accuracy`` and this package's metrics read;
- ``'tensor'``: the logits.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import torch
from torch import nn
from torchkiln.errors import ConfigError
from torchkiln.model import BaseModel

from torchkiln_vision.losses import classification_loss
from torchkiln_vision.weights import check_local_weights, load_local_weights

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "ImageClassifier", "NamedNetworkClassifier"]

#: ImageNet channel statistics in 0-255 units (the images reach the device as uint8).
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)

_MODES = ("loss", "predict", "tensor")


def _short_type(cfg: Mapping[str, Any]) -> str:
    type_ = cfg.get("type")
    return type_.rpartition("::")[2] if isinstance(type_, str) else ""


def _split_init_cfg(init_cfg: Any) -> tuple[Any, list[dict[str, Any]]]:
    """``(init_cfg without Pretrained entries, the Pretrained entries)``."""
    if init_cfg is None:
        return None, []
    entries = [init_cfg] if isinstance(init_cfg, Mapping) else list(init_cfg)
    pretrained = [
        dict(c) for c in entries if isinstance(c, Mapping) and _short_type(c) == "Pretrained"
    ]
    others = [c for c in entries if not (isinstance(c, Mapping) and _short_type(c) == "Pretrained")]
    return (others or None), pretrained


class ImageClassifier(BaseModel):
    """A classification network with its loss and prediction outputs.

    :param network: the module mapping ``(N, C, H, W)`` float images to ``(N, K)`` logits
        (an output with a ``logits`` attribute, like GoogLeNet's in training, is read there).
    :param num_classes: ``K``.
    :param label_smoothing: cross-entropy label smoothing, in ``[0, 1)``.
    :param pretrained: ``None``/``False``, or the path of a local weights file loaded into the
        network now (a head of another size is skipped). Never downloads.
    :param data_preprocessor: a config or module; by default a ``ClsDataPreprocessor`` with
        ImageNet mean and std. A ``ClsDataPreprocessor`` config without ``num_classes`` gets
        this model's.
    :param init_cfg: initialisation configs; ``{type: Pretrained, checkpoint: path, prefix:
        optional}`` entries load a local file into the network when the runner initialises
        the weights (torchvision/timm state dicts and torchkiln checkpoints of this model
        both load).
    """

    def __init__(
        self,
        network: nn.Module,
        num_classes: int,
        label_smoothing: float = 0.0,
        pretrained: str | bool | None = None,
        data_preprocessor: Mapping[str, Any] | nn.Module | None = None,
        init_cfg: Mapping[str, Any] | list[Mapping[str, Any]] | None = None,
    ) -> None:
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ConfigError(
                f"num_classes must be a positive int, got {num_classes!r}",
                where="model.num_classes",
            )
        if not 0.0 <= float(label_smoothing) < 1.0:
            raise ConfigError(
                f"label_smoothing must be in [0, 1), got {label_smoothing!r}",
                where="model.label_smoothing",
            )
        if data_preprocessor is None:
            data_preprocessor = {
                "type": "ClsDataPreprocessor",
                "mean": list(IMAGENET_MEAN),
                "std": list(IMAGENET_STD),
            }
        if (
            isinstance(data_preprocessor, Mapping)
            and _short_type(data_preprocessor) == "ClsDataPreprocessor"
        ):
            data_preprocessor = {"num_classes": num_classes, **data_preprocessor}
        init_cfg, self_pretrained = _split_init_cfg(init_cfg)
        for i, cfg in enumerate(self_pretrained):
            cfg["checkpoint"] = check_local_weights(
                cfg.get("checkpoint"), f"model.init_cfg[{i}].checkpoint"
            )
        pretrained_path = check_local_weights(pretrained, "model.pretrained")
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.network = network
        self.num_classes = num_classes
        self.label_smoothing = float(label_smoothing)
        self._pretrained_inits = self_pretrained
        if pretrained_path is not None:
            load_local_weights(
                self.network, pretrained_path, "model.pretrained", strip_prefix="network."
            )

    def init_weights(self) -> None:
        """Apply ``init_cfg``, then load its ``Pretrained`` files into the network."""
        first_time = not self.is_init
        super().init_weights()
        if not first_time:
            return
        for i, cfg in enumerate(self._pretrained_inits):
            prefix = cfg.get("prefix")
            strip = f"{prefix.rstrip('.')}." if prefix else "network."
            load_local_weights(
                self.network,
                cfg["checkpoint"],
                f"model.init_cfg[{i}].checkpoint",
                strip_prefix=strip,
            )

    def logits(self, inputs: torch.Tensor) -> torch.Tensor:
        """The network's class scores for a batch of images."""
        out = self.network(inputs)
        if not isinstance(out, torch.Tensor):
            out = getattr(out, "logits", None)
            if not isinstance(out, torch.Tensor):
                raise TypeError(
                    f"{type(self.network).__name__} returned {type(out).__name__}, not logits"
                )
        return out

    def forward(
        self, inputs: torch.Tensor, data_samples: torch.Tensor | None = None, mode: str = "tensor"
    ) -> Any:
        """``'loss'``: ``{'loss': ...}``; ``'predict'``: scores and labels; ``'tensor'``: logits.

        :param inputs: ``(N, C, H, W)`` float images (normalised by the data preprocessor).
        :param data_samples: ``(N,)`` labels or ``(N, K)`` soft targets (needed for ``'loss'``).
        :param mode: ``'loss'``, ``'predict'`` or ``'tensor'``.
        """
        if mode not in _MODES:
            raise ValueError(
                f"{type(self).__name__}.forward: unknown mode {mode!r}; use one of {_MODES}"
            )
        logits = self.logits(inputs)
        if mode == "loss":
            if data_samples is None:
                raise ValueError(
                    f"{type(self).__name__}.forward(mode='loss') needs data_samples (the labels)"
                )
            return {"loss": classification_loss(logits, data_samples, self.label_smoothing)}
        if mode == "predict":
            scores = logits.softmax(dim=-1)
            out = {"pred_scores": scores, "pred_labels": scores.argmax(dim=-1)}
            if data_samples is not None:
                out["gt_labels"] = (
                    data_samples.argmax(dim=-1) if data_samples.dim() == 2 else data_samples
                )
            return out
        return logits


class NamedNetworkClassifier(ImageClassifier):
    """An :class:`ImageClassifier` whose network a library builds from its name.

    A subclass sets :attr:`build_network` to ``(model_name, num_classes, kwargs) -> module``;
    the constructor's further keyword arguments go to that builder.
    """

    build_network: ClassVar[Callable[[str, int, Mapping[str, Any]], nn.Module]]

    def __init__(
        self,
        model_name: str,
        num_classes: int = 1000,
        label_smoothing: float = 0.0,
        pretrained: str | bool | None = None,
        data_preprocessor: Mapping[str, Any] | nn.Module | None = None,
        init_cfg: Mapping[str, Any] | list[Mapping[str, Any]] | None = None,
        **kwargs: Any,
    ) -> None:
        network = type(self).build_network(model_name, num_classes, kwargs)
        super().__init__(
            network,
            num_classes,
            label_smoothing=label_smoothing,
            pretrained=pretrained,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg,
        )
        self.model_name = model_name
