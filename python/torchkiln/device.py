"""Which accelerator this process can use: MMEngine's ``mmengine.device`` queries.

Each ``is_*_available`` asks torch (or the vendor extension that adds the device to torch)
and answers False when the extension is not installed, so code that branches on these
queries runs unchanged. torchkiln itself trains on CUDA, MPS or the CPU; the Ascend (NPU),
Cambricon (MLU), Moore Threads (MUSA) and DIPU queries exist so that such code can ask.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import torch

__all__ = [
    "get_device",
    "get_max_cuda_memory",
    "is_cuda_available",
    "is_dipu_available",
    "is_mlu_available",
    "is_mps_available",
    "is_musa_available",
    "is_npu_available",
    "is_npu_support_full_precision",
]


def _vendor_available(attribute: str) -> bool:
    """``torch.<attribute>.is_available()`` of a device a vendor extension adds to torch."""
    module = getattr(torch, attribute, None)
    is_available = getattr(module, "is_available", None)
    try:
        return bool(is_available()) if callable(is_available) else False
    except Exception:  # a half-installed vendor stack reports unavailable, not a crash
        return False


def is_cuda_available() -> bool:
    """Whether a CUDA device (or a ROCm device through torch.cuda) can be used."""
    return torch.cuda.is_available()


def is_mps_available() -> bool:
    """Whether Apple's Metal (MPS) device can be used."""
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def is_npu_available() -> bool:
    """Whether an Ascend NPU can be used (needs the ``torch_npu`` extension, imported first)."""
    return _vendor_available("npu")


def is_mlu_available() -> bool:
    """Whether a Cambricon MLU can be used (needs the ``torch_mlu`` extension)."""
    is_available = getattr(torch, "is_mlu_available", None)
    return bool(is_available()) if callable(is_available) else _vendor_available("mlu")


def is_musa_available() -> bool:
    """Whether a Moore Threads MUSA device can be used (needs the ``torch_musa`` extension)."""
    return _vendor_available("musa")


def is_dipu_available() -> bool:
    """Whether the DIPU device interface (``torch_dipu``) is installed."""
    return importlib.util.find_spec("torch_dipu") is not None


def is_npu_support_full_precision() -> bool:
    """Whether the NPU computes in full float32 precision (False without an NPU)."""
    if not is_npu_available():
        return False
    version = getattr(getattr(torch, "npu", None), "get_soc_version", None)
    try:
        return bool(callable(version) and version() >= 220)
    except Exception:
        return False


def get_device() -> str:
    """The device type to run on: ``npu``, ``cuda``, ``mlu``, ``mps``, ``musa`` or ``cpu``
    (the first available, in that order)."""
    for name, available in (
        ("npu", is_npu_available),
        ("cuda", is_cuda_available),
        ("mlu", is_mlu_available),
        ("mps", is_mps_available),
        ("musa", is_musa_available),
    ):
        if available():
            return name
    return "cpu"


def get_max_cuda_memory(device: Any = None) -> int:
    """The peak CUDA memory allocated on ``device`` since the last call, in MiB; resets the peak.

    :param device: a CUDA device (index, name or ``torch.device``); the current one if None.
    """
    peak = torch.cuda.max_memory_allocated(device=device)
    torch.cuda.reset_peak_memory_stats(device)
    return int(peak) // (1024 * 1024)
