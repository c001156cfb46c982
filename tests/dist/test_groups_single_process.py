"""The group and device helpers in one process without a process group."""

from __future__ import annotations

import pytest
import torch

from torchkiln import dist


def test_without_a_process_group():
    assert dist.get_backend() is None
    assert dist.get_default_group() is None
    assert dist.get_local_size() == 1
    assert dist.get_comm_device() == torch.device("cpu")
    t = torch.tensor([3.0])
    assert dist.gather(t) == [t]
    assert dist.gather_object("x") == ["x"]
    box = [1, 2]
    dist.broadcast_object_list(box)
    assert box == [1, 2]
    values = {"a": torch.tensor([1.0])}
    dist.all_reduce_dict(values, op="mean")
    assert values["a"].item() == 1.0
    assert dist.collect_results_cpu(["a", "b", "pad"], 2) == ["a", "b"]
    assert dist.collect_results_gpu(["a"], 1) == ["a"]
    with pytest.raises(TypeError):
        dist.broadcast_object_list((1, 2))  # type: ignore[arg-type]


def test_get_data_device():
    cpu = torch.device("cpu")
    assert dist.get_data_device(torch.zeros(1)) == cpu
    assert dist.get_data_device([torch.zeros(1), {"x": torch.ones(2)}]) == cpu
    with pytest.raises(TypeError):
        dist.get_data_device("text")
    with pytest.raises(TypeError):
        dist.get_data_device([])
    with pytest.raises(ValueError, match="different devices"):
        dist.get_data_device([torch.zeros(1), torch.zeros(1, device="meta")])


def test_cast_data_device_keeps_the_structure_and_fills_out():
    data = {"a": [torch.ones(2), (torch.zeros(1),)], "b": torch.tensor([5.0])}
    moved = dist.cast_data_device(data, "meta")
    assert moved["a"][0].device.type == "meta" and isinstance(moved["a"][1], tuple)
    assert moved["b"].device.type == "meta"
    out = [torch.empty(2), torch.empty(1)]
    result = dist.cast_data_device([torch.ones(2), torch.tensor([7.0])], "cpu", out=out)
    assert result is out and out[1].item() == 7.0 and out[0].tolist() == [1.0, 1.0]
    with pytest.raises(TypeError):
        dist.cast_data_device([torch.ones(1)], "cpu", out=[torch.empty(1), torch.empty(1)])
    with pytest.raises(TypeError):
        dist.cast_data_device(3, "cpu")
