"""NaiveVisualizationHook: test inputs restored to their loaded form and handed to the visualizer."""

from __future__ import annotations

import os
import types

import numpy as np
import pytest
import torch

from torchkiln.errors import ConfigError
from torchkiln.hooks import NaiveVisualizationHook
from torchkiln.hooks.naive_visualization_hook import tensor_to_images
from torchkiln.visualization import Visualizer


class Recorder:
    """A visualizer with MMEngine's ``add_datasample``: records what it is given."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def add_datasample(self, name, image, data_sample, output, draw_gt, draw_pred) -> None:
        self.calls.append((name, image, data_sample, output, draw_gt, draw_pred))


def _runner(visualizer) -> types.SimpleNamespace:
    return types.SimpleNamespace(visualizer=visualizer, iter=3, model=torch.nn.Linear(1, 1))


def _batch(meta: dict, inputs: torch.Tensor) -> list[dict]:
    return [{"inputs": inputs, "data_sample": meta}]


def test_tensor_to_images_denormalizes_and_flips_channels():
    tensor = torch.zeros(1, 3, 2, 2)
    tensor[0, 0] = 1.0  # red channel
    (image,) = tensor_to_images(tensor, mean=(10, 20, 30), std=(2, 2, 2), to_bgr=True)
    assert image.shape == (2, 2, 3)
    assert image[0, 0].tolist() == [30.0, 20.0, 12.0]  # BGR: red (1*2+10) last
    (gray,) = tensor_to_images(torch.ones(1, 1, 2, 2), to_bgr=False)
    assert gray.shape == (2, 2, 1)
    with pytest.raises(ValueError, match="mean and std"):
        tensor_to_images(tensor, mean=(0,), std=(1,))


def test_unpad_then_resize_to_the_original_size():
    inputs = torch.arange(15 * 15, dtype=torch.float32).reshape(1, 1, 15, 15).repeat(1, 3, 1, 1)
    meta = {
        "scale": (10, 10),
        "pad_shape": (15, 15, 3),
        "ori_height": 5,
        "ori_width": 5,
        "img_path": "data/cat.jpg",
    }
    visualizer = Recorder()
    NaiveVisualizationHook().after_test_iter(_runner(visualizer), 0, _batch(meta, inputs), ["pred"])
    ((name, image, sample, output, draw_gt, draw_pred),) = visualizer.calls
    assert (name, sample, output, draw_gt, draw_pred) == ("cat.jpg", meta, "pred", True, True)
    assert image.shape == (5, 5, 3)
    # The padded rows/columns (values >= 10 in either index) are cut before resizing.
    crop = inputs[0, 0, :10, :10]
    assert image.max() <= crop.max().item() and image.min() >= crop.min().item()


def test_only_resize_and_interval():
    inputs = torch.rand(1, 3, 15, 15)
    meta = {
        "ori_height": 4,
        "ori_width": 6,
        "img_path": "a.png",
        "img_norm_cfg": {"mean": (0, 0, 0), "std": (0.5, 0.5, 0.5), "to_bgr": False},
    }
    visualizer = Recorder()
    hook = NaiveVisualizationHook(interval=2, draw_gt=False)
    hook.after_test_iter(_runner(visualizer), 0, _batch(meta, inputs), ["p"])
    assert visualizer.calls == []  # batch 0 is not the 2nd
    hook.after_test_iter(_runner(visualizer), 1, _batch(meta, inputs), ["p"])
    ((_, image, _, _, draw_gt, _),) = visualizer.calls
    assert image.shape == (4, 6, 3) and draw_gt is False
    assert image.max() <= 0.5 + 1e-6  # de-normalized with std 0.5


def test_without_add_datasample_the_image_is_written(tmp_path):
    visualizer = Visualizer(vis_backends=[{"type": "LocalVisBackend"}], save_dir=str(tmp_path))
    meta = {"ori_height": 15, "ori_width": 15, "img_path": "x/dog.jpg"}
    inputs = torch.full((1, 3, 15, 15), 200.0)
    NaiveVisualizationHook().after_test_iter(_runner(visualizer), 0, _batch(meta, inputs), ["p"])
    visualizer.close()
    written = [f for _, _, files in os.walk(tmp_path) for f in files if f.endswith(".png")]
    assert written == ["dog.jpg_3.png"]


def test_before_train_records_the_graph_when_supported():
    graphs = []
    runner = _runner(types.SimpleNamespace(add_graph=lambda model, inputs: graphs.append(model)))
    NaiveVisualizationHook().before_train(runner)
    assert graphs == [runner.model]
    NaiveVisualizationHook().before_train(_runner(types.SimpleNamespace()))  # no add_graph


def test_interval_must_be_positive():
    with pytest.raises(ConfigError, match="interval"):
        NaiveVisualizationHook(interval=0)


def test_registered_as_a_hook():
    from torchkiln.registry import HOOKS

    assert isinstance(HOOKS.build({"type": "NaiveVisualizationHook"}), NaiveVisualizationHook)
    assert np.uint8  # numpy is a dependency of the hook's image handling
