"""``BaseVisBackend``: what a vis backend implements, and the conversions backends share.

A backend receives values the :class:`~torchkiln.visualization.Visualizer` already
normalised: scalars as Python floats, images as ``numpy.uint8`` arrays of shape ``(H, W)``
or ``(H, W, C)`` with ``C`` 3 or 4, the config as YAML text plus its plain data. Backends
open their files on first use (:meth:`BaseVisBackend.experiment`), so building one costs
nothing, and :meth:`~BaseVisBackend.close` releases them; a closed backend reopens (appending)
when used again.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

__all__ = ["BaseVisBackend", "config_data", "config_text", "to_float", "to_hwc_uint8"]


class BaseVisBackend:
    """A destination for scalars, images and the config of a run.

    :param save_dir: the folder the backend writes into (created on first write).

    Subclasses implement :meth:`_init_env` (open files, return the "experiment" object) and
    any of ``add_config``, ``add_image``, ``add_scalar``, ``add_scalars``; the defaults do
    nothing, so a backend may support only some kinds of data.
    """

    def __init__(self, save_dir: str | os.PathLike[str]) -> None:
        self._save_dir = os.fspath(save_dir)
        self._env: Any = None

    @property
    def save_dir(self) -> str:
        """The folder this backend writes into."""
        return self._save_dir

    @property
    def name(self) -> str:
        """The name :meth:`Visualizer.get_backend` finds this backend by (its class name)."""
        return type(self).__name__

    @property
    def experiment(self) -> Any:
        """The backend's writer object, opened on first access."""
        if self._env is None:
            self._env = self._init_env()
        return self._env

    def _init_env(self) -> Any:
        """Create the save folder and open what the backend writes with."""
        os.makedirs(self._save_dir, exist_ok=True)
        return self

    def add_config(self, config: Mapping[str, Any], text: str, **kwargs: Any) -> None:
        """Record the run's config (``config`` plain data, ``text`` its YAML)."""

    def add_image(self, name: str, image: Any, step: int = 0, **kwargs: Any) -> None:
        """Record an image (``uint8`` array, ``(H, W)`` or ``(H, W, C)``)."""

    def add_scalar(self, name: str, value: float, step: int = 0, **kwargs: Any) -> None:
        """Record one scalar at ``step``."""

    def add_scalars(
        self,
        scalar_dict: Mapping[str, float],
        step: int = 0,
        file_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        """Record several scalars at ``step`` (default: :meth:`add_scalar` for each)."""
        for name, value in scalar_dict.items():
            self.add_scalar(name, value, step, **kwargs)

    def flush(self) -> None:
        """Push what was recorded to disk (nothing when the backend was never used)."""

    def close(self) -> None:
        """Flush and release files; the backend reopens them if used again."""
        self._env = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(save_dir={self._save_dir!r})"


# ---------------------------------------------------------------------- conversions
def to_float(value: Any) -> float | None:
    """``value`` as a float, or None when it is not one number (a bool counts as not).

    Reads tensors on the host: call at log intervals only.
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    numel = getattr(value, "numel", None)
    if callable(numel):  # torch.Tensor
        return float(value.detach().reshape(()).item()) if numel() == 1 else None
    size = getattr(value, "size", None)
    if isinstance(size, int) and size == 1 and hasattr(value, "dtype"):  # numpy
        return float(value.reshape(()).item())
    return None


def to_hwc_uint8(image: Any) -> Any:
    """An image as a ``numpy.uint8`` array ``(H, W)``, ``(H, W, 3)`` or ``(H, W, 4)``.

    :param image: a numpy array ``(H, W)`` or ``(H, W, C)`` (``C`` 1, 3 or 4), or a tensor
        ``(H, W)`` or ``(C, H, W)``. Floating images are taken as ``[0, 1]`` when their
        maximum is at most 1 and as ``[0, 255]`` otherwise; values are clipped.
    :raises ValueError: for another shape.
    """
    import numpy as np

    if hasattr(image, "detach"):  # torch.Tensor, channels first
        array = image.detach().cpu().numpy()
        if array.ndim == 3:
            array = np.transpose(array, (1, 2, 0))
    else:
        array = np.asarray(image)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))):
        raise ValueError(
            f"an image must be (H, W), (H, W, C) for numpy or (C, H, W) for a tensor with C in 1, 3, 4; "
            f"got shape {tuple(np.shape(image))}"
        )
    if array.dtype == np.uint8:
        return np.ascontiguousarray(array)
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * 255
    if np.issubdtype(array.dtype, np.floating):
        finite = np.nan_to_num(array.astype(np.float64), nan=0.0, posinf=255.0, neginf=0.0)
        scale = 255.0 if finite.size and finite.max() <= 1.0 else 1.0
        return np.clip(np.rint(finite * scale), 0, 255).astype(np.uint8)
    return np.clip(array, 0, 255).astype(np.uint8)


def config_data(config: Any) -> dict[str, Any]:
    """A config (:class:`~torchkiln.config.Config`, a mapping) as a plain dict."""
    to_dict = getattr(config, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    if isinstance(config, Mapping):
        return {str(k): _plain(v) for k, v in config.items()}
    raise TypeError(f"a config must be a mapping, got {type(config).__name__}")


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def config_text(config: Any) -> str:
    """A config as YAML text (``Config.dump()`` when it has one)."""
    dump = getattr(config, "dump", None)
    if callable(dump):
        try:
            text = dump()
        except TypeError:
            text = None
        if isinstance(text, str):
            return text
    data = config_data(config)
    try:
        from torchkiln._native import dump_yaml
    except ImportError:
        return json.dumps(data, indent=2, default=str) + "\n"
    try:
        return dump_yaml(data)
    except (TypeError, ValueError):
        return json.dumps(data, indent=2, default=str) + "\n"
