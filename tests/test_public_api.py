"""The public API: names re-exported from torchkiln resolve, and everything public is documented."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import torchkiln

MODULES = sorted(
    name
    for _, name, _ in pkgutil.walk_packages(torchkiln.__path__, prefix="torchkiln.")
    if "._" not in name  # private modules (and the compiled _native, documented by its .pyi)
)


def test_all_exports_resolve() -> None:
    for name in torchkiln.__all__:
        assert getattr(torchkiln, name) is not None, name


def test_mmengine_names_are_public() -> None:
    from torchkiln import BaseMetric, BaseModel, BaseModule, Config, Hook, Runner  # noqa: F401
    from torchkiln.evaluation import Evaluator  # noqa: F401
    from torchkiln.hooks import CheckpointHook, EMAHook, LoggerHook  # noqa: F401
    from torchkiln.model import ExponentialMovingAverage, ImgDataPreprocessor  # noqa: F401
    from torchkiln.optim import AmpOptimWrapper, OptimWrapper, OptimWrapperDict  # noqa: F401
    from torchkiln.registry import HOOKS, LOOPS, METRICS, MODELS  # noqa: F401
    from torchkiln.runner import EpochBasedTrainLoop, IterBasedTrainLoop, TestLoop, ValLoop  # noqa: F401


@pytest.mark.parametrize("module_name", MODULES)
def test_public_classes_and_functions_have_docstrings(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert module.__doc__, f"{module_name} has no module docstring"
    missing = []
    for name, obj in vars(module).items():
        if name.startswith("_") or getattr(obj, "__module__", None) != module_name:
            continue
        if inspect.isclass(obj) or inspect.isfunction(obj):
            if not inspect.getdoc(obj):
                missing.append(name)
            if inspect.isclass(obj):
                for attr, member in vars(obj).items():
                    if attr.startswith("_") or not inspect.isfunction(member):
                        continue
                    if not inspect.getdoc(member):
                        missing.append(f"{name}.{attr}")
    assert not missing, f"{module_name}: undocumented public names: {', '.join(missing)}"
