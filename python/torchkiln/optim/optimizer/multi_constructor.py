"""MultiOptimWrapperConstructor: one optimizer per named sub-module, as an OptimWrapperDict."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from torchkiln.errors import ConfigError, did_you_mean
from torchkiln.optim.optimizer._model import unwrap_model
from torchkiln.optim.optimizer.optim_wrapper_dict import OptimWrapperDict
from torchkiln.registry import OPTIM_WRAPPER_CONSTRUCTORS

__all__ = ["MultiOptimWrapperConstructor"]

WHERE = "optim_wrapper"


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class MultiOptimWrapperConstructor:
    """Build an :class:`OptimWrapperDict` with one wrapper per sub-module.

    Config (a GAN)::

        optim_wrapper:
          constructor: MultiOptimWrapperConstructor
          generator: {optimizer: {type: Adam, lr: 0.0002, betas: [0.5, 0.999]}}
          discriminator: {optimizer: {type: Adam, lr: 0.0002}, paramwise_cfg: {...}}

    Each section is built by its own constructor (``constructor:`` inside the section,
    ``DefaultOptimWrapperConstructor`` by default) for ``model.<name>`` (a dotted path
    reaches deeper); the model may be wrapped (DDP). ``paramwise_cfg`` belongs inside each
    section.

    :param optim_wrapper_cfg: ``{name: section}``.
    :param paramwise_cfg: must be None (set it per section).
    """

    def __init__(
        self, optim_wrapper_cfg: Mapping[str, Any], paramwise_cfg: Mapping[str, Any] | None = None
    ) -> None:
        if paramwise_cfg:
            raise ConfigError(
                "MultiOptimWrapperConstructor takes paramwise_cfg per section, not for all",
                where=f"{WHERE}.paramwise_cfg",
                hint="move paramwise_cfg inside each section, e.g. generator: {optimizer: ..., paramwise_cfg: ...}",
            )
        if not isinstance(optim_wrapper_cfg, Mapping) or not optim_wrapper_cfg:
            raise ConfigError(
                "MultiOptimWrapperConstructor needs one section per sub-module",
                where=WHERE,
                hint="e.g. generator: {optimizer: {type: Adam, lr: 0.0002}}, discriminator: {optimizer: ...}",
            )
        self.constructors: dict[str, Any] = {}
        for name, section in optim_wrapper_cfg.items():
            where = f"{WHERE}.{name}"
            if not isinstance(section, Mapping):
                raise ConfigError(
                    f"section {name!r} must be a dict with an 'optimizer' entry, got {type(section).__name__}",
                    where=where,
                    hint=f"e.g. {name}: {{optimizer: {{type: Adam, lr: 0.0002}}}}",
                )
            section = dict(section)
            constructor_type = section.pop("constructor", "DefaultOptimWrapperConstructor")
            section_paramwise = section.pop("paramwise_cfg", None)
            if "optimizer" not in section:
                raise ConfigError(
                    f"section {name!r} needs an 'optimizer' entry, e.g. optimizer: {{type: SGD, lr: 0.01}}",
                    where=where,
                )
            try:
                self.constructors[name] = OPTIM_WRAPPER_CONSTRUCTORS.build(
                    {
                        "type": constructor_type,
                        "optim_wrapper_cfg": section,
                        "paramwise_cfg": section_paramwise,
                    }
                )
            except ConfigError as exc:
                if exc.where is None or exc.where.startswith(WHERE):
                    exc.where = where + (exc.where or "")[len(WHERE) :]
                raise

    def __call__(self, model: nn.Module) -> OptimWrapperDict:
        """Build one wrapper per section for the sub-module of the same name."""
        model = unwrap_model(model)
        wrappers = {}
        for name, constructor in self.constructors.items():
            try:
                submodule = model.get_submodule(name)
            except AttributeError:
                children = [n for n, _ in model.named_children()]
                raise ConfigError(
                    f"optim_wrapper section {name!r} names no sub-module of {type(model).__name__}",
                    where=f"{WHERE}.{name}",
                    hint=(did_you_mean(name, children) or "")
                    + f" sub-modules: {', '.join(children) or 'none'}",
                ) from None
            wrappers[name] = constructor(submodule)
        return OptimWrapperDict(**wrappers)
