"""torchkiln.device: the accelerator queries MMEngine code branches on."""

from __future__ import annotations

import torch

from torchkiln import device


def test_queries_agree_with_torch():
    assert device.is_cuda_available() == torch.cuda.is_available()
    assert device.is_mps_available() == torch.backends.mps.is_available()
    # No vendor extension is installed here: those devices are unavailable, not errors.
    for query in (device.is_npu_available, device.is_mlu_available, device.is_musa_available):
        assert query() is False
    assert device.is_npu_support_full_precision() is False
    expected = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
    assert device.get_device() == expected


def test_a_broken_vendor_extension_reports_unavailable(monkeypatch):
    class Broken:
        @staticmethod
        def is_available():
            raise RuntimeError("driver missing")

    monkeypatch.setattr(torch, "musa", Broken, raising=False)
    assert device.is_musa_available() is False
