"""InstanceData (equal lengths, indexing, cat), LabelData (one-hot), PixelData (shape checks)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from torchkiln.structures import InstanceData, LabelData, PixelData


class Polygons:
    """A custom per-instance type: a length, slicing and a ``cat`` classmethod."""

    def __init__(self, items: list[list[int]]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, item: slice) -> Polygons:
        return Polygons(self.items[item])

    @classmethod
    def cat(cls, parts: list[Polygons]) -> Polygons:
        return cls([x for part in parts for x in part.items])


def make_instances() -> InstanceData:
    return InstanceData(
        metainfo=dict(img_id=3),
        boxes=torch.arange(20.0).view(5, 4),
        scores=np.arange(5) / 10,
        names=["a", "b", "c", "d", "e"],
        ids=(10, 11, 12, 13, 14),
        chars="vwxyz",
        polys=Polygons([[i] for i in range(5)]),
    )


def test_instance_fields_must_have_one_length() -> None:
    instances = make_instances()
    assert len(instances) == 5 and len(InstanceData()) == 0
    with pytest.raises(AssertionError, match="length 3"):
        instances.labels = torch.zeros(3)
    with pytest.raises(AssertionError, match="__len__"):
        instances.count = 3
    instances["labels"] = torch.zeros(5)
    assert "labels" in instances.keys()


@pytest.mark.parametrize(
    "index, expected",
    [
        (1, [1]),
        (-1, [4]),
        (slice(1, 3), [1, 2]),
        ([0, 3], [0, 3]),
        (np.array([4, 2], dtype=np.int32), [4, 2]),
        (torch.tensor([2, 0]), [2, 0]),
        (torch.tensor([True, False, True, False, False]), [0, 2]),
        ([False, False, False, False, True], [4]),
        (torch.zeros(5, dtype=torch.bool), []),
    ],
)
def test_instance_indexing_selects_the_same_instances_in_every_field(index, expected) -> None:
    selected = make_instances()[index]
    assert isinstance(selected, InstanceData) and selected.metainfo == {"img_id": 3}
    assert len(selected) == len(expected)
    assert selected.boxes[:, 0].tolist() == [4.0 * i for i in expected]
    assert selected.scores.tolist() == pytest.approx([i / 10 for i in expected])
    assert list(selected.names) == ["abcde"[i] for i in expected]
    assert list(selected.ids) == [10 + i for i in expected]
    assert selected.chars == "".join("vwxyz"[i] for i in expected)
    assert selected.polys.items == [[i] for i in expected]


def test_instance_indexing_errors() -> None:
    instances = make_instances()
    with pytest.raises(IndexError):
        instances[5]
    with pytest.raises(IndexError):
        InstanceData()[0]
    with pytest.raises(AssertionError, match="float"):
        instances[torch.tensor([1.0, 2.0])]
    with pytest.raises(AssertionError, match="bool mask has 2"):
        instances[torch.tensor([True, False])]
    assert instances["ids"] == (10, 11, 12, 13, 14)


def test_instance_field_without_cat_cannot_take_a_mask() -> None:
    instances = InstanceData(boxes=torch.zeros(2, 4))
    instances.other = range(2)  # sized and indexable, no cat
    with pytest.raises(ValueError, match="`other`.*no attribute of `cat`"):
        instances[torch.tensor([True, False])]
    assert len(instances[0:1]) == 1  # slices still work


def test_instance_cat() -> None:
    first, second = make_instances(), make_instances()[1:3]
    joined = InstanceData.cat([first, second])
    assert len(joined) == 7 and joined.metainfo == {"img_id": 3}
    assert joined.boxes[5:, 0].tolist() == [4.0, 8.0]
    assert joined.scores.shape == (7,)
    assert joined.names[5:] == ["b", "c"] and joined.ids[5:] == (11, 12)
    assert joined.chars == "vwxyzwx" and len(joined.polys) == 7
    assert InstanceData.cat([first]) is first
    with pytest.raises(AssertionError):
        InstanceData.cat([])
    with pytest.raises(AssertionError, match="same fields"):
        InstanceData.cat([first, InstanceData(boxes=torch.zeros(1, 4))])
    no_cat = InstanceData(other=range(2))
    with pytest.raises(ValueError, match="`other`"):
        InstanceData.cat([no_cat, no_cat.clone()])


def test_label_onehot_round_trip() -> None:
    onehot = LabelData.label_to_onehot(torch.tensor([1, 3]), num_classes=5)
    assert onehot.tolist() == [0, 1, 0, 1, 0] and onehot.dtype == torch.int64
    assert LabelData.onehot_to_label(onehot).tolist() == [1, 3]
    empty = LabelData.label_to_onehot(torch.tensor([], dtype=torch.long), 3)
    assert empty.tolist() == [0, 0, 0]
    with pytest.raises(AssertionError, match="out of range"):
        LabelData.label_to_onehot(torch.tensor([5]), 5)
    with pytest.raises(ValueError, match="not one-hot"):
        LabelData.onehot_to_label(torch.tensor([0, 2]))
    with pytest.raises(ValueError, match="not one-hot"):
        LabelData.onehot_to_label(torch.zeros(2, 2))
    with pytest.raises(AssertionError):
        LabelData.onehot_to_label([0, 1])  # type: ignore[arg-type]


def test_pixel_fields_share_height_and_width() -> None:
    pixels = PixelData(metainfo=dict(img_id=0), seg=torch.zeros(1, 6, 8))
    assert pixels.shape == (6, 8) and PixelData().shape is None
    pixels.heat = np.zeros((3, 6, 8))
    with pytest.warns(UserWarning, match=r"\(1, H, W\)"):
        pixels.edge = torch.zeros(6, 8)
    assert pixels.edge.shape == (1, 6, 8)
    with pytest.raises(AssertionError, match=r"\(6, 9\)"):
        pixels.bad = torch.zeros(1, 6, 9)
    with pytest.raises(AssertionError, match="2 or 3 dimensions"):
        pixels.bad = torch.zeros(1, 1, 6, 8)
    with pytest.raises(AssertionError, match="tensor or numpy"):
        pixels.bad = [[0]]


def test_pixel_crop() -> None:
    seg = torch.arange(48).view(1, 6, 8)
    pixels = PixelData(metainfo=dict(img_id=0), seg=seg, heat=np.ones((2, 6, 8)))
    cropped = pixels[1:3, 2:6]
    assert cropped.shape == (2, 4) and cropped.metainfo == {"img_id": 0}
    assert torch.equal(cropped.seg, seg[:, 1:3, 2:6]) and cropped.heat.shape == (2, 2, 4)
    row = pixels[2, :]
    assert row.shape == (1, 8) and torch.equal(row.seg[0, 0], seg[0, 2])
    assert pixels[-1, -1].seg.item() == 47
    with pytest.raises(TypeError, match="Unsupported type"):
        pixels[1]  # type: ignore[index]
    with pytest.raises(TypeError, match="int or slice"):
        pixels[1.5, 2]  # type: ignore[index]
