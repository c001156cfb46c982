"""NaiveVisualizationHook: draw test inputs with their predictions through the visualizer.

Every ``interval`` test batches, each input image is turned back into what was loaded:
de-normalized (``img_norm_cfg`` in the sample's metainfo), cropped to its size before
padding (when the sample has ``pad_shape``: to ``scale``, else to the original size) and
resized to ``(ori_height, ori_width)``. It is then given to the visualizer's
``add_datasample`` (visualizers of task packages draw boxes or masks there) or, for a
visualizer without one, written with ``add_image`` under the file name of ``img_path``.
The batch is MMEngine's layout: a sequence of ``{'inputs': (1, C, H, W) tensor,
'data_sample': sample}``, zipped with the model's outputs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from torchkiln.errors import ConfigValueError
from torchkiln.hooks.hook import Hook
from torchkiln.registry import HOOKS

__all__ = ["NaiveVisualizationHook", "tensor_to_images"]

_MISSING = object()


def _meta(sample: Any, key: str, default: Any = _MISSING) -> Any:
    """``sample[key]`` for a dict, ``sample.key`` for a data element; ``default`` if absent."""
    if isinstance(sample, Mapping):
        value = sample.get(key, default)
    else:
        value = getattr(sample, key, default)
    if value is _MISSING:
        raise KeyError(f"NaiveVisualizationHook: the data sample has no {key!r}")
    return value


def _has(sample: Any, key: str) -> bool:
    return _meta(sample, key, None) is not None


def tensor_to_images(
    tensor: Any,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    to_bgr: bool = True,
) -> list[Any]:
    """Turn an ``(N, C, H, W)`` batch (C = 1 or 3) into ``N`` de-normalized HWC numpy images.

    :param mean: per-channel mean that was subtracted (default zeros).
    :param std: per-channel standard deviation it was divided by (default ones).
    :param to_bgr: reverse the channel order of 3-channel images (RGB to BGR).
    """
    import numpy as np

    if tensor.ndim != 4 or tensor.size(1) not in (1, 3):
        raise ValueError(f"expected an (N, 1|3, H, W) tensor, got shape {tuple(tensor.shape)}")
    channels = tensor.size(1)
    mean = (0.0,) * channels if mean is None else tuple(mean)
    std = (1.0,) * channels if std is None else tuple(std)
    if len(mean) != channels or len(std) != channels:
        raise ValueError(f"mean and std need {channels} values each, got {mean} and {std}")
    images = tensor.detach().permute(0, 2, 3, 1) * tensor.new_tensor(std) + tensor.new_tensor(mean)
    arrays = images.cpu().numpy()
    if to_bgr and channels == 3:
        arrays = arrays[..., ::-1]
    return [np.ascontiguousarray(image) for image in arrays]


def _resize(image: Any, width: int, height: int) -> Any:
    """Bilinear resize of an HWC numpy image to ``(height, width)``."""
    import torch

    if image.shape[:2] == (height, width):
        return image
    chw = torch.from_numpy(image.astype("float32")).permute(2, 0, 1)[None]
    out = torch.nn.functional.interpolate(
        chw, size=(height, width), mode="bilinear", align_corners=False
    )
    return out[0].permute(1, 2, 0).numpy()


def _to_uint8(image: Any) -> Any:
    import numpy as np

    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


@HOOKS.register_module()
class NaiveVisualizationHook(Hook):
    """Show or write the test predictions every ``interval`` test batches.

    :param interval: visualize every this many test batches.
    :param draw_gt: ask the visualizer to draw the ground truth.
    :param draw_pred: ask the visualizer to draw the prediction.
    """

    priority = "NORMAL"

    def __init__(self, interval: int = 1, draw_gt: bool = True, draw_pred: bool = True) -> None:
        if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
            raise ConfigValueError(
                f"NaiveVisualizationHook interval must be a positive int, got {interval!r}",
                where="custom_hooks.NaiveVisualizationHook.interval",
            )
        self._interval = interval
        self.draw_gt = draw_gt
        self.draw_pred = draw_pred

    def before_train(self, runner: Any) -> None:
        """Record the model graph where the visualizer can (``add_graph``)."""
        add_graph = getattr(runner.visualizer, "add_graph", None)
        if callable(add_graph):
            add_graph(runner.model, None)

    def after_test_iter(
        self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None
    ) -> None:
        """Draw every sample of the batch with its prediction (every ``interval`` batches)."""
        if not self.every_n_inner_iters(batch_idx, self._interval) or not data_batch:
            return
        for data, output in zip(data_batch, outputs or ()):
            sample = data["data_sample"]
            name = os.path.basename(str(_meta(sample, "img_path")))
            image = self._original_image(data["inputs"], sample)
            self._draw(runner, name, image, sample, output)

    @staticmethod
    def _original_image(inputs: Any, sample: Any) -> Any:
        norm = dict(_meta(sample, "img_norm_cfg", None) or {})
        image = tensor_to_images(inputs, **norm)[0]
        width, height = int(_meta(sample, "ori_width")), int(_meta(sample, "ori_height"))
        if _has(sample, "pad_shape"):
            unpad_width, unpad_height = _meta(sample, "scale", None) or (width, height)
            image = image[: int(unpad_height), : int(unpad_width)]
        return _resize(image, width, height)

    def _draw(self, runner: Any, name: str, image: Any, sample: Any, output: Any) -> None:
        visualizer = runner.visualizer
        add_datasample = getattr(visualizer, "add_datasample", None)
        if callable(add_datasample):
            add_datasample(name, image, sample, output, self.draw_gt, self.draw_pred)
        else:
            visualizer.add_image(name, _to_uint8(image), step=runner.iter)
