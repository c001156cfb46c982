"""Data preprocessors: the first step of ``train_step``/``val_step``, run on the device.

A preprocessor receives the collated batch, moves it to the model's device and may transform
it (normalise, pad, mix). Its ``device`` follows the model it belongs to through any
``.to()``, ``.cuda()``, ``.cpu()`` or ``.to_empty()`` of the model or of itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from torchkiln.errors import ConfigAssertionError, ConfigValueError, UsageValueError
from torchkiln.registry import MODELS

_TENSOR = torch.Tensor


class _ChannelMismatch(UsageValueError, AssertionError):
    """Images whose channels do not match ``mean``/``std`` (MMEngine asserts there)."""


__all__ = ["BaseDataPreprocessor", "ImgDataPreprocessor", "stack_batch"]


@MODELS.register_module()
class BaseDataPreprocessor(nn.Module):
    """Moves a (nested) batch to the model's device.

    Tensors anywhere in dicts, lists, tuples and namedtuples are moved; other leaves (strings,
    numbers, metadata objects) pass through unchanged.

    :param non_blocking: copy host-to-device asynchronously (effective with pinned memory,
        ``pin_memory=True`` in the dataloader). Copies towards the CPU are always blocking, so
        the host never reads a tensor before it has arrived. The default is ``True`` here and
        in :class:`ImgDataPreprocessor` (MMEngine's is ``False``): a blocking copy from pinned
        memory makes the host wait for all the device work queued before it, a
        synchronisation every iteration; an asynchronous one is ordered on the device's
        stream before any use of the batch, so it is just as safe.
    """

    def __init__(self, non_blocking: bool = True) -> None:
        super().__init__()
        self._non_blocking = non_blocking
        self._device = torch.device("cpu")
        self._on_cpu = True

    @property
    def device(self) -> torch.device:
        """The device batches are moved to (the model's device)."""
        return self._device

    def _apply(self, fn: Callable[[torch.Tensor], torch.Tensor], recurse: bool = True) -> nn.Module:
        # ``.to()/.cuda()/.cpu()/.to_empty()`` of this module or any parent end up here; a probe
        # tensor tells where ``fn`` sends tensors, so the device needs no override of each method.
        result = super()._apply(fn, recurse)
        probe = None
        for source in (self._device, torch.device("cpu")):  # "meta" cannot be copied out of
            try:
                probe = fn(torch.empty(0, device=source))
                break
            except Exception:  # a probe failure must never break the move
                continue
        if isinstance(probe, torch.Tensor):
            self._device = probe.device
            self._on_cpu = probe.device.type == "cpu"
        return result

    def cast_data(self, data: Any) -> Any:
        """Return ``data`` with every tensor moved to :attr:`device` (containers rebuilt).

        A tuple, list or dict of tensors already on the CPU, bound for the CPU, is returned
        as it is (checked without building anything: this runs every iteration).
        """
        if self._on_cpu:
            cls = type(data)
            items = data if cls is tuple or cls is list else data.values() if cls is dict else None
            if items is not None:
                tensor = _TENSOR
                for item in items:
                    if type(item) is not tensor or not item.is_cpu:
                        break
                else:
                    return data
        device = self._device
        on_cpu = self._on_cpu
        non_blocking = self._non_blocking and not on_cpu

        # Runs every iteration: the exact built-in containers are handled first, and a CPU
        # tensor bound for the CPU is returned as is (``.to`` would return it too, at the
        # cost of a dispatcher call).
        def cast(obj: Any) -> Any:
            cls = type(obj)
            if cls is tuple or cls is list:
                return cls([cast(v) for v in obj])
            if cls is dict:
                return {k: cast(v) for k, v in obj.items()}
            if isinstance(obj, torch.Tensor):
                if on_cpu and obj.is_cpu:
                    return obj
                return obj.to(device, non_blocking=non_blocking)
            if isinstance(obj, Mapping):
                items = {k: cast(v) for k, v in obj.items()}
                try:
                    return cls(items)
                except TypeError:  # a mapping type whose constructor takes other arguments
                    return items
            if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # namedtuple
                return cls(*(cast(v) for v in obj))
            if isinstance(obj, (list, tuple)):
                return cls(cast(v) for v in obj)
            return obj

        return cast(data)

    def forward(self, data: Any, training: bool = False) -> Any:
        """Move ``data`` to the device.

        :param data: the collated batch.
        :param training: whether this is a training step (subclasses may augment then).
        """
        return self.cast_data(data)


def stack_batch(
    tensors: Sequence[torch.Tensor], pad_size_divisor: int = 1, pad_value: float = 0
) -> torch.Tensor:
    """Stack (C, H, W, ...) tensors into one (N, C, H', W', ...) batch, padding at the end.

    Every spatial size becomes the batch maximum rounded up to a multiple of
    ``pad_size_divisor``; padded cells hold ``pad_value``.

    :param tensors: tensors with the same number of dimensions and channels.
    :param pad_size_divisor: round padded sizes up to a multiple of this.
    :param pad_value: the padding value.
    """
    if not tensors:
        raise ValueError("stack_batch needs at least one tensor")
    first = tensors[0]
    if any(t.dim() != first.dim() or t.shape[0] != first.shape[0] for t in tensors):
        shapes = [tuple(t.shape) for t in tensors]
        raise ValueError(
            f"stack_batch needs tensors with the same channels and dimensions, got {shapes}"
        )
    spatial = [max(t.shape[d] for t in tensors) for d in range(1, first.dim())]
    if pad_size_divisor > 1:
        spatial = [math.ceil(s / pad_size_divisor) * pad_size_divisor for s in spatial]
    if all(tuple(t.shape[1:]) == tuple(spatial) for t in tensors):
        return torch.stack(list(tensors))
    out = first.new_full((len(tensors), first.shape[0], *spatial), pad_value)
    for i, t in enumerate(tensors):
        index: tuple[int | slice, ...] = (i, slice(None), *(slice(0, s) for s in t.shape[1:]))
        out[index] = t
    return out


@MODELS.register_module()
class ImgDataPreprocessor(BaseDataPreprocessor):
    """Moves images to the device, then converts, normalises and pads them there.

    Moving ``uint8`` images before converting them sends four times fewer bytes to the
    accelerator and does the arithmetic on it.

    The batch is a dict with ``'inputs'`` or a tuple/list whose first element is the inputs;
    the same kind comes back with the inputs replaced. Inputs are an (N, C, H, W) tensor or a
    list of (C, H, W) tensors of possibly different sizes (padded at the bottom and right, to
    the largest size rounded up to ``pad_size_divisor``). Padding happens after normalisation,
    so ``pad_value`` is in normalised units.

    :param mean: per-channel mean: one value for every channel, or one per channel;
        ``None`` skips normalisation.
    :param std: per-channel standard deviation, likewise (``mean`` and ``std`` may differ in
        length when one of them has a single value).
    :param pad_size_divisor: padded height and width are multiples of this.
    :param pad_value: value of padded pixels.
    :param bgr_to_rgb: swap the first and third channels (3-channel images).
    :param rgb_to_bgr: the same swap, named for the other direction.
    :param non_blocking: asynchronous host-to-device copies (default ``True``, as in
        :class:`BaseDataPreprocessor`, which says why).
    """

    mean: torch.Tensor  # registered buffers, present when normalising
    std: torch.Tensor

    def __init__(
        self,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        pad_size_divisor: int = 1,
        pad_value: float = 0,
        bgr_to_rgb: bool = False,
        rgb_to_bgr: bool = False,
        non_blocking: bool = True,
    ) -> None:
        super().__init__(non_blocking=non_blocking)
        if bgr_to_rgb and rgb_to_bgr:
            raise ConfigAssertionError(
                "ImgDataPreprocessor: bgr_to_rgb and rgb_to_bgr cannot both be true "
                "(`bgr2rgb` and `rgb2bgr` are the same swap)",
                hint="both swap channels 0 and 2; set only one",
            )
        if (mean is None) != (std is None):
            raise ConfigAssertionError(
                "ImgDataPreprocessor: give both mean and std, or neither "
                "(mean and std should be both None or both sequences)"
            )
        if not isinstance(pad_size_divisor, int) or pad_size_divisor < 1:
            raise ConfigValueError(
                f"ImgDataPreprocessor: pad_size_divisor must be a positive int, got {pad_size_divisor!r}"
            )
        # ``_enable_normalize`` and ``_channel_conversion`` keep MMEngine's attribute names:
        # subclasses written for it (task preprocessors) read them.
        self._enable_normalize = mean is not None
        if mean is not None and std is not None:
            mean_t = torch.as_tensor(mean, dtype=torch.float32).flatten()
            std_t = torch.as_tensor(std, dtype=torch.float32).flatten()
            channels = max(mean_t.numel(), std_t.numel())
            for name, values in (("mean", mean_t), ("std", std_t)):
                if values.numel() not in (1, channels):
                    raise ConfigAssertionError(
                        f"ImgDataPreprocessor: `{name}` should have 1 or {channels} values "
                        f"(one for all channels, or one per channel), got {values.numel()}",
                        hint="give mean and std one value each per channel, e.g. 3 for RGB",
                    )
            if bool((std_t == 0).any()):
                raise ConfigValueError("ImgDataPreprocessor: std must not contain zeros")
            self.register_buffer("mean", mean_t.view(-1, 1, 1), persistent=False)
            self.register_buffer("std", std_t.view(-1, 1, 1), persistent=False)
        self._channel_conversion = bgr_to_rgb or rgb_to_bgr
        self.pad_size_divisor = pad_size_divisor
        self.pad_value = pad_value

    def _convert(self, x: torch.Tensor) -> torch.Tensor:
        """Channel swap, float conversion and normalisation of (..., C, H, W) on its device."""
        channel_dim = x.dim() - 3
        if self._channel_conversion:
            if x.shape[channel_dim] != 3:
                raise ValueError(
                    f"ImgDataPreprocessor: bgr_to_rgb/rgb_to_bgr need 3-channel images, got shape {tuple(x.shape)}"
                )
            x = x.flip(channel_dim)
        x = x.float()
        if self._enable_normalize:
            self._check_channels(x, channel_dim)
            x = (x - self.mean) / self.std
        return x

    def _check_channels(self, x: torch.Tensor, channel_dim: int) -> None:
        c = max(self.mean.shape[0], self.std.shape[0])
        if c != 1 and (channel_dim < 0 or x.shape[channel_dim] != c):
            raise _ChannelMismatch(
                f"ImgDataPreprocessor: If the mean has {c} values, the images need {c} "
                f"channels, (C, H, W) each or (N, C, H, W); got shape {tuple(x.shape)}",
                hint="give grey images a channel dimension, or one mean/std value",
            )

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        d = self.pad_size_divisor
        if d == 1:
            return x
        h, w = x.shape[-2:]
        pad_h = math.ceil(h / d) * d - h
        pad_w = math.ceil(w / d) * d - w
        if pad_h == 0 and pad_w == 0:
            return x
        return F.pad(x, (0, pad_w, 0, pad_h), mode="constant", value=self.pad_value)

    def process_inputs(self, inputs: Any) -> torch.Tensor:
        """Convert the (already moved) inputs into one normalised, padded (N, C, H, W) batch."""
        if isinstance(inputs, torch.Tensor):
            if inputs.dim() != 4:
                raise ValueError(
                    f"ImgDataPreprocessor expects inputs of shape (N, C, H, W), got {tuple(inputs.shape)}"
                )
            return self._pad(self._convert(inputs))
        if (
            isinstance(inputs, (list, tuple))
            and inputs
            and all(isinstance(t, torch.Tensor) for t in inputs)
        ):
            if any(t.dim() != 3 for t in inputs):
                if self._enable_normalize:
                    for t in inputs:
                        self._check_channels(t, t.dim() - 3)
                raise ValueError(
                    "ImgDataPreprocessor expects a list of (C, H, W) tensors, got shapes "
                    f"{[tuple(t.shape) for t in inputs]}"
                )
            if all(t.shape == inputs[0].shape for t in inputs):
                return self._pad(self._convert(torch.stack(list(inputs))))
            return stack_batch(
                [self._convert(t) for t in inputs], self.pad_size_divisor, self.pad_value
            )
        raise TypeError(
            "ImgDataPreprocessor expects inputs as an (N, C, H, W) tensor or a list of (C, H, W) tensors, "
            f"got {type(inputs).__name__}"
        )

    def forward(self, data: Any, training: bool = False) -> Any:
        """Move the batch to the device, then convert, normalise and pad its inputs.

        :param data: ``{'inputs': ..., ...}`` or ``(inputs, ...)``.
        :param training: whether this is a training step.
        """
        if isinstance(data, Mapping):
            if "inputs" not in data:
                raise KeyError(
                    f"ImgDataPreprocessor expects a batch dict with an 'inputs' key, got keys {sorted(data)}"
                )
            data = self.cast_data(data)
            out = dict(data)
            out["inputs"] = self.process_inputs(data["inputs"])
            return out
        if isinstance(data, (list, tuple)) and data:
            data = self.cast_data(data)
            rest = list(data[1:])
            inputs = self.process_inputs(data[0])
            if isinstance(data, tuple) and hasattr(data, "_fields"):
                return type(data)(inputs, *rest)
            return type(data)([inputs, *rest])
        raise TypeError(
            "ImgDataPreprocessor expects a dict with 'inputs' or a tuple (inputs, ...), "
            f"got {type(data).__name__}"
        )
