"""``autocast``: ``torch.autocast`` on the device the run uses, with MMEngine's defaults.

Without ``device_type`` it picks the accelerator torch sees (CUDA, else MPS, else the CPU);
without ``dtype`` it uses float16 on CUDA (bfloat16 where asked and supported) and bfloat16
on the CPU.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

__all__ = ["autocast", "get_device"]


def get_device() -> str:
    """``'cuda'`` when a CUDA device is visible, else ``'mps'`` when available, else ``'cpu'``."""
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


@contextmanager
def autocast(
    device_type: str | None = None,
    dtype: torch.dtype | None = None,
    enabled: bool = True,
    cache_enabled: bool | None = None,
) -> Iterator[None]:
    """Run the block under ``torch.autocast`` for ``device_type`` (default: the run's device).

    :param dtype: the lower precision type; float16 on CUDA and bfloat16 on the CPU by default.
    :param enabled: False runs the block in full precision (handy to switch AMP off by config).
    :param cache_enabled: whether autocast caches casted weights (torch's default when None).
    :raises RuntimeError: bfloat16 on a CUDA device without bfloat16 support.
    :raises ValueError: a device type torch's autocast does not know.
    """
    device_type = device_type or get_device()
    if cache_enabled is None:
        cache_enabled = torch.is_autocast_cache_enabled()
    if device_type == "cuda":
        if dtype is None:
            dtype = torch.float16
        if dtype == torch.bfloat16 and enabled and not torch.cuda.is_bf16_supported():
            raise RuntimeError(
                "Current CUDA Device does not support bfloat16. Please switch dtype to float16."
            )
    elif device_type == "cpu":
        if dtype is None:
            dtype = torch.bfloat16
        assert dtype in (torch.bfloat16, torch.float16), (
            f"CPU autocast supports torch.bfloat16 (and float16), got {dtype}"
        )
    try:
        context = torch.autocast(
            device_type=device_type, dtype=dtype, enabled=enabled, cache_enabled=cache_enabled
        )
    except RuntimeError as exc:
        raise ValueError(
            f"autocast does not support device_type {device_type!r}: {exc}; "
            "use 'cuda' or 'cpu' (or another device type torch.autocast knows)"
        ) from None
    with context:
        yield
