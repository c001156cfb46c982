"""``Visualizer``: one front for every vis backend of a run, and how a run builds it.

The config key ``visualizer`` is MMEngine's::

    visualizer:
      type: Visualizer
      vis_backends:
        - {type: LocalVisBackend}
        - {type: TensorboardVisBackend}

Backends are built from ``VISBACKENDS`` with ``save_dir`` defaulting to
``<log_dir>/vis_data``. Without a ``visualizer`` key a run gets a ``LocalVisBackend`` only.
Ranks other than 0 get a visualizer without backends, so calls cost nothing there.

Every call is made at log intervals (the logger hook) or by user code, never per
iteration; values are converted here (tensors read on the host) so backends get plain data.
"""

from __future__ import annotations

import importlib
import os
import warnings
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from torchkiln.errors import BuildError, ConfigKeyError, ConfigTypeError, did_you_mean
from torchkiln.registry import VISBACKENDS
from torchkiln.visualization.vis_backend import (
    BaseVisBackend,
    config_data,
    config_text,
    to_float,
    to_hwc_uint8,
)

__all__ = ["DEFAULT_VISUALIZER", "Visualizer", "build_visualizer"]

#: What a run gets when its config has no ``visualizer``.
DEFAULT_VISUALIZER: dict[str, Any] = {
    "type": "Visualizer",
    "vis_backends": [{"type": "LocalVisBackend"}],
}

#: Sub-folder of the visualizer's ``save_dir`` where backends write (MMEngine's layout).
VIS_DATA = "vis_data"


class Visualizer:
    """Send scalars, images and the config to every vis backend.

    :param name: the instance name (:meth:`get_instance` finds visualizers by it).
    :param vis_backends: backend objects or ``VISBACKENDS`` configs (a dict or a list).
    :param save_dir: backends write into ``<save_dir>/vis_data`` unless their config names
        a ``save_dir``; without one, configs that need it are skipped with a warning.
    """

    _instance_dict: ClassVar[dict[str, Visualizer]] = {}
    _current: ClassVar[Visualizer | None] = None

    def __init__(
        self,
        name: str = "visualizer",
        vis_backends: Mapping[str, Any] | Iterable[Any] | None = None,
        save_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.instance_name = name
        self.save_dir = None if save_dir is None else os.fspath(save_dir)
        self.dataset_meta: dict[str, Any] | None = None
        self._backends: list[BaseVisBackend] = []
        if isinstance(vis_backends, Mapping):
            vis_backends = [vis_backends]
        for i, backend in enumerate(vis_backends or ()):
            built = self._build_backend(backend, f"visualizer.vis_backends[{i}]")
            if built is not None:
                self._backends.append(built)
        Visualizer._instance_dict[name] = self
        Visualizer._current = self
        from torchkiln.logging.sinks import register_flushable

        register_flushable(self)

    def _build_backend(self, backend: Any, where: str) -> BaseVisBackend | None:
        if not isinstance(backend, Mapping):
            return backend
        cfg = dict(backend)
        if "save_dir" not in cfg:
            if self.save_dir is None:
                warnings.warn(
                    f"{where} ({cfg.get('type')}) is skipped: the visualizer has no save_dir",
                    stacklevel=3,
                )
                return None
            cfg["save_dir"] = os.path.join(self.save_dir, VIS_DATA)
        return VISBACKENDS.build(cfg)

    # ------------------------------------------------------------------ instances
    @classmethod
    def get_instance(cls, name: str, **kwargs: Any) -> Visualizer:
        """The visualizer called ``name`` (created with ``kwargs`` if new); it becomes current."""
        visualizer = cls._instance_dict.get(name)
        if visualizer is None:
            visualizer = cls(name=name, **kwargs)
        Visualizer._current = visualizer
        return visualizer

    @classmethod
    def get_current_instance(cls) -> Visualizer:
        """The visualizer made or fetched last (a backend-less one if none)."""
        if Visualizer._current is None:
            return cls.get_instance("visualizer")
        return Visualizer._current

    @classmethod
    def check_instance_created(cls, name: str) -> bool:
        """Whether a visualizer called ``name`` exists."""
        return name in cls._instance_dict

    @classmethod
    def reset_instances(cls) -> None:
        """Forget every visualizer (between runs in one process, and tests)."""
        cls._instance_dict.clear()
        Visualizer._current = None

    # ------------------------------------------------------------------ backends
    @property
    def vis_backends(self) -> list[BaseVisBackend]:
        """The backends, in config order."""
        return list(self._backends)

    def get_backend(self, name: str) -> BaseVisBackend | None:
        """The backend named ``name`` (its class name, e.g. ``'TensorboardVisBackend'``)."""
        for backend in self._backends:
            if backend.name == name:
                return backend
        return None

    # ------------------------------------------------------------------ data
    def add_config(self, config: Any, **kwargs: Any) -> None:
        """Record the run's config (a :class:`~torchkiln.config.Config` or a mapping)."""
        if not self._backends:
            return
        data = config_data(config)
        text = config_text(config)
        for backend in self._backends:
            backend.add_config(data, text, **kwargs)

    def add_scalar(self, name: str, value: Any, step: int = 0, **kwargs: Any) -> None:
        """Record one scalar (a number or a one-element tensor) at ``step``.

        :raises TypeError: when ``value`` is not one number.
        """
        number = to_float(value)
        if number is None:
            raise TypeError(f"add_scalar({name!r}) needs one number, got {type(value).__name__}")
        for backend in self._backends:
            backend.add_scalar(name, number, step, **kwargs)

    def add_scalars(
        self,
        scalar_dict: Mapping[str, Any],
        step: int = 0,
        file_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        """Record every scalar of ``scalar_dict`` at ``step``; other values are left out.

        :param file_path: also append them to this file (local backend; relative to its folder).
        """
        if not self._backends:
            return
        values = {}
        for name, value in scalar_dict.items():
            number = to_float(value)
            if number is not None:
                values[str(name)] = number
        if not values:
            return
        for backend in self._backends:
            backend.add_scalars(values, step, file_path=file_path, **kwargs)

    def add_image(self, name: str, image: Any, step: int = 0, **kwargs: Any) -> None:
        """Record an image.

        :param image: a numpy array ``(H, W)`` or ``(H, W, C)`` (``uint8``, or floats in
            ``[0, 1]``), or a tensor ``(C, H, W)`` / ``(H, W)``.
        :param step: the step it belongs to (part of the local PNG's file name).
        """
        if not self._backends:
            return
        array = to_hwc_uint8(image)
        for backend in self._backends:
            backend.add_image(name, array, step, **kwargs)

    # ------------------------------------------------------------------ files
    def flush(self) -> None:
        """Push every backend's records to disk."""
        for backend in self._backends:
            backend.flush()

    def close(self) -> None:
        """Flush and close every backend (they reopen if used again)."""
        for backend in self._backends:
            backend.close()

    def __repr__(self) -> str:
        names = ", ".join(b.name for b in self._backends)
        return f"Visualizer({self.instance_name!r}, backends=[{names}])"


# ---------------------------------------------------------------------- building
_TYPE_NAMES = ("Visualizer",)


def visualizer_class(type_: Any) -> type:
    """The Visualizer class ``type_`` names (``None``: :class:`Visualizer`).

    :raises ConfigError: an unknown name, a path that does not import, not a Visualizer.
    """
    if type_ is None:
        return Visualizer
    if isinstance(type_, type):
        if not issubclass(type_, Visualizer):
            raise ConfigTypeError(
                f"visualizer.type must be a Visualizer subclass, got {type_.__name__}",
                where="visualizer.type",
            )
        return type_
    if not isinstance(type_, str):
        raise ConfigTypeError(
            f"visualizer.type must be a name, got {type(type_).__name__}", where="visualizer.type"
        )
    name = type_.rpartition("::")[2]
    if name in _TYPE_NAMES or type_ in ("mmengine.Visualizer", "mmengine.visualization.Visualizer"):
        return Visualizer
    if "." in name:  # a dotted import path
        module_name, _, attr = name.rpartition(".")
        try:
            cls = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigKeyError(
                f"cannot import visualizer type {type_!r}: {exc}", where="visualizer.type"
            ) from None
        return visualizer_class(cls)
    raise ConfigKeyError(
        f"unknown visualizer type {type_!r}",
        where="visualizer.type",
        hint=did_you_mean(name, _TYPE_NAMES)
        or "use type: Visualizer (or a dotted path to a Visualizer subclass)",
    )


def build_visualizer(
    cfg: Any = None,
    *,
    log_dir: str | os.PathLike[str] | None = None,
    rank: int = 0,
    config: Any = None,
    name: str | None = None,
) -> Any:
    """Build a run's visualizer and record the run's config with it.

    :param cfg: a visualizer object (used as it is), a config dict (``type`` defaults to
        ``Visualizer``), or None for :data:`DEFAULT_VISUALIZER`.
    :param log_dir: the run's log folder: backends write into ``<log_dir>/vis_data``.
    :param rank: ranks other than 0 get no backends.
    :param config: the run's config, given to :meth:`Visualizer.add_config` (rank 0).
    :param name: the instance name when the config has none (the experiment name).
    :raises ConfigError: an unknown type or argument.
    """
    if cfg is None:
        cfg = DEFAULT_VISUALIZER
    if isinstance(cfg, Mapping):
        args = dict(cfg)
        cls = visualizer_class(args.pop("type", None))
        args.pop("_scope_", None)
        if name is not None:
            args.setdefault("name", name)
        if log_dir is not None:
            args.setdefault("save_dir", log_dir)
        if rank != 0:
            args["vis_backends"] = []
        try:
            visualizer = cls(**args)
        except BuildError as exc:  # before TypeError: a BuildTypeError keeps its own message
            if exc.where is None:
                exc.where = "visualizer.vis_backends"
            raise
        except TypeError as exc:
            raise ConfigTypeError(
                f"cannot build the visualizer: {exc}", where="visualizer"
            ) from None
    else:
        visualizer = cfg
    add_config = getattr(visualizer, "add_config", None)
    if config is not None and rank == 0 and callable(add_config):
        add_config(config)
    return visualizer
