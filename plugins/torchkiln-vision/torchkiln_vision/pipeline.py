"""``pipeline:`` lists: per-sample transforms built by name from the ``TRANSFORMS`` registry.

Every ``torchvision.transforms.v2`` transform is registered under its class name by this
package (``{type: RandomResizedCrop, size: 224}``); MMPretrain's spelling
``torchvision/RandomResizedCrop`` is accepted too. YAML cannot spell some argument types, so
strings are converted where torchvision wants an object: ``dtype: uint8`` (or ``float32``, ...)
becomes the torch dtype, ``interpolation: bilinear`` the ``InterpolationMode``; a
``transforms:`` list of configs (``RandomApply``, ``RandomChoice``, ``Compose``) is built too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torchkiln.errors import ConfigError
from torchkiln.registry import TRANSFORMS

__all__ = ["Pipeline", "build_pipeline", "build_transform"]

_TORCHVISION_PREFIX = "torchvision/"


def _dtype(value: Any, where: str) -> Any:
    if not isinstance(value, str):
        return value
    dtype = getattr(torch, value.removeprefix("torch."), None)
    if not isinstance(dtype, torch.dtype):
        raise ConfigError(
            f"{value!r} is not a torch dtype", where=where, hint="e.g. uint8, float32, float16"
        )
    return dtype


def _interpolation(value: Any, where: str) -> Any:
    if not isinstance(value, str):
        return value
    from torchvision.transforms import InterpolationMode

    name = value.removeprefix("InterpolationMode.").upper()
    try:
        return InterpolationMode[name]
    except KeyError:
        names = ", ".join(m.name.lower() for m in InterpolationMode)
        raise ConfigError(
            f"unknown interpolation {value!r}", where=where, hint=f"one of {names}"
        ) from None


def build_transform(cfg: Any, where: str = "pipeline") -> Callable[..., Any]:
    """Build one transform from ``{type: Name, **kwargs}`` (a callable passes through).

    :param cfg: the transform's config.
    :param where: the config key path, for messages.
    :raises ConfigError: a config without ``type``, an unknown name or bad arguments (the
        registry's message, with the known names).
    """
    if callable(cfg) and not isinstance(cfg, Mapping):
        return cfg
    if not isinstance(cfg, Mapping) or "type" not in cfg:
        raise ConfigError(
            f"a transform must be a config with a 'type', got {cfg!r}",
            where=where,
            hint="e.g. {type: RandomHorizontalFlip, p: 0.5}",
        )
    args = dict(cfg)
    type_ = args["type"]
    if isinstance(type_, str) and type_.startswith(_TORCHVISION_PREFIX):
        args["type"] = type_[len(_TORCHVISION_PREFIX) :]
    if "dtype" in args:
        args["dtype"] = _dtype(args["dtype"], f"{where}.dtype")
    if "interpolation" in args:
        args["interpolation"] = _interpolation(args["interpolation"], f"{where}.interpolation")
    if isinstance(args.get("transforms"), (list, tuple)):
        args["transforms"] = [
            build_transform(c, f"{where}.transforms[{i}]") for i, c in enumerate(args["transforms"])
        ]
    try:
        return TRANSFORMS.build(args)
    except ConfigError as exc:
        if exc.where is None:
            exc.where = where
        raise


class Pipeline:
    """Transforms applied in order to one image.

    :param transforms: built transforms (callables taking and returning an image).
    """

    def __init__(self, transforms: Sequence[Callable[..., Any]]) -> None:
        self.transforms = list(transforms)

    def __call__(self, image: Any) -> Any:
        """The image after every transform."""
        for transform in self.transforms:
            image = transform(image)
        return image

    def __len__(self) -> int:
        return len(self.transforms)

    def __repr__(self) -> str:
        inner = ", ".join(type(t).__name__ for t in self.transforms)
        return f"Pipeline([{inner}])"


def build_pipeline(cfgs: Sequence[Any] | None, where: str = "pipeline") -> Pipeline:
    """Build a :class:`Pipeline` from a list of transform configs (``None``: no transform).

    :param cfgs: the ``pipeline:`` list.
    :param where: the config key path, for messages.
    """
    if cfgs is None:
        return Pipeline([])
    if isinstance(cfgs, Mapping) or not isinstance(cfgs, Sequence):
        raise ConfigError(
            f"pipeline must be a list of transform configs, got {type(cfgs).__name__}", where=where
        )
    return Pipeline([build_transform(c, f"{where}[{i}]") for i, c in enumerate(cfgs)])
