"""MixUp and CutMix in the data preprocessor: images and labels mixed in the same proportion."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchkiln.errors import ConfigError
from torchkiln_vision.batch_augments import CutMix, MixUp
from torchkiln_vision.preprocessor import ClsDataPreprocessor


def _draws(seed: int, augment, batch: int):
    """The proportion and permutation the augment will draw from these seeds."""
    np.random.seed(seed)
    torch.manual_seed(seed)
    lam = float(np.random.beta(augment.alpha, augment.alpha))
    perm = torch.randperm(batch)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return lam, perm


def test_mixup_mixes_images_and_targets_by_the_same_lambda():
    images = torch.rand(6, 3, 4, 4)
    targets = torch.nn.functional.one_hot(torch.tensor([0, 1, 2, 0, 1, 2]), 3).float()
    mixup = MixUp(alpha=0.4)
    lam, perm = _draws(7, mixup, 6)
    mixed, soft = mixup(images, targets)
    assert torch.allclose(mixed, lam * images + (1 - lam) * images[perm])
    assert torch.allclose(soft, lam * targets + (1 - lam) * targets[perm])
    assert torch.allclose(soft.sum(dim=1), torch.ones(6))


def test_cutmix_pastes_a_box_and_mixes_targets_by_its_area():
    images = torch.rand(5, 3, 10, 10)
    targets = torch.nn.functional.one_hot(torch.tensor([0, 1, 2, 3, 4]), 5).float()
    cutmix = CutMix(alpha=1.0)
    lam, perm = _draws(3, cutmix, 5)
    np.random.beta(1.0, 1.0)  # the same draws as inside: lambda, then the box centre
    y1, y2, x1, x2 = cutmix.box(lam, 10, 10)
    np.random.seed(3)
    torch.manual_seed(3)
    mixed, soft = cutmix(images, targets)
    inside = torch.zeros(10, 10, dtype=torch.bool)
    inside[y1:y2, x1:x2] = True
    assert inside.any() and not inside.all()
    assert torch.equal(mixed[..., inside], images[perm][..., inside])
    assert torch.equal(mixed[..., ~inside], images[..., ~inside])
    kept = 1 - inside.sum().item() / 100
    assert torch.allclose(soft, kept * targets + (1 - kept) * targets[perm])


def test_preprocessor_normalises_on_the_device_and_mixes_only_in_training():
    pre = ClsDataPreprocessor(
        mean=[10.0, 20.0, 30.0],
        std=[2.0, 4.0, 5.0],
        num_classes=3,
        batch_augments={"augments": [{"type": "MixUp", "alpha": 1.0}], "probs": [1.0]},
    )
    batch = {
        "inputs": torch.full((4, 3, 2, 2), 50, dtype=torch.uint8),
        "data_samples": torch.tensor([0, 1, 2, 1]),
    }
    out = pre(batch, training=False)
    assert out["inputs"].dtype == torch.float32
    assert torch.allclose(out["inputs"][0, :, 0, 0], torch.tensor([20.0, 7.5, 4.0]))
    assert torch.equal(out["data_samples"], batch["data_samples"])
    trained = pre(batch, training=True)
    assert trained["data_samples"].shape == (4, 3)
    assert torch.allclose(trained["data_samples"].sum(dim=1), torch.ones(4))
    assert torch.allclose(trained["inputs"], out["inputs"])  # identical images mix to themselves


def test_batch_augment_config_errors():
    with pytest.raises(ConfigError, match="unknown batch augment 'Mixup'") as info:
        ClsDataPreprocessor(num_classes=3, batch_augments=[{"type": "Mixup"}])
    assert "did you mean 'MixUp'" in str(info.value)
    with pytest.raises(ConfigError, match="need num_classes"):
        ClsDataPreprocessor(batch_augments=[{"type": "CutMix"}])
    with pytest.raises(ConfigError, match="summing to at most 1"):
        ClsDataPreprocessor(num_classes=3, batch_augments=[{"type": "CutMix"}], probs=[0.7, 0.7])
