"""``LocalVisBackend``: scalars as JSON lines, images as PNG files, the config as YAML.

Files, under ``save_dir`` (``<log_dir>/vis_data`` in a run)::

    scalars.jsonl              {"step": 50, "loss": 0.43, "lr": 0.1}   one line per add_scalars
    config.yaml                the run's config (config.py: Python assignments instead)
    vis_image/<name>_<step>.png

Scalars go through the background JSON-lines writer (:mod:`torchkiln.logging.sinks`), so
recording them never waits on the disk. PNGs are written with Pillow (which matplotlib
depends on), or matplotlib when Pillow is missing.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from torchkiln.errors import ConfigAssertionError
from torchkiln.registry import VISBACKENDS
from torchkiln.visualization.vis_backend import BaseVisBackend

__all__ = ["LocalVisBackend"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _file_name(name: str) -> str:
    """``name`` usable as a file name: ``val/sample 1`` becomes ``val_sample_1``."""
    return _UNSAFE.sub("_", name).strip("_") or "image"


def _replace_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file, so readers never see half of it."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def _write_png(path: str, image: Any) -> None:
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow comes with matplotlib
        import matplotlib.image

        matplotlib.image.imsave(path, image, cmap="gray" if image.ndim == 2 else None)
        return
    Image.fromarray(image).save(path, format="PNG")


@VISBACKENDS.register_module()
class LocalVisBackend(BaseVisBackend):
    """Write scalars, images and the config to local files.

    :param save_dir: the folder for everything below.
    :param img_save_dir: sub-folder of ``save_dir`` for PNG images.
    :param config_save_file: file name of the config in ``save_dir``; ``.yaml``/``.yml``
        gets YAML, ``.py`` Python assignments (``key = value``), ``.json`` JSON.
    :param scalar_save_file: file name of the JSON-lines scalars (``.jsonl`` or ``.json``).
    """

    def __init__(
        self,
        save_dir: str | os.PathLike[str],
        img_save_dir: str = "vis_image",
        config_save_file: str = "config.yaml",
        scalar_save_file: str = "scalars.jsonl",
    ) -> None:
        super().__init__(save_dir)
        if not scalar_save_file.endswith((".jsonl", ".json")):
            raise ConfigAssertionError(
                f"LocalVisBackend scalar_save_file must end in .jsonl or .json, got {scalar_save_file!r}",
                where="visualizer.vis_backends.scalar_save_file",
            )
        if not config_save_file.endswith((".yaml", ".yml", ".py", ".json")):
            raise ConfigAssertionError(
                f"LocalVisBackend config_save_file must end in .yaml, .yml, .py or .json, got {config_save_file!r}",
                where="visualizer.vis_backends.config_save_file",
            )
        self._img_save_dir = os.path.join(self._save_dir, img_save_dir)
        self._config_save_file = os.path.join(self._save_dir, config_save_file)
        self._scalar_save_file = os.path.join(self._save_dir, scalar_save_file)
        self._writers: dict[str, Any] = {}
        # add_scalars' file_path -> its absolute path ("" when it is the scalars file itself)
        self._extra_paths: dict[str, str] = {}

    def _writer(self, path: str) -> Any:
        writer = self._writers.get(path)
        if writer is None or writer.closed:
            from torchkiln.logging.sinks import JsonlWriter

            writer = self._writers[path] = JsonlWriter(path)
        return writer

    # ------------------------------------------------------------------ data
    def add_config(self, config: Mapping[str, Any], text: str, **kwargs: Any) -> None:
        """Write the config file (replacing an earlier one)."""
        self.experiment  # noqa: B018 - creates the folder
        path = self._config_save_file
        if path.endswith(".py"):
            body = "".join(f"{key} = {value!r}\n" for key, value in config.items())
        elif path.endswith(".json"):
            import json

            body = json.dumps(config, indent=2, default=str) + "\n"
        else:
            body = text
        _replace_text(path, body)

    def add_image(self, name: str, image: Any, step: int = 0, **kwargs: Any) -> None:
        """Write ``vis_image/<name>_<step>.png``."""
        self.experiment  # noqa: B018
        os.makedirs(self._img_save_dir, exist_ok=True)
        _write_png(os.path.join(self._img_save_dir, f"{_file_name(name)}_{int(step)}.png"), image)

    def add_scalar(self, name: str, value: float, step: int = 0, **kwargs: Any) -> None:
        """Append ``{"step": step, name: value}`` to the scalars file."""
        self.add_scalars({name: value}, step)

    def add_scalars(
        self,
        scalar_dict: Mapping[str, float],
        step: int = 0,
        file_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        """Append ``{"step": step, **scalar_dict}`` to the scalars file, and to ``file_path``
        (relative to ``save_dir``) when given."""
        self.experiment  # noqa: B018
        import json

        from torchkiln.logging.sinks import to_jsonable

        # encoded once for both files: this runs at every log interval
        line = json.dumps(to_jsonable({"step": int(step), **scalar_dict}), ensure_ascii=False)
        self._writer(self._scalar_save_file).write_line(line)
        if file_path is not None:
            extra = self._extra_paths.get(file_path)
            if extra is None:
                joined = os.path.abspath(os.path.join(self._save_dir, file_path))
                same = joined == os.path.abspath(self._scalar_save_file)
                extra = self._extra_paths[file_path] = "" if same else joined
            if extra:
                self._writer(extra).write_line(line)

    # ------------------------------------------------------------------ files
    def flush(self) -> None:
        """Write queued scalar lines to disk."""
        for writer in self._writers.values():
            if not writer.closed:
                writer.flush()

    def close(self) -> None:
        """Flush and close the scalar files."""
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()
        super().close()
