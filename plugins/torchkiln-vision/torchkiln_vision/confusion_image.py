"""Draw a confusion matrix as an RGB image (numpy only: no plotting library needed)."""

from __future__ import annotations

import numpy as np

__all__ = ["confusion_matrix_image"]

_WHITE = np.array([255.0, 255.0, 255.0])
_BLUE = np.array([8.0, 48.0, 107.0])
_GRID = 200


def confusion_matrix_image(matrix: np.ndarray, max_size: int = 512) -> np.ndarray:
    """A ``uint8`` ``(H, W, 3)`` heat map of ``matrix`` (rows: true class, columns: predicted).

    Each row is normalised by its total, so a cell's shade is the share of that class
    predicted as the column's class: white is none, dark blue all. Cells are square, at
    least 4 pixels, and the image at most about ``max_size`` pixels wide; a one-pixel grid
    separates them.

    :param matrix: ``(K, K)`` counts.
    :param max_size: the largest side in pixels, for many classes.
    """
    counts = np.asarray(matrix, dtype=np.float64)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1] or counts.shape[0] == 0:
        raise ValueError(
            f"a confusion matrix must be square and non-empty, got shape {counts.shape}"
        )
    k = counts.shape[0]
    totals = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    colours = (_WHITE + share[..., None] * (_BLUE - _WHITE)).round().astype(np.uint8)  # (K, K, 3)
    cell = max(4, min(32, max_size // k))
    image = np.repeat(np.repeat(colours, cell, axis=0), cell, axis=1)
    image[::cell, :, :] = _GRID
    image[:, ::cell, :] = _GRID
    return np.ascontiguousarray(image)
