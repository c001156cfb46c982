"""A package written the OpenMMLab way (its own registries under the root ones, found through
``default_scope``) trains under torchkiln with no torchkiln-specific code."""

from __future__ import annotations

import sys
import textwrap

import pytest

from torchkiln.registry import HOOKS, MODELS

PACKAGE = "tk_mmstyle"

REGISTRY_PY = """
from torchkiln.registry import HOOKS as MMENGINE_HOOKS
from torchkiln.registry import MODELS as MMENGINE_MODELS
from torchkiln.registry import Registry

MODELS = Registry('model', parent=MMENGINE_MODELS, locations=['tk_mmstyle.models'])
HOOKS = Registry('hook', parent=MMENGINE_HOOKS, locations=['tk_mmstyle.hooks'])
"""

MODELS_PY = """
from kiln_toys import ToyModel

from tk_mmstyle.registry import MODELS


@MODELS.register_module()
class StyleNet(ToyModel):
    def __init__(self, width=3):
        super().__init__()
        self.width = width
"""

HOOKS_PY = """
from torchkiln.hooks import Hook

from tk_mmstyle.registry import HOOKS


@HOOKS.register_module()
class StyleCounter(Hook):
    def __init__(self):
        self.iters = 0

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.iters += 1
"""


@pytest.fixture()
def mmstyle_package(tmp_path, monkeypatch):
    pkg = tmp_path / PACKAGE
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "registry.py").write_text(textwrap.dedent(REGISTRY_PY))
    (pkg / "models.py").write_text(textwrap.dedent(MODELS_PY))
    (pkg / "hooks.py").write_text(textwrap.dedent(HOOKS_PY))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield pkg
    for root in (MODELS, HOOKS):
        root._children.pop(PACKAGE, None)
    for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
        del sys.modules[name]


def test_the_child_registries_join_the_roots_with_the_package_as_scope(mmstyle_package) -> None:
    from tk_mmstyle.registry import MODELS as CHILD

    assert CHILD.parent is MODELS and CHILD.scope == PACKAGE
    assert MODELS.children[PACKAGE] is CHILD
    assert "tk_mmstyle.models" not in sys.modules  # locations wait for the first lookup
    net = CHILD.get("StyleNet")
    assert MODELS.get("tk_mmstyle::StyleNet") is net
    assert MODELS.get("tk_mmstyle.StyleNet") is net
    # the child finds torchkiln's own components through its parent
    assert CHILD.get("DigitsMLP") is MODELS.get("DigitsMLP")


def test_scoped_type_imports_the_packages_registry_on_demand(mmstyle_package) -> None:
    assert "tk_mmstyle" not in sys.modules
    model = MODELS.build({"type": "tk_mmstyle::StyleNet", "width": 5})
    assert type(model).__name__ == "StyleNet" and model.width == 5


def test_a_run_with_default_scope_builds_from_the_packages_registries(mmstyle_package, tmp_path) -> None:
    from kiln_toys import make_loader

    from torchkiln import Runner

    runner = Runner(
        model={"type": "StyleNet"},
        work_dir=str(tmp_path / "work"),
        train_dataloader=make_loader(8, 4),
        train_cfg={"by_epoch": True, "max_epochs": 1},
        optim_wrapper={"optimizer": {"type": "SGD", "lr": 0.1}},
        custom_hooks=[{"type": "StyleCounter"}],
        default_hooks={"checkpoint": None, "progress_bar": None},
        default_scope=PACKAGE,
    )
    assert type(runner.model).__name__ == "StyleNet"
    runner.train()
    [counter] = [h for h in runner.hook_host.get_plugins() if type(h).__name__ == "StyleCounter"]
    assert counter.iters == 2


def test_config_validation_finds_the_packages_names_through_default_scope(mmstyle_package) -> None:
    from torchkiln.config import validate

    assert "tk_mmstyle" not in sys.modules
    cfg = {"model": {"type": "StyleNet", "width": 2}, "custom_hooks": [{"type": "StyleCounter"}]}
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # default_scope names a package with registries: no warning
        assert validate({**cfg, "default_scope": PACKAGE}) == []
    errors = validate({"model": {"type": "StyleNet", "depth": 2}, "default_scope": PACKAGE})
    assert len(errors) == 1 and "StyleNet got an unexpected argument 'depth'" in str(errors[0])
