"""Visualization: the :class:`Visualizer` and its vis backends, and curve plots.

A run's visualizer (``runner.visualizer``) sends scalars, images and the config to every
vis backend it holds. Backends come from the ``VISBACKENDS`` registry (and the
``torchkiln.vis_backends`` entry-point group): :class:`LocalVisBackend` writes JSON lines,
PNG images and the config under ``<log_dir>/vis_data``; :class:`TensorboardVisBackend`
writes TensorBoard event files there. ``torchkiln plot`` draws ``scalars.jsonl`` with
matplotlib (:mod:`torchkiln.visualization.plot`).

Names load on first access: importing this package imports neither torch, matplotlib nor
tensorboard.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torchkiln._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "BaseVisBackend": "torchkiln.visualization.vis_backend",
    "LocalVisBackend": "torchkiln.visualization.local_backend",
    "TensorboardVisBackend": "torchkiln.visualization.tensorboard_backend",
    "Visualizer": "torchkiln.visualization.visualizer",
    "build_visualizer": "torchkiln.visualization.visualizer",
    "plot_scalars": "torchkiln.visualization.plot",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports("torchkiln.visualization", _EXPORTS, globals())


if TYPE_CHECKING:  # pragma: no cover
    from torchkiln.visualization.local_backend import LocalVisBackend as LocalVisBackend
    from torchkiln.visualization.plot import plot_scalars as plot_scalars
    from torchkiln.visualization.tensorboard_backend import (
        TensorboardVisBackend as TensorboardVisBackend,
    )
    from torchkiln.visualization.vis_backend import BaseVisBackend as BaseVisBackend
    from torchkiln.visualization.visualizer import (
        Visualizer as Visualizer,
        build_visualizer as build_visualizer,
    )
