"""``LabelData``: a sample's label-level fields (class labels, scores), with one-hot helpers."""

from __future__ import annotations

import torch

from torchkiln.structures.base_data_element import BaseDataElement

__all__ = ["LabelData"]


class LabelData(BaseDataElement):
    """Label-level annotations or predictions of one sample.

    Example::

        data = LabelData(metainfo=dict(num_classes=5), label=torch.tensor([1, 3]))
        LabelData.label_to_onehot(data.label, 5)   # tensor([0, 1, 0, 1, 0])
    """

    @staticmethod
    def onehot_to_label(onehot: torch.Tensor) -> torch.Tensor:
        """The indices of the ones of a 1-D one-hot (or multi-hot) tensor.

        :raises ValueError: when ``onehot`` is not 1-D or holds values other than 0 and 1.
        """
        assert isinstance(onehot, torch.Tensor), "onehot must be a tensor"
        if onehot.ndim == 1 and onehot.max().item() <= 1 and onehot.min().item() >= 0:
            return onehot.nonzero().squeeze(-1)
        raise ValueError(
            "input is not one-hot and can not convert to label: expected a 1-D tensor of 0s and 1s"
        )

    @staticmethod
    def label_to_onehot(label: torch.Tensor, num_classes: int) -> torch.Tensor:
        """A one-hot tensor of length ``num_classes`` with ones at ``label`` (same dtype)."""
        assert isinstance(label, torch.Tensor), "label must be a tensor"
        onehot = label.new_zeros((num_classes,))
        assert max(label, default=torch.tensor(0)).item() < num_classes, (
            f"label {label.tolist()} is out of range for {num_classes} classes"
        )
        onehot[label] = 1
        return onehot
