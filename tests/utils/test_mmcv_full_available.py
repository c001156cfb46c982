"""mmcv_full_available: whether mmcv's compiled ops can be imported."""

from __future__ import annotations

import importlib.util

from torchkiln.utils.dl_utils import mmcv_full_available


def test_mmcv_full_available_follows_mmcv_ext(monkeypatch):
    def spec(name, *args):
        assert name == "mmcv._ext"
        return object()

    monkeypatch.setattr(importlib.util, "find_spec", spec)
    assert mmcv_full_available() is True

    def missing_parent(name, *args):
        raise ModuleNotFoundError("No module named 'mmcv'")

    monkeypatch.setattr(importlib.util, "find_spec", missing_parent)
    assert mmcv_full_available() is False
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None)
    assert mmcv_full_available() is False
