"""is_installed, digit_version and TORCH_VERSION (MMEngine's mmengine.utils names)."""

from __future__ import annotations

import pytest
import torch

from torchkiln.utils import digit_version, is_installed
from torchkiln.utils.dl_utils import TORCH_VERSION


def test_is_installed_by_distribution_or_module_name():
    assert is_installed("torch") and is_installed("numpy")
    assert is_installed("pyyaml") and is_installed("yaml")  # distribution, then module name
    assert not is_installed("surely_not_a_package_xyz")
    assert not is_installed("surely_not_a_package_xyz.sub")  # no error for a missing parent
    assert not is_installed("")


def test_digit_version_orders_like_versions():
    assert digit_version("1.8") == (1, 8, 0, 0, 0, 0)
    assert digit_version("2.1.0+cu121") == digit_version("2.1.0")
    ordered = ["2.0.0.dev1", "2.0.0a1", "2.0.0b2", "2.0.0rc1", "2.0.0", "2.0.0.post1", "2.0.1"]
    digits = [digit_version(v) for v in ordered]
    assert digits == sorted(digits) and len(set(digits)) == len(digits)
    assert digit_version("1.2.3.4.5", length=5) == (1, 2, 3, 4, 5, 0, 0)
    with pytest.raises(ValueError, match="length"):
        digit_version("1.2.3.4.5")
    with pytest.raises(ValueError, match="not a PEP 440 version"):
        digit_version("banana")


def test_torch_version_is_the_installed_one():
    assert TORCH_VERSION == torch.__version__
    assert digit_version(TORCH_VERSION) >= digit_version("2.0.0")
