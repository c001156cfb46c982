"""DigitsDataset: splits, item format, and augmentation that depends only on (seed, epoch, index)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from torchkiln.data import DigitsDataset, default_collate
from torchkiln.data.digits import load_digits_arrays
from torchkiln.errors import UsageError


def test_arrays_are_the_bundled_digits():
    images, labels = load_digits_arrays()
    assert images.shape == (1797, 64) and images.dtype == np.float32
    assert labels.shape == (1797,) and labels.dtype == np.int64
    assert images.min() == 0 and images.max() == 16
    assert np.bincount(labels).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    assert load_digits_arrays() is load_digits_arrays()  # cached per process


def test_train_and_val_are_disjoint_and_cover_everything():
    train, val = DigitsDataset("train"), DigitsDataset("val")
    assert len(val) == round(1797 * 0.2) == 359
    assert len(train) + len(val) == 1797
    assert set(train.indices).isdisjoint(val.indices)
    assert len(DigitsDataset("all")) == 1797


def test_split_is_a_function_of_the_seed():
    assert np.array_equal(DigitsDataset("val", seed=3).indices, DigitsDataset("val", seed=3).indices)
    assert not np.array_equal(DigitsDataset("val", seed=3).indices, DigitsDataset("val", seed=4).indices)


def test_test_split_aliases_val_or_is_separate():
    assert np.array_equal(DigitsDataset("test").indices, DigitsDataset("val").indices)
    kw = dict(val_fraction=0.1, test_fraction=0.1)
    parts = [set(DigitsDataset(s, **kw).indices) for s in ("train", "val", "test")]
    assert sum(map(len, parts)) == 1797
    assert parts[0].isdisjoint(parts[1]) and parts[0].isdisjoint(parts[2]) and parts[1].isdisjoint(parts[2])


def test_item_format():
    ds = DigitsDataset("val")
    x, y = ds[0]
    images, labels = load_digits_arrays()
    i = ds.indices[0]
    assert x.dtype == torch.float32 and x.shape == (64,)
    assert torch.equal(x, torch.from_numpy(images[i] / 16.0).float())
    assert y.dtype == torch.int64 and y.ndim == 0 and y.item() == labels[i]
    assert torch.equal(ds[-1][0], ds[len(ds) - 1][0])
    img, _ = DigitsDataset("val", as_image=True, normalize=False)[0]
    assert img.shape == (1, 8, 8) and torch.equal(img.reshape(-1), torch.from_numpy(images[i].copy()))
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_metainfo_and_errors():
    meta = DigitsDataset("val").metainfo
    assert meta["num_classes"] == 10 and meta["classes"][3] == "3"
    with pytest.raises(UsageError, match="unknown DigitsDataset split"):
        DigitsDataset("training")
    with pytest.raises(UsageError):
        DigitsDataset(val_fraction=0.7, test_fraction=0.4)


def test_augmentation_depends_on_seed_epoch_index_only():
    a = DigitsDataset("train", augment=True, noise_std=0.1)
    b = DigitsDataset("train", augment=True, noise_std=0.1)
    b.set_epoch(1)
    b.set_epoch(0)
    for i in (0, 5, 100):
        assert torch.equal(a[i][0], b[i][0])
        assert torch.equal(a[i][0], a[i][0])  # repeatable
    a.set_epoch(1)
    assert a.epoch == 1
    changed = sum(not torch.equal(a[i][0], b[i][0]) for i in range(20))
    assert changed >= 15  # noise makes every sample differ between epochs


def test_shift_only_augmentation_moves_pixels_and_keeps_mass_bounded():
    plain = DigitsDataset("val")
    aug = DigitsDataset("val", augment=True, max_shift=1)
    shifted = 0
    for i in range(30):
        x, y = aug[i]
        ref, ref_y = plain[i]
        assert y == ref_y
        assert x.sum() <= ref.sum() + 1e-6  # a shift with zero fill never adds ink
        shifted += not torch.equal(x, ref)
    assert shifted > 10


@pytest.mark.parametrize("persistent", [False, True])
def test_augmentation_is_the_same_through_dataloader_workers(persistent):
    ds = DigitsDataset("val", augment=True, noise_std=0.05)
    order = list(range(0, len(ds), 7))
    loader = DataLoader(ds, batch_size=8, sampler=order, num_workers=2, persistent_workers=persistent,
                        collate_fn=default_collate)
    for epoch in (0, 1):
        ds.set_epoch(epoch)
        through_workers = torch.cat([x for x, _ in loader])
        direct = torch.stack([ds[i][0] for i in order])
        assert torch.equal(through_workers, direct), f"epoch {epoch}"


def test_missing_scikit_learn_explains_the_extra(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "sklearn" else real(name, *a))
    load_digits_arrays.cache_clear()
    try:
        with pytest.raises(UsageError) as info:
            DigitsDataset("val")
        assert "torchkiln[demo]" in str(info.value)
    finally:
        monkeypatch.undo()
        load_digits_arrays.cache_clear()
    assert len(DigitsDataset("val")) == 359
