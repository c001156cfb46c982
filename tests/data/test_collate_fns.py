"""default_collate and pseudo_collate: MMEngine's behaviour, registered in COLLATE_FUNCTIONS."""

from __future__ import annotations

from collections import namedtuple

import numpy as np
import pytest
import torch

from torchkiln.data import COLLATE_FUNCTIONS, default_collate, pseudo_collate
from torchkiln.registry import FUNCTIONS


class BaseDataElement:
    """Stands for a data sample class (recognised by its class name, as MMEngine's)."""

    def __init__(self, label: int) -> None:
        self.label = label


class DetDataSample(BaseDataElement):
    pass


def test_both_are_registered_in_collate_functions_under_their_names():
    assert COLLATE_FUNCTIONS is FUNCTIONS
    assert COLLATE_FUNCTIONS.get("pseudo_collate") is pseudo_collate
    assert COLLATE_FUNCTIONS.get("default_collate") is default_collate


def test_default_collate_stacks_leaves_like_torch():
    batch = [(torch.ones(3) * i, i, {"x": np.array([i, i])}) for i in range(4)]
    out = default_collate(batch)
    ref = torch.utils.data.default_collate(batch)
    assert isinstance(out, list) and len(out) == 3  # tuples become lists, as in torch
    assert torch.equal(out[0], ref[0]) and out[0].shape == (4, 3)
    assert out[1].tolist() == [0, 1, 2, 3]
    assert torch.equal(out[2]["x"], ref[2]["x"])


def test_default_collate_keeps_strings_and_data_samples_as_sequences():
    samples = [DetDataSample(0), DetDataSample(1)]
    out = default_collate([{"inputs": torch.zeros(2), "data_samples": s, "name": n} for s, n in zip(samples, "ab")])
    assert out["inputs"].shape == (2, 2)
    assert out["data_samples"] == samples and out["data_samples"][0] is samples[0]
    assert out["name"] == ["a", "b"]


def test_pseudo_collate_transposes_tuples_without_stacking():
    a, b = torch.zeros(2), torch.zeros(5)  # different shapes: cannot be stacked
    out = pseudo_collate([(a, 0, "cat"), (b, 1, "dog")])
    assert isinstance(out, list) and len(out) == 3
    assert out[0][0] is a and out[0][1] is b
    assert list(out[1]) == [0, 1]
    assert list(out[2]) == ["cat", "dog"]


def test_pseudo_collate_dicts_and_nesting():
    samples = [
        {"inputs": torch.tensor([i]), "meta": {"id": i, "tags": [f"t{i}", "x"]}} for i in range(3)
    ]
    out = pseudo_collate(samples)
    assert set(out) == {"inputs", "meta"}
    assert [t.item() for t in out["inputs"]] == [0, 1, 2]
    assert out["meta"]["id"] == [0, 1, 2]
    assert [list(column) for column in out["meta"]["tags"]] == [["t0", "t1", "t2"], ["x", "x", "x"]]


def test_pseudo_collate_lists_and_namedtuples():
    assert [list(column) for column in pseudo_collate([[1, 2], [3, 4]])] == [[1, 3], [2, 4]]
    Pair = namedtuple("Pair", "x y")
    out = pseudo_collate([Pair(1, "a"), Pair(2, "b")])
    assert isinstance(out, Pair) and list(out.x) == [1, 2] and list(out.y) == ["a", "b"]
    assert pseudo_collate([5, 6]) == [5, 6]
    assert pseudo_collate([]) == []


@pytest.mark.parametrize("collate", [pseudo_collate, default_collate])
def test_ragged_samples_raise_runtime_error(collate):
    with pytest.raises(RuntimeError, match="same number of fields"):
        collate([(1, 2), (3,)])


@pytest.mark.parametrize("name", ["pseudo_collate", "default_collate"])
def test_same_output_as_mmengine(name):
    mmengine_utils = pytest.importorskip("mmengine.dataset.utils")
    ours, theirs = COLLATE_FUNCTIONS.get(name), getattr(mmengine_utils, name)
    Pair = namedtuple("Pair", "x y")
    batches = [
        [{"inputs": torch.ones(3) * i, "label": i, "name": f"s{i}"} for i in range(3)],
        [(torch.ones(2) * i, i) for i in range(4)],
        [[np.ones(2) * i, float(i)] for i in range(2)],
        [Pair(torch.tensor(i), {"k": i}) for i in range(2)],
        ["a", "b"],
    ]
    for batch in batches:
        _assert_same(ours(batch), theirs(batch))


def _assert_same(ours, theirs):
    assert type(ours) is type(theirs), (ours, theirs)
    if isinstance(ours, torch.Tensor):
        assert torch.equal(ours, theirs)
    elif isinstance(ours, dict):
        assert ours.keys() == theirs.keys()
        for key in ours:
            _assert_same(ours[key], theirs[key])
    elif isinstance(ours, (list, tuple)):
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            _assert_same(a, b)
    elif isinstance(ours, np.ndarray):
        assert np.array_equal(ours, theirs)
    else:
        assert ours == theirs
