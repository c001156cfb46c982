"""What counts as a scalar for the scalar histories and the log lines."""

from __future__ import annotations

from typing import Any

__all__ = ["is_scalar"]


def is_scalar(value: Any) -> bool:
    """A number or a one-element tensor/array (not a bool): something a scalar history can hold."""
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    numel = getattr(value, "numel", None)
    if callable(numel):  # torch.Tensor
        return bool(numel() == 1)
    size = getattr(value, "size", None)
    return isinstance(size, int) and size == 1 and hasattr(value, "dtype")  # numpy
