"""The model components torchkiln declares as entry points, and the public names of torchkiln.model."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import torchkiln.model as model_pkg
from torchkiln.registry import ALL_REGISTRIES
from torchkiln.registry._index import builtin_components

ROOT = Path(__file__).resolve().parents[2]
COMPONENTS = {group.upper(): builtin_components(f"torchkiln.{group}")
              for group in ("models", "model_wrappers", "weight_initializers")}


def _resolve(target: str):
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def test_every_table_entry_resolves_through_its_registry() -> None:
    by_constant = {"MODELS": "models", "MODEL_WRAPPERS": "model_wrappers", "WEIGHT_INITIALIZERS": "weight_initializers"}
    assert set(COMPONENTS) == set(by_constant)
    for constant, table in COMPONENTS.items():
        registry = ALL_REGISTRIES[by_constant[constant]]
        for name, target in table.items():
            assert registry.get(name) is _resolve(target), (constant, name)


def test_every_decorated_component_is_in_the_table() -> None:
    for module in ["weight_init", "data_preprocessor", "wrappers", "averaged_model", "demo_models"]:
        importlib.import_module(f"torchkiln.model.{module}")
    by_constant = {"MODELS": "models", "MODEL_WRAPPERS": "model_wrappers", "WEIGHT_INITIALIZERS": "weight_initializers"}
    for constant, reg_name in by_constant.items():
        registry = ALL_REGISTRIES[reg_name]
        ours = {
            name
            for name, scopes in registry._entries.items()
            for obj in scopes.values()
            if getattr(obj, "__module__", "").startswith("torchkiln.model.")
        }
        assert ours <= set(COMPONENTS[constant]), ours - set(COMPONENTS[constant])


def test_public_names_resolve() -> None:
    for name in model_pkg.__all__:
        assert getattr(model_pkg, name) is not None, name
    assert {"BaseModel", "BaseModule", "wrap_model", "ExponentialMovingAverage", "DigitsMLP"} <= set(model_pkg.__all__)


def test_reading_the_table_does_not_import_torch() -> None:
    code = "import sys, torchkiln.model; from torchkiln.registry import MODELS; MODELS.names(); print('torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONPATH": str(ROOT / "python")},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "False"
