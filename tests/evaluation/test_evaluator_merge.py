"""Evaluator: building, forwarding, merging, duplicate keys, offline evaluation; BaseMetric basics."""

from __future__ import annotations

import unittest

import pytest
import torch

from torchkiln.errors import BuildError, ConfigError
from torchkiln.evaluation import Accuracy, BaseMetric, Evaluator, build_evaluator
from torchkiln.logging import MMLogger
from torchkiln.registry._index import builtin_components
from torchkiln.registry import EVALUATOR, METRICS
from torchkiln.registry.registry import _import_target


class CountMetric(BaseMetric):
    """Counts samples and records what it was given."""

    default_prefix = "count"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.batches = []

    def process(self, data_batch, data_samples):
        self.batches.append((data_batch, data_samples))
        self.results.extend(range(len(data_samples)))

    def compute_metrics(self, results):
        return {"n": len(results)}


class Element:
    """Stands in for a data element with to_dict()."""

    def __init__(self, **fields):
        self.fields = fields

    def to_dict(self):
        return dict(self.fields)


def test_component_table_resolves():
    assert METRICS.get("Accuracy") is _import_target(builtin_components("torchkiln.metrics")["Accuracy"])
    assert EVALUATOR.get("Evaluator") is Evaluator


def test_metrics_from_objects_and_configs():
    ev = Evaluator([CountMetric(), {"type": "Accuracy", "topk": 2}])
    assert isinstance(ev.metrics[1], Accuracy) and ev.metrics[1].topk == (2,)
    assert len(Evaluator(CountMetric()).metrics) == 1
    assert len(Evaluator({"type": "Accuracy"}).metrics) == 1
    with pytest.raises(BuildError, match="not a metric"):
        Evaluator([object()])


def test_process_forwards_and_converts_elements():
    count = CountMetric()
    ev = Evaluator(count)
    ev.process([Element(a=1), {"b": 2}], data_batch="batch")
    assert count.batches == [("batch", [{"a": 1}, {"b": 2}])]
    assert ev.evaluate(2) == {"count/n": 2}
    assert count.results == []


def test_results_of_metrics_merge():
    ev = Evaluator([CountMetric(), Accuracy()])
    ev.process((torch.eye(2), torch.tensor([0, 0])))
    assert ev.evaluate(2) == {"count/n": 2, "accuracy/top1": 50.0}


def test_duplicate_keys_name_both_metrics():
    ev = Evaluator([Accuracy(), CountMetric(), Accuracy(topk=(1, 2))])
    ev.process((torch.eye(2), torch.tensor([0, 1])))
    with pytest.raises(ConfigError) as info:
        ev.evaluate(2)
    text = str(info.value)
    assert "'accuracy/top1'" in text
    assert "Accuracy (metrics[0])" in text and "Accuracy (metrics[2])" in text
    assert "prefix" in text
    assert "multiple evaluation results with the same metric name" in text  # MMEngine's phrase
    assert isinstance(info.value, ValueError)


def test_dataset_meta_reaches_every_metric():
    ev = Evaluator([CountMetric(), Accuracy()])
    meta = {"classes": ("a", "b")}
    ev.dataset_meta = meta
    assert ev.dataset_meta is meta
    assert all(m.dataset_meta == meta for m in ev.metrics)
    meta["classes"] = ()
    assert ev.metrics[0].dataset_meta == {"classes": ("a", "b")}  # metrics keep a copy


def test_offline_evaluate_in_chunks():
    scores = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7], [0.5, 0.45]])
    labels = [0, 1, 1, 1, 0]
    samples = [{"pred_score": scores[i], "gt_label": labels[i]} for i in range(5)]
    count = CountMetric()
    ev = Evaluator([Accuracy(), count])
    data = [(torch.zeros(2), i) for i in range(5)]
    out = ev.offline_evaluate(samples, data=data, chunk_size=2)
    assert out == {"accuracy/top1": 80.0, "count/n": 5}
    assert [len(s) for _, s in count.batches] == [2, 2, 1]
    first_batch = count.batches[0][0]
    assert isinstance(first_batch, list) and list(first_batch[1]) == [0, 1]  # pseudo-collated
    with pytest.raises(ValueError, match="data has 1 items"):
        ev.offline_evaluate(samples, data=data[:1])
    with pytest.raises(AssertionError, match="data_samples and data should have the same length"):
        ev.offline_evaluate(samples, data=data[:1])  # what MMEngine raises there, too


def test_build_evaluator_forms():
    ev = Evaluator(Accuracy())
    assert build_evaluator(ev) is ev
    assert isinstance(build_evaluator({"type": "Accuracy"}).metrics[0], Accuracy)
    assert len(build_evaluator([{"type": "Accuracy"}, CountMetric()]).metrics) == 2
    assert isinstance(build_evaluator({"metrics": [{"type": "Accuracy"}]}), Evaluator)
    assert isinstance(build_evaluator(CountMetric()).metrics[0], CountMetric)


def test_base_metric_prefix_collect_dir_and_abstract():
    with pytest.raises(TypeError):
        BaseMetric()
    with pytest.warns(UserWarning, match="collect_dir is ignored"):
        m = CountMetric(prefix="p", collect_dir="/tmp/x")
    m.process(None, [1, 2, 3])
    assert m.evaluate(2) == {"p/n": 2}  # truncated to the dataset size

    class NoPrefix(CountMetric):
        default_prefix = None

    case = unittest.TestCase()
    with case.assertLogs(MMLogger.get_current_instance(), "WARNING") as logs:
        n = NoPrefix()
    assert "prefix is not set in metric class NoPrefix" in logs.output[0]
    n.process(None, [1])
    assert n.evaluate(1) == {"n": 1}
    with pytest.raises(ValueError, match="collect_device"):
        CountMetric(collect_device="tpu")


def test_per_batch_results_work_in_one_process():
    """MMEngine's documented custom metric stores one entry per batch."""

    class SimpleAccuracy(BaseMetric):
        def process(self, data_batch, data_samples):
            score, gt = data_samples
            self.results.append({"batch_size": len(gt), "correct": (score.argmax(dim=1) == gt).sum().cpu()})

        def compute_metrics(self, results):
            total = sum(r["correct"] for r in results)
            size = sum(r["batch_size"] for r in results)
            return {"accuracy": 100 * total / size}

    m = SimpleAccuracy()
    m.process(None, (torch.eye(3), torch.tensor([0, 1, 1])))
    m.process(None, (torch.eye(2), torch.tensor([0, 1])))
    assert m.evaluate(5)["accuracy"].item() == 80.0
