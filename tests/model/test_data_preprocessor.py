"""Data preprocessors: nested casting, image conversion on the device, padding, containers."""

from __future__ import annotations

from collections import namedtuple

import pytest
import torch

from torchkiln.errors import ConfigError
from torchkiln.model import BaseDataPreprocessor, BaseModel, ImgDataPreprocessor, stack_batch
from torchkiln.registry import MODELS

Pair = namedtuple("Pair", ["inputs", "labels"])


def test_cast_data_moves_nested_tensors_and_keeps_container_types() -> None:
    pre = BaseDataPreprocessor().to("meta")
    data = {
        "inputs": [torch.ones(2), (torch.zeros(1), "name")],
        "pair": Pair(torch.ones(1), 3),
        "meta": {"id": 7},
    }
    out = pre.cast_data(data)
    assert out["inputs"][0].device.type == "meta"
    assert isinstance(out["inputs"][1], tuple) and out["inputs"][1][1] == "name"
    assert out["inputs"][1][0].device.type == "meta"
    assert isinstance(out["pair"], Pair) and out["pair"].inputs.device.type == "meta" and out["pair"].labels == 3
    assert out["meta"] == {"id": 7}
    assert data["inputs"][0].device.type == "cpu"  # the input batch is not modified


def test_forward_is_cast_and_on_cpu_is_identity_of_values() -> None:
    pre = BaseDataPreprocessor()
    x = torch.arange(4)
    out = pre({"inputs": x}, training=True)
    assert torch.equal(out["inputs"], x)


class CastRecorder(ImgDataPreprocessor):
    """Records the dtype of the images when they are moved."""

    def cast_data(self, data):
        inputs = data["inputs"] if isinstance(data, dict) else data[0]
        first = inputs if isinstance(inputs, torch.Tensor) else inputs[0]
        self.seen = first.dtype
        return super().cast_data(data)


def test_uint8_images_are_moved_before_conversion_and_normalised() -> None:
    pre = CastRecorder(mean=[1.0, 2.0, 3.0], std=[2.0, 2.0, 4.0])
    img = torch.tensor([[[[3]], [[4]], [[7]]]], dtype=torch.uint8)  # (1, 3, 1, 1)
    out = pre({"inputs": img, "data_samples": ["x"]})
    assert pre.seen == torch.uint8
    assert out["inputs"].dtype == torch.float32
    assert torch.allclose(out["inputs"].flatten(), torch.tensor([1.0, 1.0, 1.0]))
    assert out["data_samples"] == ["x"]


def test_normalisation_runs_on_the_preprocessor_device() -> None:
    pre = ImgDataPreprocessor(mean=[0.0], std=[1.0]).to("meta")
    out = pre({"inputs": torch.zeros(2, 1, 4, 4, dtype=torch.uint8)})
    assert out["inputs"].device.type == "meta" and out["inputs"].dtype == torch.float32


def test_bgr_to_rgb_swaps_channels_before_normalising() -> None:
    pre = ImgDataPreprocessor(mean=[10.0, 20.0, 30.0], std=[1.0, 1.0, 1.0], bgr_to_rgb=True)
    img = torch.tensor([10, 20, 30], dtype=torch.uint8).view(1, 3, 1, 1)
    out = pre((img, "labels"))
    assert torch.equal(out[0].flatten(), torch.tensor([20.0, 0.0, -20.0]))
    assert out[1] == "labels"


def test_batched_tensor_padding_to_divisor() -> None:
    pre = ImgDataPreprocessor(pad_size_divisor=4, pad_value=-1.0)
    out = pre({"inputs": torch.ones(2, 1, 5, 7, dtype=torch.uint8)})["inputs"]
    assert out.shape == (2, 1, 8, 8)
    assert torch.equal(out[:, :, :5, :7], torch.ones(2, 1, 5, 7))
    assert torch.equal(out[:, :, 5:, :], torch.full((2, 1, 3, 8), -1.0))
    assert torch.equal(out[:, :, :, 7:], torch.full((2, 1, 8, 1), -1.0))


def test_list_of_different_sizes_pads_to_max_rounded_up() -> None:
    pre = ImgDataPreprocessor(mean=[1.0], std=[1.0], pad_size_divisor=4, pad_value=9.0)
    imgs = [torch.full((1, 3, 5), 2, dtype=torch.uint8), torch.full((1, 6, 2), 3, dtype=torch.uint8)]
    out = pre([imgs, [0, 1]])
    assert isinstance(out, list) and out[1] == [0, 1]
    batch = out[0]
    assert batch.shape == (2, 1, 8, 8)
    assert torch.equal(batch[0, 0, :3, :5], torch.ones(3, 5))  # (2 - 1) / 1
    assert torch.equal(batch[1, 0, :6, :2], torch.full((6, 2), 2.0))
    assert batch[0, 0, 3, 0] == 9.0 and batch[1, 0, 0, 2] == 9.0


def test_list_of_equal_sizes_is_stacked() -> None:
    pre = ImgDataPreprocessor()
    out = pre({"inputs": [torch.zeros(3, 2, 2, dtype=torch.uint8)] * 3})["inputs"]
    assert out.shape == (3, 3, 2, 2) and out.dtype == torch.float32


def test_namedtuple_batches_keep_their_type() -> None:
    pre = ImgDataPreprocessor(mean=[0.0], std=[2.0])
    out = pre(Pair(torch.full((1, 1, 2, 2), 4, dtype=torch.uint8), torch.tensor([1])))
    assert isinstance(out, Pair)
    assert torch.equal(out.inputs, torch.full((1, 1, 2, 2), 2.0))


def test_float_inputs_are_not_modified_in_place() -> None:
    x = torch.full((1, 1, 2, 2), 4.0)
    ImgDataPreprocessor(mean=[1.0], std=[1.0])({"inputs": x})
    assert torch.equal(x, torch.full((1, 1, 2, 2), 4.0))


def test_configuration_errors() -> None:
    with pytest.raises(ConfigError, match="cannot both be true"):
        ImgDataPreprocessor(bgr_to_rgb=True, rgb_to_bgr=True)
    with pytest.raises(ConfigError, match="both mean and std"):
        ImgDataPreprocessor(mean=[1.0])
    with pytest.raises(ConfigError, match="`mean` should have 1 or 3 values"):
        ImgDataPreprocessor(mean=[1.0, 2.0], std=[1.0, 2.0, 3.0])
    with pytest.raises(ConfigError, match="`std` should have 1 or 3 values"):
        ImgDataPreprocessor(mean=[1.0, 2.0, 3.0], std=[1.0, 2.0])
    with pytest.raises(ConfigError, match="pad_size_divisor"):
        ImgDataPreprocessor(pad_size_divisor=0)
    with pytest.raises(ConfigError, match="zeros"):
        ImgDataPreprocessor(mean=[0.0], std=[0.0])


def test_one_mean_value_with_one_std_per_channel() -> None:
    pre = ImgDataPreprocessor(mean=[1.0], std=[1.0, 2.0, 4.0])
    assert pre._enable_normalize and not pre._channel_conversion  # MMEngine's attribute names
    out = pre({"inputs": torch.full((1, 3, 1, 1), 9.0)})["inputs"]
    assert out.flatten().tolist() == [8.0, 4.0, 2.0]
    with pytest.raises(AssertionError, match="If the mean has 3 values"):
        pre({"inputs": [torch.ones(2, 2), torch.ones(2, 2)]})  # grey images without channels


def test_input_errors() -> None:
    with pytest.raises(ValueError, match="If the mean has 3 values, the images need 3 channels"):
        ImgDataPreprocessor(mean=[0, 0, 0], std=[1, 1, 1])({"inputs": torch.zeros(1, 2, 2, 2)})
    with pytest.raises(ValueError, match="3-channel"):
        ImgDataPreprocessor(bgr_to_rgb=True)({"inputs": torch.zeros(1, 1, 2, 2)})
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        ImgDataPreprocessor()({"inputs": torch.zeros(2, 2)})
    with pytest.raises(KeyError, match="'inputs'"):
        ImgDataPreprocessor()({"img": torch.zeros(1, 1, 2, 2)})
    with pytest.raises(TypeError, match="dict with 'inputs' or a tuple"):
        ImgDataPreprocessor()(torch.zeros(1, 1, 2, 2))


def test_stack_batch_direct() -> None:
    out = stack_batch([torch.ones(2, 1, 1), torch.ones(2, 2, 3)], pad_size_divisor=1, pad_value=0.5)
    assert out.shape == (2, 2, 2, 3)
    assert out[0, 0, 1, 2] == 0.5
    with pytest.raises(ValueError, match="same channels"):
        stack_batch([torch.ones(1, 2, 2), torch.ones(3, 2, 2)])


class MixUp(BaseDataPreprocessor):
    """A custom preprocessor that mixes each sample with the next one during training."""

    def __init__(self, lam: float = 0.5) -> None:
        super().__init__()
        self.lam = lam

    def forward(self, data, training=False):
        data = self.cast_data(data)
        if training:
            x = data["inputs"]
            data["inputs"] = self.lam * x + (1 - self.lam) * x.roll(1, 0)
        return data


class Identity(BaseModel):
    def forward(self, inputs, data_samples=None, mode="tensor"):
        return inputs


def test_custom_preprocessor_through_models_registry() -> None:
    MODELS.register_module(name="MixUpForModelTests", module=MixUp, force=True)
    model = Identity(data_preprocessor=dict(type="MixUpForModelTests", lam=0.25))
    x = torch.tensor([[0.0], [4.0]])
    mixed = model.data_preprocessor({"inputs": x}, training=True)["inputs"]
    assert torch.equal(mixed, torch.tensor([[3.0], [1.0]]))
    assert torch.equal(model.val_step({"inputs": x}), x)


def test_both_preprocessors_default_to_asynchronous_copies():
    from torchkiln.model import BaseDataPreprocessor, ImgDataPreprocessor

    assert BaseDataPreprocessor()._non_blocking is True
    assert ImgDataPreprocessor()._non_blocking is True
    assert ImgDataPreprocessor(non_blocking=False)._non_blocking is False
