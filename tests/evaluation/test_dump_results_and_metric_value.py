"""DumpResults writes predictions to a pickle; get_metric_value finds a metric by name."""

from __future__ import annotations

import pickle

import pytest
import torch

from torchkiln.evaluation import DumpResults, Evaluator, get_metric_value
from torchkiln.structures import InstanceData


def test_dump_results_writes_every_prediction_on_the_cpu(tmp_path) -> None:
    path = tmp_path / "out" / "results.pkl"
    evaluator = Evaluator(DumpResults(out_file_path=str(path)))
    batch1 = [{"pred": torch.tensor([1.0]), "meta": "a"}, {"pred": torch.tensor([2.0])}]
    batch2 = [InstanceData(metainfo=dict(img_id=3), scores=torch.ones(2))]
    evaluator.process(batch1)
    evaluator.process(batch2)
    assert evaluator.evaluate(3) == {}
    with open(path, "rb") as fh:
        dumped = pickle.load(fh)
    assert len(dumped) == 3 and dumped[0]["meta"] == "a"
    assert torch.equal(dumped[1]["pred"], torch.tensor([2.0]))
    assert dumped[2]["img_id"] == 3  # the evaluator passes data elements on as dicts


def test_dump_results_needs_a_pickle_path() -> None:
    with pytest.raises(ValueError, match="pkl"):
        DumpResults(out_file_path="results.json")


def test_get_metric_value() -> None:
    metrics = {"coco/AP": 0.5, "coco/AR": 0.6, "voc/AP50": 0.7, "cls/AP50": 0.8}
    assert get_metric_value("AP", metrics) == 0.5
    assert get_metric_value("coco/AR", metrics) == 0.6
    with pytest.raises(ValueError, match="multiple"):
        get_metric_value("AP50", metrics)
    with pytest.raises(ValueError, match="can not match"):
        get_metric_value("mIoU", metrics)
    with pytest.raises(ValueError, match="can not match"):
        get_metric_value("voc/AP", metrics)
