"""The names of the optimizers ``OPTIMIZERS`` can build, grouped by the package providing them.

``TORCH_OPTIMIZERS`` lists ``torch.optim``'s; the other lists name the optimizers of optional
packages (D-Adaptation, Lion, Sophia, bitsandbytes, transformers, torch_npu) and are empty
when the package is not installed. Optimizers of an installed package are registered in
``OPTIMIZERS`` by their class name the first time this module is imported.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from collections.abc import Iterable

import torch

from torchkiln.registry import OPTIMIZERS

__all__ = [
    "BITSANDBYTES_OPTIMIZERS",
    "DADAPTATION_OPTIMIZERS",
    "LION_OPTIMIZERS",
    "NPU_OPTIMIZERS",
    "SOPHIA_OPTIMIZERS",
    "TORCH_OPTIMIZERS",
    "TRANSFORMERS_OPTIMIZERS",
]


def _optimizer_classes(module: object) -> list[type]:
    return [
        obj
        for _, obj in inspect.getmembers(module, inspect.isclass)
        if issubclass(obj, torch.optim.Optimizer) and obj is not torch.optim.Optimizer
    ]


def _register(classes: Iterable[type]) -> list[str]:
    names = []
    for cls in classes:
        if cls.__name__ not in OPTIMIZERS:
            OPTIMIZERS.register_module(module=cls)
        names.append(cls.__name__)
    return names


def _from_package(package: str, names: Iterable[str] | None = None) -> list[str]:
    """Register the optimizers of ``package`` (all, or those in ``names``) when installed."""
    try:
        if importlib.util.find_spec(package.split(".")[0]) is None:
            return []
        module = importlib.import_module(package)
    except Exception:  # an installed but broken optional package must not break torchkiln
        return []
    classes = _optimizer_classes(module)
    if names is not None:
        wanted = set(names)
        classes = [cls for cls in classes if cls.__name__ in wanted]
    return _register(classes)


def _torch_optimizers() -> list[str]:
    # "Optimizer", the base class, is listed too (OPTIMIZERS does not build it)
    return sorted(["Optimizer", *(cls.__name__ for cls in _optimizer_classes(torch.optim))])


TORCH_OPTIMIZERS: list[str] = _torch_optimizers()
NPU_OPTIMIZERS: list[str] = _from_package("torch_npu.optim")
DADAPTATION_OPTIMIZERS: list[str] = _from_package("dadaptation")
LION_OPTIMIZERS: list[str] = _from_package("lion_pytorch")
SOPHIA_OPTIMIZERS: list[str] = _from_package("Sophia")
BITSANDBYTES_OPTIMIZERS: list[str] = _from_package("bitsandbytes.optim")
TRANSFORMERS_OPTIMIZERS: list[str] = _from_package("transformers.optimization", ["Adafactor"])
