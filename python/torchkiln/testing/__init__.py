"""The plugin author's test kit: run a tiny training with a config fragment, see what happened.

``pytest`` loads :mod:`torchkiln.testing.plugin` by itself once torchkiln is installed (the
``pytest11`` entry point), which gives every test suite the fixtures:

- ``kiln_run``: ``kiln_run(fragment, **options)`` trains a small MLP on the bundled digits
  for a few iterations in a fresh work dir under ``tmp_path`` and returns a
  :class:`TrainingResult` (work dir, the logged scalars, the mount points each hook was
  called at, the checkpoints, the exit code).
- ``kiln_config``: the base config those runs start from (a fresh dict per test).

The same is importable for scripts: :func:`run_training`, :func:`tiny_config`,
:func:`merge_config`. The assertion helpers MMEngine tests use (``assert_allclose``,
``assert_dict_contains_subset``, ...) are here under the same names, and so is ``RunnerTestCase``, the ``unittest`` base class
with ready-made small runner configs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torchkiln._lazy import lazy_exports
from torchkiln.testing.compare import (
    assert_allclose,
    assert_attrs_equal,
    assert_dict_contains_subset,
    assert_dict_has_keys,
    assert_is_norm_layer,
    assert_keys_equal,
    assert_params_all_zeros,
    check_python_script,
)
from torchkiln.testing.runs import TrainingResult, merge_config, run_training, tiny_config

# The runner test case imports torch: loaded on first use, so that pytest (which loads this
# package as a plugin) does not import torch for every test session.
__getattr__, _ = lazy_exports(
    "torchkiln.testing",
    dict.fromkeys(
        ("RunnerTestCase", "ToyDataset", "ToyMetric", "ToyModel"), "torchkiln.testing.runner_case"
    ),
    globals(),
)

__all__ = [
    "RunnerTestCase",
    "ToyDataset",
    "ToyMetric",
    "ToyModel",
    "TrainingResult",
    "assert_allclose",
    "assert_attrs_equal",
    "assert_dict_contains_subset",
    "assert_dict_has_keys",
    "assert_is_norm_layer",
    "assert_keys_equal",
    "assert_params_all_zeros",
    "check_python_script",
    "merge_config",
    "run_training",
    "tiny_config",
]


if TYPE_CHECKING:  # pragma: no cover
    from torchkiln.testing.runner_case import (
        RunnerTestCase as RunnerTestCase,
        ToyDataset as ToyDataset,
        ToyMetric as ToyMetric,
        ToyModel as ToyModel,
    )
