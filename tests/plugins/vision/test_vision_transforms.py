"""Transforms by name: every registered name resolves; pipelines build from configs."""

from __future__ import annotations

import pytest
import torch
from torchkiln.errors import ConfigError
from torchkiln.registry import TRANSFORMS, _index
from torchkiln_vision.pipeline import build_pipeline
from torchvision.transforms import v2

# Not per-sample transforms, or not expressible in YAML: deliberately not registered.
EXCLUDED = {"Transform", "MixUp", "CutMix", "Lambda", "ToTensor"}


def _registered() -> dict[str, str]:
    return {
        name: scopes["torchkiln_vision"]
        for name, scopes in _index.providers("transforms", "torchkiln.transforms").items()
        if "torchkiln_vision" in scopes
    }


def test_every_registered_transform_name_resolves_to_its_torchvision_class():
    registered = _registered()
    assert len(registered) > 50
    for name in registered:
        cls = TRANSFORMS.get(name)
        assert cls is getattr(v2, name), name
        assert issubclass(cls, v2.Transform)
        assert TRANSFORMS.get(f"torchkiln_vision::{name}") is cls


def test_every_per_sample_v2_transform_is_registered():
    offered = {
        n
        for n in dir(v2)
        if isinstance(getattr(v2, n), type) and issubclass(getattr(v2, n), v2.Transform)
    }
    assert offered - EXCLUDED - set(_registered()) == set()


def test_pipeline_converts_yaml_values_and_builds_nested_transforms():
    pipeline = build_pipeline(
        [
            {"type": "Resize", "size": 12, "interpolation": "nearest", "antialias": False},
            {
                "type": "torchvision/RandomApply",
                "p": 1.0,
                "transforms": [{"type": "RandomHorizontalFlip", "p": 1.0}],
            },
            {"type": "ToDtype", "dtype": "float32", "scale": True},
        ]
    )
    assert [type(t).__name__ for t in pipeline.transforms] == ["Resize", "RandomApply", "ToDtype"]
    image = (
        torch.arange(3 * 24 * 24, dtype=torch.int64)
        .remainder(256)
        .to(torch.uint8)
        .reshape(3, 24, 24)
    )
    out = pipeline(image)
    expected = image[:, ::2, ::2].flip(-1).float() / 255
    assert out.dtype == torch.float32 and out.shape == (3, 12, 12)
    assert torch.allclose(out, expected)


def test_unknown_transform_and_bad_values_are_config_errors():
    with pytest.raises(ConfigError, match="unknown type 'RandomFlipp'") as info:
        build_pipeline([{"type": "RandomFlipp"}])
    assert "RandomVerticalFlip" in str(info.value) or "did you mean" in str(info.value)
    with pytest.raises(ConfigError, match="not a torch dtype"):
        build_pipeline([{"type": "ToDtype", "dtype": "float33"}])
    with pytest.raises(ConfigError, match="unknown interpolation"):
        build_pipeline([{"type": "Resize", "size": 4, "interpolation": "cubicle"}])
    with pytest.raises(ConfigError, match="list of transform configs"):
        build_pipeline({"type": "Resize"})
