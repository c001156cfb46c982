"""``_native.pyi`` describes the compiled module: same names, same parameters."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import torchkiln
from torchkiln import _native as native

STUB = Path(torchkiln.__file__).with_name("_native.pyi")


def _params(node: ast.FunctionDef) -> list[tuple[str, bool]]:
    """(name, has default) of a stub function, without ``self``."""
    a = node.args
    positional = a.posonlyargs + a.args
    defaults = [False] * (len(positional) - len(a.defaults)) + [True] * len(a.defaults)
    out = [(p.arg, d) for p, d in zip(positional, defaults)]
    out += [(p.arg, d is not None) for p, d in zip(a.kwonlyargs, a.kw_defaults)]
    return [p for p in out if p[0] != "self"]


def _runtime_params(obj: object) -> list[tuple[str, bool]]:
    sig = inspect.signature(obj)  # type: ignore[arg-type]
    return [
        (p.name, p.default is not inspect.Parameter.empty)
        for p in sig.parameters.values()
        if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]


def _stub_items() -> list[tuple[str, ast.AST]]:
    tree = ast.parse(STUB.read_text(encoding="utf-8"))
    return [(n.name, n) for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef))]


def test_every_stub_name_exists_and_every_public_name_is_stubbed() -> None:
    stubbed = {name for name, _ in _stub_items()}
    public = {name for name in dir(native) if not name.startswith("_")}
    assert stubbed == public


@pytest.mark.parametrize("name,node", _stub_items(), ids=[n for n, _ in _stub_items()])
def test_signatures_match(name: str, node: ast.AST) -> None:
    obj = getattr(native, name)
    if isinstance(node, ast.FunctionDef):
        assert _params(node) == _runtime_params(obj)
        return
    assert isinstance(node, ast.ClassDef)
    for item in node.body:
        if not isinstance(item, ast.FunctionDef):
            continue
        assert hasattr(obj, item.name), f"{name}.{item.name} is in the stub but not in the module"
        is_property = any(isinstance(d, ast.Name) and d.id == "property" for d in item.decorator_list)
        if is_property or item.name.startswith("__") and item.name != "__init__":
            continue
        target = obj if item.name == "__init__" else getattr(obj, item.name)
        assert _params(item) == _runtime_params(target), f"{name}.{item.name}"
