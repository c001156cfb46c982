"""TensorboardVisBackend writes real event files: read back with TensorBoard's own reader."""

from __future__ import annotations

import numpy as np
import pytest

from torchkiln.visualization import Visualizer, build_visualizer

pytest.importorskip("tensorboard")


def _accumulator(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    return acc


def test_scalars_images_and_config_read_back(tmp_path):
    Visualizer.reset_instances()
    vis = build_visualizer({"type": "Visualizer", "vis_backends": [{"type": "TensorboardVisBackend"}]},
                           log_dir=tmp_path, config={"optim": {"lr": 0.1}})
    backend = vis.vis_backends[0]
    assert backend._env is None  # nothing opened (nor tensorboard imported) until used
    for step, loss in ((10, 2.0), (20, 1.25), (30, 0.5)):
        vis.add_scalars({"loss": loss, "lr": 0.1 * step}, step=step)
    vis.add_scalar("val/accuracy", 97.5, step=30)
    vis.add_image("sample", np.arange(12, dtype=np.uint8).reshape(2, 2, 3) * 20, step=30)
    vis.close()

    acc = _accumulator(tmp_path / "vis_data")
    tags = acc.Tags()
    assert set(tags["scalars"]) == {"loss", "lr", "val/accuracy"}
    assert [(e.step, e.value) for e in acc.Scalars("loss")] == [(10, 2.0), (20, 1.25), (30, 0.5)]
    assert [e.value for e in acc.Scalars("lr")] == pytest.approx([1.0, 2.0, 3.0])
    assert [(e.step, e.value) for e in acc.Scalars("val/accuracy")] == [(30, 97.5)]
    image = acc.Images("sample")[0]
    assert (image.step, image.width, image.height) == (30, 2, 2)
    config_events = acc.Tensors("config/text_summary")
    assert b"lr: 0.1" in config_events[0].tensor_proto.string_val[0]


def test_a_run_that_logged_nothing_still_records_its_config(tmp_path):
    vis = build_visualizer({"vis_backends": [{"type": "TensorboardVisBackend"}]}, log_dir=tmp_path, config={"a": 1})
    vis.close()
    acc = _accumulator(tmp_path / "vis_data")
    assert "config/text_summary" in acc.Tags()["tensors"]


def test_without_tensorboard_the_error_names_the_extra(tmp_path, monkeypatch):
    import importlib.util

    from torchkiln.errors import ConfigError
    from torchkiln.visualization.tensorboard_backend import TensorboardVisBackend

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name, *a))
    with pytest.raises(ConfigError, match="needs the tensorboard package") as info:
        TensorboardVisBackend(str(tmp_path))
    assert "pip install 'torchkiln[tensorboard]'" in str(info.value)
