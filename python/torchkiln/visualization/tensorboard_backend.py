"""``TensorboardVisBackend``: TensorBoard event files through ``torch.utils.tensorboard``.

``tensorboard --logdir work_dirs/<name>`` shows every run (each ``<timestamp>/vis_data``
folder holds one run's event files). The writer, and the import of TensorBoard, happen on
first use; until then a config given to :meth:`add_config` waits in memory. The
``SummaryWriter`` writes from its own thread; :meth:`flush` and :meth:`close` push the
events to disk.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from typing import Any

from torchkiln.errors import ConfigError
from torchkiln.registry import VISBACKENDS
from torchkiln.visualization.vis_backend import BaseVisBackend

__all__ = ["TensorboardVisBackend"]


def _markdown_code(text: str) -> str:
    """``text`` as a markdown code block (TensorBoard renders text summaries as markdown)."""
    return "\n".join("    " + line for line in text.splitlines())


@VISBACKENDS.register_module()
class TensorboardVisBackend(BaseVisBackend):
    """Write scalars, images and the config as TensorBoard events.

    :param save_dir: the folder for the event files.
    :param flush_secs: the writer pushes pending events to disk this often.
    :param max_queue: ... or when this many events are pending.
    """

    def __init__(
        self, save_dir: str | os.PathLike[str], flush_secs: int = 10, max_queue: int = 100
    ) -> None:
        super().__init__(save_dir)
        if importlib.util.find_spec("tensorboard") is None:
            raise ConfigError(
                "TensorboardVisBackend needs the tensorboard package",
                where="visualizer.vis_backends",
                hint="pip install 'torchkiln[tensorboard]' (or pip install tensorboard), or remove the backend",
            )
        self.flush_secs = flush_secs
        self.max_queue = max_queue
        self._pending_config: str | None = None

    def _init_env(self) -> Any:
        from torch.utils.tensorboard import SummaryWriter

        os.makedirs(self._save_dir, exist_ok=True)
        writer = SummaryWriter(self._save_dir, max_queue=self.max_queue, flush_secs=self.flush_secs)
        if self._pending_config is not None:
            writer.add_text("config", _markdown_code(self._pending_config))
            self._pending_config = None
        return writer

    # ------------------------------------------------------------------ data
    def add_config(self, config: Mapping[str, Any], text: str, **kwargs: Any) -> None:
        """Record the config as the text summary ``config`` (written with the first event)."""
        if self._env is None:
            self._pending_config = text
        else:
            self._env.add_text("config", _markdown_code(text))

    def add_image(self, name: str, image: Any, step: int = 0, **kwargs: Any) -> None:
        """Record an image summary."""
        self.experiment.add_image(
            name, image, int(step), dataformats="HW" if image.ndim == 2 else "HWC"
        )

    def add_scalar(self, name: str, value: float, step: int = 0, **kwargs: Any) -> None:
        """Record a scalar summary."""
        self.experiment.add_scalar(name, value, int(step))

    def add_scalars(
        self,
        scalar_dict: Mapping[str, float],
        step: int = 0,
        file_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        """One scalar summary per key (each key is its own chart; ``file_path`` is ignored)."""
        writer = self.experiment
        step = int(step)
        for name, value in scalar_dict.items():
            writer.add_scalar(name, value, step)

    # ------------------------------------------------------------------ files
    def flush(self) -> None:
        """Write pending events to disk."""
        if self._env is not None:
            self._env.flush()

    def close(self) -> None:
        """Write the config if nothing else was, then flush and close the event file."""
        if self._env is None and self._pending_config is not None:
            self.experiment  # noqa: B018 - a run that logged nothing still records its config
        if self._env is not None:
            self._env.close()
        super().close()
