"""default_collate and pseudo_collate."""

from __future__ import annotations

from collections import namedtuple

import numpy as np
import pytest
import torch

from torchkiln.data import default_collate, pseudo_collate


def test_default_collate_matches_torch():
    batch = [(torch.ones(3) * i, i, {"x": np.array([i, i])}) for i in range(4)]
    out = default_collate(batch)
    ref = torch.utils.data.default_collate(batch)
    assert isinstance(out, list) and len(out) == 3
    assert torch.equal(out[0], ref[0]) and out[0].shape == (4, 3)
    assert out[1].tolist() == [0, 1, 2, 3]
    assert torch.equal(out[2]["x"], ref[2]["x"])


def test_pseudo_collate_tuples_become_tuple_of_lists_without_stacking():
    a, b = torch.zeros(2), torch.zeros(5)  # different shapes: cannot be stacked
    out = pseudo_collate([(a, 0, "cat"), (b, 1, "dog")])
    assert isinstance(out, tuple) and len(out) == 3
    assert out[0][0] is a and out[0][1] is b
    assert out[1] == [0, 1]
    assert out[2] == ["cat", "dog"]


def test_pseudo_collate_dicts_and_nesting():
    samples = [
        {"inputs": torch.tensor([i]), "meta": {"id": i, "tags": [f"t{i}", "x"]}} for i in range(3)
    ]
    out = pseudo_collate(samples)
    assert set(out) == {"inputs", "meta"}
    assert [t.item() for t in out["inputs"]] == [0, 1, 2]
    assert out["meta"]["id"] == [0, 1, 2]
    assert out["meta"]["tags"] == [["t0", "t1", "t2"], ["x", "x", "x"]]


def test_pseudo_collate_lists_and_namedtuples():
    assert pseudo_collate([[1, 2], [3, 4]]) == [[1, 3], [2, 4]]
    Pair = namedtuple("Pair", "x y")
    out = pseudo_collate([Pair(1, "a"), Pair(2, "b")])
    assert isinstance(out, Pair) and out.x == [1, 2] and out.y == ["a", "b"]
    assert pseudo_collate([5, 6]) == [5, 6]
    assert pseudo_collate([]) == []


def test_pseudo_collate_rejects_ragged_samples():
    with pytest.raises(ValueError, match="same number of fields"):
        pseudo_collate([(1, 2), (3,)])
