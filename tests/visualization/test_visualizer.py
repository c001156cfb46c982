"""Visualizer: building from config, the default, fan-out to backends, value conversion."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from torchkiln.errors import BuildError, ConfigError
from torchkiln.registry import VISBACKENDS
from torchkiln.visualization import LocalVisBackend, TensorboardVisBackend, Visualizer, build_visualizer
from torchkiln.registry._index import builtin_components
from torchkiln.visualization.vis_backend import BaseVisBackend, to_hwc_uint8


@pytest.fixture(autouse=True)
def _fresh_instances():
    Visualizer.reset_instances()
    yield
    Visualizer.reset_instances()


class Recorder(BaseVisBackend):
    """Keeps every call."""

    def __init__(self, save_dir):
        super().__init__(save_dir)
        self.calls = []

    def add_config(self, config, text, **kwargs):
        self.calls.append(("config", config, text))

    def add_image(self, name, image, step=0, **kwargs):
        self.calls.append(("image", name, image, step))

    def add_scalar(self, name, value, step=0, **kwargs):
        self.calls.append(("scalar", name, value, step))

    def add_scalars(self, scalar_dict, step=0, file_path=None, **kwargs):
        self.calls.append(("scalars", dict(scalar_dict), step))

    def flush(self):
        self.calls.append(("flush",))

    def close(self):
        self.calls.append(("close",))


@pytest.mark.parametrize("name", sorted(builtin_components("torchkiln.vis_backends")))
def test_component_table_resolves(name):
    cls = VISBACKENDS.get(name)
    module, _, attr = builtin_components("torchkiln.vis_backends")[name].partition(":")
    assert (cls.__module__, cls.__name__) == (module, attr) and issubclass(cls, BaseVisBackend)


def test_default_is_a_local_backend_in_vis_data(tmp_path):
    vis = build_visualizer(None, log_dir=tmp_path, config={"model": {"type": "M"}}, name="exp")
    assert [type(b) for b in vis.vis_backends] == [LocalVisBackend]
    assert vis.vis_backends[0].save_dir == str(tmp_path / "vis_data")
    assert Visualizer.get_current_instance() is vis and vis.instance_name == "exp"
    assert (tmp_path / "vis_data" / "config.yaml").read_text() == "model:\n  type: M\n"


@pytest.mark.parametrize("type_", ["Visualizer", "torchkiln::Visualizer", "mmengine.Visualizer", Visualizer, None])
def test_mmengine_style_config_builds_both_backends(tmp_path, type_):
    cfg = {"vis_backends": [{"type": "LocalVisBackend"}, {"type": "TensorboardVisBackend"}], "name": "v"}
    if type_ is not None:
        cfg["type"] = type_
    vis = build_visualizer(cfg, log_dir=tmp_path)
    assert [b.name for b in vis.vis_backends] == ["LocalVisBackend", "TensorboardVisBackend"]
    assert isinstance(vis.get_backend("TensorboardVisBackend"), TensorboardVisBackend)
    assert vis.get_backend("Nope") is None
    vis.close()


def test_build_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown visualizer type 'Visualiser'") as info:
        build_visualizer({"type": "Visualiser"}, log_dir=tmp_path)
    assert "did you mean 'Visualizer'" in str(info.value)
    with pytest.raises(BuildError, match="LocalVisBakend"):
        build_visualizer({"vis_backends": [{"type": "LocalVisBakend"}]}, log_dir=tmp_path)
    with pytest.raises(ConfigError, match="unexpected keyword argument 'fig_save_cfg'"):
        build_visualizer({"fig_save_cfg": {}}, log_dir=tmp_path)
    with pytest.raises(ConfigError, match="scalar_save_file"):
        build_visualizer({"vis_backends": [{"type": "LocalVisBackend", "scalar_save_file": "s.txt"}]}, log_dir=tmp_path)


def test_other_ranks_get_no_backends_and_objects_pass_through(tmp_path):
    vis = build_visualizer({"vis_backends": [{"type": "TensorboardVisBackend"}]}, log_dir=tmp_path, rank=1, config={"a": 1})
    assert vis.vis_backends == []
    vis.add_scalars({"loss": 1.0}, step=1)
    assert not (tmp_path / "vis_data").exists()
    given = Visualizer(name="mine")
    assert build_visualizer(given, log_dir=tmp_path) is given


def test_without_save_dir_backend_configs_are_skipped():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        vis = Visualizer(vis_backends={"type": "LocalVisBackend"})
    assert vis.vis_backends == [] and "no save_dir" in str(caught[0].message)


def test_calls_fan_out_with_plain_values(tmp_path):
    rec = Recorder(tmp_path)
    vis = Visualizer(vis_backends=[rec])
    vis.add_scalars({"loss": torch.tensor(0.5), "lr": 0.1, "n": 3, "cm": [[1]], "flag": True}, step=7)
    vis.add_scalars({"cm": [[1]]}, step=8)  # nothing scalar: no call
    vis.add_scalar("acc", np.float32(0.25), step=9)
    vis.add_image("img", torch.ones(3, 2, 4), step=1)
    vis.add_config({"a": {"b": [1, 2]}})
    vis.flush()
    vis.close()
    assert rec.calls[0] == ("scalars", {"loss": 0.5, "lr": 0.1, "n": 3.0}, 7)
    assert rec.calls[1] == ("scalar", "acc", 0.25, 9)
    _, name, image, step = rec.calls[2]
    assert (name, step, image.shape, image.dtype, int(image.max())) == ("img", 1, (2, 4, 3), np.uint8, 255)
    assert rec.calls[3] == ("config", {"a": {"b": [1, 2]}}, "a:\n  b:\n    - 1\n    - 2\n")
    assert rec.calls[4:] == [("flush",), ("close",)]
    with pytest.raises(TypeError, match="one number"):
        vis.add_scalar("bad", [1, 2])


def test_image_conversion():
    gray = to_hwc_uint8(np.array([[0.0, 0.5], [1.0, 2.0]]))  # max > 1: taken as 0..255
    assert gray.dtype == np.uint8 and gray.tolist() == [[0, 0], [1, 2]]
    unit = to_hwc_uint8(np.array([[0.0, 0.5], [1.0, 0.25]]))
    assert unit.tolist() == [[0, 128], [255, 64]]
    assert to_hwc_uint8(np.zeros((3, 2, 1), np.uint8)).shape == (3, 2)
    assert to_hwc_uint8(torch.zeros(4, 5, 6)).shape == (5, 6, 4)
    assert to_hwc_uint8(np.array([[True, False]])).tolist() == [[255, 0]]
    with pytest.raises(ValueError, match="got shape"):
        to_hwc_uint8(np.zeros((2, 2, 2)))


def test_local_backend_files(tmp_path):
    vis = build_visualizer({"vis_backends": [{"type": "LocalVisBackend", "config_save_file": "config.py"}]},
                           log_dir=tmp_path, config={"lr": 0.1, "model": {"type": "M"}})
    vis.add_scalars({"loss": 1.5}, step=1)
    vis.add_scalars({"acc": 90.0}, step=2, file_path="val.jsonl")
    vis.add_image("val/sample 0", np.full((4, 6, 3), 200, np.uint8), step=3)
    vis.close()
    data = tmp_path / "vis_data"
    lines = [json.loads(x) for x in (data / "scalars.jsonl").read_text().splitlines()]
    assert lines == [{"step": 1, "loss": 1.5}, {"step": 2, "acc": 90.0}]
    assert json.loads((data / "val.jsonl").read_text()) == {"step": 2, "acc": 90.0}
    assert (data / "config.py").read_text() == "lr = 0.1\nmodel = {'type': 'M'}\n"
    from PIL import Image

    with Image.open(data / "vis_image" / "val_sample_0_3.png") as img:
        assert img.size == (6, 4) and img.getpixel((0, 0)) == (200, 200, 200)
    vis.add_scalars({"loss": 1.0}, step=4)  # reopens after close, appending
    vis.close()
    assert len((data / "scalars.jsonl").read_text().splitlines()) == 3


def test_flush_all_flushes_live_visualizers(tmp_path):
    from torchkiln.logging import flush_all

    rec = Recorder(tmp_path)
    Visualizer(vis_backends=[rec])
    flush_all()
    assert ("flush",) in rec.calls


def test_backend_from_an_entry_point(tmp_path, monkeypatch):
    from torchkiln.registry import _index

    (tmp_path / "tk_fakevis_mod.py").write_text(
        "from torchkiln.visualization.vis_backend import BaseVisBackend\n"
        "class FakeVisBackend(BaseVisBackend):\n"
        "    def __init__(self, save_dir, tag='x'):\n"
        "        super().__init__(save_dir)\n"
        "        self.tag = tag\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    real = _index.providers

    def providers(registry_name, group):
        found = dict(real(registry_name, group))
        if group == "torchkiln.vis_backends":
            found["FakeVisBackend"] = {"tk_fakevis": "tk_fakevis_mod:FakeVisBackend"}
        return found

    monkeypatch.setattr(_index, "providers", providers)
    vis = build_visualizer({"vis_backends": [{"type": "FakeVisBackend", "tag": "y"}]}, log_dir=tmp_path)
    (backend,) = vis.vis_backends
    assert type(backend).__name__ == "FakeVisBackend" and backend.tag == "y"
    assert backend.save_dir == str(tmp_path / "vis_data")
