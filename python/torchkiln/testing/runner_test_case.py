"""MMEngine's module path for ``RunnerTestCase`` and its toy components.

The classes live in :mod:`torchkiln.testing.runner_case`; this module gives code written as
``from mmengine.testing.runner_test_case import RunnerTestCase, ToyModel`` the same names.
"""

from __future__ import annotations

from torchkiln.testing.runner_case import RunnerTestCase, ToyDataset, ToyMetric, ToyModel

__all__ = ["RunnerTestCase", "ToyDataset", "ToyMetric", "ToyModel"]
