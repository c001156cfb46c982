"""Fixtures of the torchkiln-vision tests: skip without the plugin; small generated data."""

from __future__ import annotations

import importlib.metadata as md

import pytest

try:
    md.distribution("torchkiln-vision")
    import torchvision  # noqa: F401
except (md.PackageNotFoundError, ImportError):  # pragma: no cover - depends on the environment
    pytest.skip(
        "torchkiln-vision is not installed (make setup installs it)", allow_module_level=True
    )


@pytest.fixture(scope="session")
def shapes_root(tmp_path_factory):
    """An image folder of 4 shapes, 16x16 pixels: 8 training and 4 validation images per class."""
    from torchkiln_vision.shapes import make_shapes_dataset

    root = tmp_path_factory.mktemp("shapes")
    return make_shapes_dataset(
        str(root), train_per_class=8, val_per_class=4, test_per_class=0, size=16, seed=3
    )


@pytest.fixture(scope="session")
def cifar_root(tmp_path_factory):
    """The same shapes in the CIFAR-10 pickled-batch layout, 32x32 pixels."""
    from torchkiln_vision.shapes import make_shapes_dataset

    root = tmp_path_factory.mktemp("cifar")
    return make_shapes_dataset(
        str(root), train_per_class=5, val_per_class=0, test_per_class=3, fmt="cifar"
    )
