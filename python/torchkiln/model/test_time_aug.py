"""``BaseTTAModel``: test-time augmentation, merging a model's predictions over several views.

The test dataloader gives every sample as several augmented views (a TTA pipeline), so a
batch holds, per field, one list per view: ``{'inputs': [view0_batch, view1_batch, ...],
'data_samples': [...]}``. :meth:`BaseTTAModel.test_step` runs the wrapped model's
``test_step`` once per view and hands the predictions, grouped per sample, to
:meth:`merge_preds`, which a subclass writes for its task (average scores, vote boxes, ...).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from typing import Any

from torch import nn

from torchkiln.model.base_model import BaseModel
from torchkiln.registry import MODELS

__all__ = ["BaseTTAModel"]


class BaseTTAModel(BaseModel):
    """Wraps a model for test-time augmentation; subclasses implement :meth:`merge_preds`.

    :param module: the model, or its config (built through ``MODELS``).
    :param data_preprocessor: unused by the TTA model itself (the wrapped model preprocesses
        each view); accepted for config compatibility.
    """

    def __init__(
        self,
        module: Mapping[str, Any] | nn.Module,
        data_preprocessor: Mapping[str, Any] | nn.Module | None = None,
    ) -> None:
        super().__init__(data_preprocessor=data_preprocessor)
        if isinstance(module, nn.Module):
            self.module = module
        elif isinstance(module, Mapping):
            self.module = MODELS.build(module)
        else:
            raise TypeError(
                f"{type(self).__name__}: module must be an nn.Module or a config dict, "
                f"got {type(module).__name__}"
            )

    @abstractmethod
    def merge_preds(self, data_samples_list: list[list[Any]]) -> list[Any]:
        """Merge the predictions of every view into one per sample.

        :param data_samples_list: one list per sample, holding its prediction for each view.
        :return: one merged prediction per sample.
        """

    def test_step(self, data: Any) -> list[Any]:
        """Run the wrapped model on each view and merge the predictions per sample.

        :param data: a dict (or tuple/list) whose every field is a list with one entry per view.
        :raises TypeError: ``data`` is neither a dict nor a tuple or list.
        """
        if isinstance(data, Mapping):
            num_views = len(data[next(iter(data))])
            views: list[Any] = [
                {key: value[view] for key, value in data.items()} for view in range(num_views)
            ]
        elif isinstance(data, (tuple, list)):
            num_views = len(data[0])
            views = [[field[view] for field in data] for view in range(num_views)]
        else:
            raise TypeError(
                "the test dataloader of a TTA model must give a dict, tuple or list with one "
                f"entry per view in each field, got {type(data).__name__}"
            )
        module: Any = self.module
        per_view = [module.test_step(view) for view in views]
        per_sample = [list(predictions) for predictions in zip(*per_view)]
        return self.merge_preds(per_sample)

    def train_step(self, data: Any, optim_wrapper: Any) -> dict[str, Any]:
        """Not used: a TTA model only tests (train the wrapped model instead)."""
        raise NotImplementedError(
            f"{type(self).__name__}.train_step should not be called: a test-time augmentation "
            "model only runs test_step; train the wrapped model"
        )

    def forward(self, inputs: Any, data_samples: Any = None, mode: str = "tensor") -> Any:
        """Not used: a TTA model only tests, through :meth:`test_step`."""
        raise NotImplementedError(
            f"{type(self).__name__} only supports test_step (test-time augmentation)"
        )
