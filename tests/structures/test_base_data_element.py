"""BaseDataElement: metainfo and data fields kept apart, dict-like access, copies, devices."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from torchkiln.structures import BaseDataElement


class SegSample(BaseDataElement):
    """A task sample whose ``gt_sem_seg`` field is type-checked through a property."""

    @property
    def gt_sem_seg(self) -> BaseDataElement:
        return self._gt_sem_seg

    @gt_sem_seg.setter
    def gt_sem_seg(self, value: BaseDataElement) -> None:
        self.set_field(value, "_gt_sem_seg", dtype=BaseDataElement)

    @gt_sem_seg.deleter
    def gt_sem_seg(self) -> None:
        del self._gt_sem_seg


def make() -> BaseDataElement:
    gt = BaseDataElement(labels=torch.tensor([1, 2]), boxes=torch.ones(2, 4))
    return BaseDataElement(metainfo=dict(img_id=7, img_shape=(4, 6)), gt=gt, score=0.5)


def test_metainfo_and_data_fields_are_separate() -> None:
    sample = make()
    assert sorted(sample.metainfo_keys()) == ["img_id", "img_shape"]
    assert sorted(sample.keys()) == ["gt", "score"]
    assert sorted(sample.all_keys()) == ["gt", "img_id", "img_shape", "score"]
    assert sample.metainfo == {"img_id": 7, "img_shape": (4, 6)}
    assert "img_id" in sample and "gt" in sample and "missing" not in sample
    assert sample.img_id == 7 and sample.get("score") == 0.5 and sample.get("x", 3) == 3
    assert dict(sample.items())["score"] == 0.5
    assert len(sample.values()) == 2 and len(sample.all_values()) == 4
    assert dict(sample.all_items())["img_shape"] == (4, 6)


def test_metainfo_is_copied_and_protected_from_attribute_assignment() -> None:
    meta = {"pad": [1, 2]}
    sample = BaseDataElement(metainfo=meta)
    meta["pad"].append(3)
    assert sample.pad == [1, 2]
    with pytest.raises(AttributeError, match="set_metainfo"):
        sample.pad = [0]
    sample.set_metainfo({"pad": [0]})
    assert sample.pad == [0]


def test_a_name_is_either_metainfo_or_data() -> None:
    sample = make()
    with pytest.raises(AttributeError):
        sample.set_metainfo({"score": 1.0})
    with pytest.raises(AttributeError):
        sample.set_data({"img_id": 1})
    with pytest.raises(AssertionError):
        sample.set_data(3)  # type: ignore[arg-type]
    with pytest.raises(AssertionError):
        sample.set_metainfo([("a", 1)])  # type: ignore[arg-type]


def test_private_field_sets_cannot_be_replaced_or_deleted() -> None:
    sample = make()
    with pytest.raises(AttributeError):
        sample._data_fields = set()
    with pytest.raises(AttributeError):
        del sample._metainfo_fields


def test_pop_and_delete() -> None:
    sample = make()
    assert sample.pop("score") == 0.5
    assert "score" not in sample
    assert sample.pop("score", "default") == "default"
    with pytest.raises(KeyError, match="score"):
        sample.pop("score")
    assert sample.pop("img_id") == 7
    del sample.gt
    assert sample.keys() == []
    del sample["img_shape"]
    assert sample.metainfo == {}


def test_update_copies_both_kinds_of_fields() -> None:
    sample = make()
    other = BaseDataElement(metainfo=dict(flip=True), pred=torch.zeros(3))
    sample.update(other)
    assert sample.flip is True and torch.equal(sample.pred, torch.zeros(3))
    assert "flip" in sample.metainfo_keys() and "pred" in sample.keys()


def test_new_and_clone() -> None:
    sample = make()
    same = sample.new()
    assert type(same) is BaseDataElement and same.metainfo == sample.metainfo
    assert same.gt is sample.gt
    replaced = sample.new(metainfo=dict(img_id=1), pred=torch.ones(1))
    assert replaced.metainfo == {"img_id": 1} and replaced.keys() == ["pred"]
    copy = sample.clone()
    copy.score = 0.9
    assert sample.score == 0.5 and copy.metainfo == sample.metainfo


def test_set_field_type_check() -> None:
    sample = BaseDataElement()
    sample.set_field(torch.zeros(2), "mask", dtype=torch.Tensor)
    assert "mask" in sample.keys()
    with pytest.raises(AssertionError, match="mask2"):
        sample.set_field([0, 1], "mask2", dtype=torch.Tensor)
    sample.set_field(3, "scale", field_type="metainfo")
    assert sample.metainfo == {"scale": 3}


def test_subclass_property_fields_report_their_public_name() -> None:
    sample = SegSample()
    seg = BaseDataElement(data=torch.zeros(1, 2, 2))
    sample.gt_sem_seg = seg
    assert sample.keys() == ["gt_sem_seg"] and "gt_sem_seg" in sample
    assert sample.gt_sem_seg is seg
    assert list(sample.to_dict()) == ["gt_sem_seg"]
    with pytest.raises(AssertionError):
        sample.gt_sem_seg = torch.zeros(1)
    del sample.gt_sem_seg
    assert "gt_sem_seg" not in sample and sample.keys() == []


def test_device_and_type_conversions_reach_nested_elements() -> None:
    weight = torch.ones(2, requires_grad=True)
    sample = BaseDataElement(metainfo=dict(img_id=1), out=weight * 2, inner=make())
    detached = sample.detach()
    assert not detached.out.requires_grad and sample.out.requires_grad
    as_numpy = sample.numpy()
    assert isinstance(as_numpy.out, np.ndarray)
    assert isinstance(as_numpy.inner.gt.labels, np.ndarray)
    assert as_numpy.metainfo == {"img_id": 1}
    back = as_numpy.to_tensor()
    assert isinstance(back.inner.gt.boxes, torch.Tensor)
    doubled = back.to(torch.float64)
    assert doubled.out.dtype == torch.float64 and doubled.inner.score == 0.5
    assert sample.cpu().out.device.type == "cpu"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_round_trip() -> None:
    on_gpu = make().cuda()
    assert on_gpu.gt.labels.is_cuda
    assert on_gpu.cpu().gt.labels.device.type == "cpu"


def test_to_dict_and_repr() -> None:
    sample = make()
    plain = sample.to_dict()
    assert plain["img_id"] == 7 and isinstance(plain["gt"], dict)
    assert torch.equal(plain["gt"]["labels"], torch.tensor([1, 2]))
    text = repr(BaseDataElement(metainfo=dict(a=1), b=BaseDataElement(c=2)))
    assert text.startswith("<BaseDataElement(\n\n    META INFORMATION\n    a: 1\n\n")
    assert "    DATA FIELDS\n    b: <BaseDataElement(" in text
    assert "            c: 2\n" in text
