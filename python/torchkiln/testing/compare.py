"""Assertion helpers for model and data tests, under MMEngine's ``mmengine.testing`` names.

The ``assert_*`` predicates that return ``bool`` are meant for ``assert assert_x(...)`` in a
test (they return ``False`` rather than raising, as MMEngine's do); :func:`assert_allclose`
raises like :func:`torch.testing.assert_close`.
"""

from __future__ import annotations

import runpy
import shlex
import sys
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "assert_allclose",
    "assert_attrs_equal",
    "assert_dict_contains_subset",
    "assert_dict_has_keys",
    "assert_is_norm_layer",
    "assert_keys_equal",
    "assert_params_all_zeros",
    "check_python_script",
]


def _tensor_like(value: Any) -> bool:
    """A number or an array (what ``torch.as_tensor`` turns into a tensor as it is)."""
    return isinstance(value, (bool, int, float, complex)) or hasattr(value, "__array__")


def assert_allclose(
    actual: Any,
    desired: Any,
    rtol: float | None = None,
    atol: float | None = None,
    equal_nan: bool = True,
    msg: str | None = "",
) -> None:
    """Raise ``AssertionError`` unless ``actual`` and ``desired`` are close.

    Tensors, arrays and numbers are compared as :func:`torch.testing.assert_close` compares
    them (``rtol``/``atol`` default by dtype; give both or neither), except that numbers of
    different types (an ``int`` and a ``float``) are compared by value, and a number or
    array compared with a tensor is made a tensor first.
    """
    import torch

    if (rtol is None) != (atol is None):
        raise ValueError("assert_allclose: give both rtol and atol, or neither")
    if isinstance(actual, torch.Tensor) and _tensor_like(desired):
        desired = torch.as_tensor(desired, device=actual.device)
    elif isinstance(desired, torch.Tensor) and _tensor_like(actual):
        actual = torch.as_tensor(actual, device=desired.device)
    torch.testing.assert_close(
        actual,
        desired,
        rtol=rtol,
        atol=atol,
        equal_nan=equal_nan,
        check_dtype=False,
        msg=msg or None,
    )


def _values_equal(actual: Any, expected: Any) -> bool:
    """Equality that also works for arrays and tensors (all elements equal, same shape)."""
    if hasattr(expected, "shape") or hasattr(actual, "shape"):
        import numpy as np

        try:
            return bool(np.array_equal(np.asarray(actual), np.asarray(expected)))
        except (TypeError, ValueError, RuntimeError):
            return False
    result = actual == expected
    return bool(result) if isinstance(result, bool) else bool(getattr(result, "all", lambda: 0)())


def assert_dict_contains_subset(
    dict_obj: Mapping[Any, Any], expected_subset: Mapping[Any, Any]
) -> bool:
    """True when every key of ``expected_subset`` is in ``dict_obj`` with an equal value."""
    return all(
        key in dict_obj and _values_equal(dict_obj[key], value)
        for key, value in expected_subset.items()
    )


def assert_attrs_equal(obj: Any, expected_attrs: Mapping[str, Any]) -> bool:
    """True when ``obj`` has every attribute of ``expected_attrs`` with an equal value."""
    missing = object()
    return all(
        (found := getattr(obj, name, missing)) is not missing and _values_equal(found, value)
        for name, value in expected_attrs.items()
    )


def assert_dict_has_keys(obj: Mapping[Any, Any], expected_keys: Iterable[Any]) -> bool:
    """True when ``obj`` has every key of ``expected_keys``."""
    return set(expected_keys).issubset(obj.keys())


def assert_keys_equal(result_keys: Iterable[Any], target_keys: Iterable[Any]) -> bool:
    """True when the two collections hold the same keys, in any order."""
    return set(result_keys) == set(target_keys)


def assert_is_norm_layer(module: Any) -> bool:
    """True when ``module`` is a batch, group, layer or instance normalization layer."""
    from torch import nn
    from torch.nn.modules.batchnorm import _BatchNorm
    from torch.nn.modules.instancenorm import _InstanceNorm

    return isinstance(module, (_BatchNorm, _InstanceNorm, nn.GroupNorm, nn.LayerNorm))


def assert_params_all_zeros(module: Any) -> bool:
    """True when ``module``'s ``weight`` (and ``bias``, where it has one) are all zero."""
    weight = getattr(module, "weight", None)
    if weight is None:
        return False
    if bool(weight.detach().ne(0).any()):
        return False
    bias = getattr(module, "bias", None)
    return bias is None or not bool(bias.detach().ne(0).any())


def check_python_script(cmd: str) -> None:
    """Run ``cmd`` (``"path/to/script.py --arg value"``) in this process, as ``python cmd``.

    The script runs as ``__main__`` with ``sys.argv`` set from ``cmd``; ``sys.argv`` is
    restored afterwards. A script that ends with ``sys.exit(0)`` counts as a success; any
    other exit status is raised as ``SystemExit``.
    """
    args = shlex.split(cmd)
    if not args:
        raise ValueError("check_python_script: the command is empty")
    saved = sys.argv[:]
    sys.argv = args
    try:
        runpy.run_path(args[0], run_name="__main__")
    except SystemExit as exc:
        if exc.code not in (None, 0):
            raise
    finally:
        sys.argv = saved
