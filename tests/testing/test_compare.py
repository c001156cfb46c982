"""The assertion helpers under MMEngine's ``mmengine.testing`` names."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from torch import nn

from torchkiln.testing import (
    assert_allclose,
    assert_attrs_equal,
    assert_dict_contains_subset,
    assert_dict_has_keys,
    assert_is_norm_layer,
    assert_keys_equal,
    assert_params_all_zeros,
    check_python_script,
)


def test_assert_allclose_accepts_close_values_and_rejects_far_ones():
    assert_allclose(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0 + 1e-7]))
    assert_allclose(1, 1.0)
    with pytest.raises(AssertionError):
        assert_allclose(torch.tensor([1.0]), torch.tensor([1.1]))
    assert_allclose(torch.tensor([1.0]), torch.tensor([1.05]), rtol=0.1, atol=0.0)
    with pytest.raises(ValueError, match="both rtol and atol"):
        assert_allclose(1.0, 1.0, rtol=0.1)


def test_assert_allclose_compares_numbers_and_arrays_with_tensors():
    assert_allclose(0, torch.tensor(0))
    assert_allclose(torch.tensor([1.0, 2.0]), np.array([1.0, 2.0]))
    with pytest.raises(AssertionError):
        assert_allclose(torch.tensor(10), 0)


def test_assert_allclose_treats_nan_as_equal_by_default():
    nan = torch.tensor([float("nan")])
    assert_allclose(nan, nan)
    with pytest.raises(AssertionError):
        assert_allclose(nan, nan, equal_nan=False)


def test_dict_predicates():
    data = {"a": 1, "b": np.array([1, 2]), "c": torch.tensor([3.0])}
    assert assert_dict_contains_subset(data, {"a": 1, "b": np.array([1, 2])})
    assert assert_dict_contains_subset(data, {"c": torch.tensor([3.0])})
    assert not assert_dict_contains_subset(data, {"b": np.array([1, 3])})
    assert not assert_dict_contains_subset(data, {"d": 1})
    assert not assert_dict_contains_subset(data, {"b": np.array([1, 2, 3])})
    assert assert_dict_has_keys(data, ["a", "c"])
    assert not assert_dict_has_keys(data, ["a", "z"])
    assert assert_keys_equal(["b", "a"], ("a", "b"))
    assert not assert_keys_equal(["a"], ["a", "b"])


def test_assert_attrs_equal():
    layer = nn.Linear(2, 3)
    assert assert_attrs_equal(layer, {"in_features": 2, "out_features": 3})
    assert not assert_attrs_equal(layer, {"in_features": 4})
    assert not assert_attrs_equal(layer, {"no_such_attribute": None})


def test_norm_and_zero_predicates():
    for norm in (nn.BatchNorm2d(4), nn.GroupNorm(2, 4), nn.LayerNorm(4), nn.InstanceNorm2d(4)):
        assert assert_is_norm_layer(norm)
    assert not assert_is_norm_layer(nn.Conv2d(1, 1, 1))
    conv = nn.Conv2d(1, 2, 1)
    assert not assert_params_all_zeros(conv)
    nn.init.zeros_(conv.weight)
    assert not assert_params_all_zeros(conv)  # the bias is not zero yet
    nn.init.zeros_(conv.bias)
    assert assert_params_all_zeros(conv)
    no_bias = nn.Conv2d(1, 2, 1, bias=False)
    nn.init.zeros_(no_bias.weight)
    assert assert_params_all_zeros(no_bias)


def test_check_python_script_runs_as_main_and_restores_argv(tmp_path):
    out = tmp_path / "out.txt"
    script = tmp_path / "script.py"
    script.write_text(
        "import sys\n"
        "if __name__ == '__main__':\n"
        "    open(sys.argv[2], 'w').write(sys.argv[1])\n"
        "    sys.exit(0)\n"
    )
    argv = sys.argv[:]
    check_python_script(f"{script} hello {out}")
    assert out.read_text() == "hello"
    assert sys.argv == argv
    failing = tmp_path / "failing.py"
    failing.write_text("import sys\nsys.exit(3)\n")
    with pytest.raises(SystemExit):
        check_python_script(str(failing))
    assert sys.argv == argv
