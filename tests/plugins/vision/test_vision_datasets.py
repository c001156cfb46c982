"""ImageFolder and the CIFAR pickled-batch reader on generated data."""

from __future__ import annotations

import os
import pickle

import pytest
import torch
from torchkiln.errors import ConfigError
from torchkiln.registry import DATASETS
from torchkiln_vision.datasets.cifar import read_cifar_file


def test_image_folder_reads_classes_and_applies_the_pipeline(shapes_root):
    dataset = DATASETS.build(
        {
            "type": "ImageFolder",
            "data_root": os.path.join(shapes_root, "train"),
            "pipeline": [{"type": "Resize", "size": 8, "antialias": True}],
        }
    )
    assert dataset.metainfo == {"classes": ("circle", "cross", "square", "triangle")}
    assert len(dataset) == 32 and dataset.labels[:8] == [0] * 8 and dataset.labels[-1] == 3
    item = dataset[9]
    assert item["data_samples"] == 1
    assert item["inputs"].dtype == torch.uint8 and item["inputs"].shape == (3, 8, 8)
    assert type(item["inputs"]) is torch.Tensor


def test_image_folder_errors(tmp_path, shapes_root):
    with pytest.raises(ConfigError, match="does not exist"):
        DATASETS.build({"type": "ImageFolder", "data_root": str(tmp_path / "missing")})
    (tmp_path / "empty" / "a").mkdir(parents=True)
    with pytest.raises(ConfigError, match="holds no images"):
        DATASETS.build({"type": "ImageFolder", "data_root": str(tmp_path / "empty")})
    with pytest.raises(ConfigError, match="not in classes"):
        DATASETS.build(
            {
                "type": "ImageFolder",
                "data_root": os.path.join(shapes_root, "val"),
                "classes": ["circle"],
            }
        )


def test_cifar_reader(cifar_root):
    train = DATASETS.build({"type": "CIFAR10", "data_root": cifar_root, "split": "train"})
    test = DATASETS.build(
        {
            "type": "CIFAR10",
            "data_root": cifar_root,
            "split": "test",
            "pipeline": [{"type": "CenterCrop", "size": 24}],
        }
    )
    assert len(train) == 20 and len(test) == 12
    assert train.classes == ("circle", "cross", "square", "triangle")
    assert sorted(train.labels) == [0] * 5 + [1] * 5 + [2] * 5 + [3] * 5
    assert train[0]["inputs"].shape == (3, 32, 32) and test[0]["inputs"].shape == (3, 24, 24)
    assert train[0]["inputs"].dtype == torch.uint8


def test_cifar_files_cannot_run_code(tmp_path, cifar_root):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": Evil()}))
    with pytest.raises(pickle.UnpicklingError, match="not allowed"):
        read_cifar_file(str(path))
    with pytest.raises(ConfigError, match="files missing"):
        DATASETS.build({"type": "CIFAR100", "data_root": cifar_root})
