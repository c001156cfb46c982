"""Accuracy: exact percentages on hand-made scores, top-k, thresholds and every input form."""

from __future__ import annotations

import unittest

import pytest
import torch

from torchkiln.errors import UsageError
from torchkiln.evaluation import Accuracy
from torchkiln.logging import MMLogger
from torchkiln.registry import METRICS

# Sample 0: label 2 ranked 2nd; 1: label 0 ranked 1st; 2: label 1 ranked 2nd;
# 3: label 0 ranked 3rd; 4: label 3 ranked 1st.
SCORES = torch.tensor(
    [
        [0.10, 0.50, 0.30, 0.10],
        [0.70, 0.20, 0.05, 0.05],
        [0.20, 0.30, 0.40, 0.10],
        [0.15, 0.40, 0.05, 0.40],
        [0.10, 0.10, 0.10, 0.70],
    ]
)
LABELS = torch.tensor([2, 0, 1, 0, 3])


def _run(metric: Accuracy, data_samples, data_batch=None, size: int = 5) -> dict:
    metric.process(data_batch, data_samples)
    return metric.evaluate(size)


def test_top1_and_top2_and_top3_exact():
    out = _run(Accuracy(topk=(1, 2, 3)), {"pred_scores": SCORES, "gt_labels": LABELS})
    assert out == {"accuracy/top1": 40.0, "accuracy/top2": 80.0, "accuracy/top3": 100.0}


def test_single_int_topk_and_default_prefix():
    m = Accuracy(topk=1)
    assert _run(m, (SCORES, LABELS)) == {"accuracy/top1": 40.0}
    assert m.results == []  # cleared by evaluate
    assert _run(Accuracy(prefix="val_acc"), (SCORES, LABELS)) == {"val_acc/top1": 40.0}


def test_every_input_form_gives_the_same_result():
    expected = {"accuracy/top1": 40.0, "accuracy/top2": 80.0}
    forms = [
        ({"pred_scores": SCORES, "gt_labels": LABELS}, None),
        ((SCORES, LABELS), None),
        ([SCORES, LABELS], None),
        ([{"pred_score": SCORES[i], "gt_label": LABELS[i : i + 1]} for i in range(5)], None),
        ([{"pred_score": SCORES[i], "gt_label": int(LABELS[i])} for i in range(5)], None),
        (SCORES, (torch.zeros(5, 3), LABELS)),
        ({"pred_scores": SCORES}, {"inputs": torch.zeros(5), "gt_labels": LABELS}),
    ]
    for data_samples, data_batch in forms:
        assert _run(Accuracy(topk=(1, 2)), data_samples, data_batch) == expected


def test_accumulates_over_batches_with_uneven_sizes():
    m = Accuracy(topk=(1, 2))
    m.process(None, (SCORES[:3], LABELS[:3]))
    m.process(None, (SCORES[3:], LABELS[3:]))
    assert m.evaluate(5) == {"accuracy/top1": 40.0, "accuracy/top2": 80.0}


def test_predicted_labels_only():
    preds = SCORES.argmax(dim=1)
    assert _run(Accuracy(), {"pred_labels": preds, "gt_labels": LABELS}) == {"accuracy/top1": 40.0}
    assert _run(Accuracy(), (preds, LABELS)) == {"accuracy/top1": 40.0}
    per_sample = [{"pred_label": preds[i], "gt_label": LABELS[i]} for i in range(5)]
    with pytest.warns(UserWarning, match="every top-k is top-1"):
        assert _run(Accuracy(topk=(1, 2)), per_sample) == {"accuracy/top1": 40.0, "accuracy/top2": 40.0}


def test_topk_larger_than_classes_is_clamped_with_one_warning():
    m = Accuracy(topk=(1, 10))
    with pytest.warns(UserWarning, match="exceeds the 4 classes"):
        m.process(None, (SCORES, LABELS))
    m.process(None, (SCORES, LABELS))  # no second warning expected (not checked by pytest.warns)
    assert m.evaluate(10) == {"accuracy/top1": 40.0, "accuracy/top10": 100.0}


def test_thresholds():
    m = Accuracy(topk=(1, 2), thrs=(None, 0.45))
    # top1 hits: samples 1 (0.70) and 4 (0.70) -> both above 0.45.
    # top2 hits: 0 (0.30), 1, 2 (0.30), 4 -> only 1 and 4 above 0.45.
    assert _run(m, (SCORES, LABELS)) == {
        "accuracy/top1_no-thr": 40.0,
        "accuracy/top1_thr-0.45": 40.0,
        "accuracy/top2_no-thr": 80.0,
        "accuracy/top2_thr-0.45": 40.0,
    }
    single = Accuracy(topk=2, thrs=0.35)
    assert _run(single, (SCORES, LABELS)) == {"accuracy/top2": 40.0}


def test_exact_fraction_not_rounded():
    m = Accuracy()
    m.process(None, (torch.eye(3), torch.tensor([0, 1, 0])))
    assert m.evaluate(3) == {"accuracy/top1": 2 * 100.0 / 3}


def test_bad_inputs_are_usage_errors():
    m = Accuracy()
    with pytest.raises(UsageError, match="no scores or predicted labels"):
        m.process(None, {"gt_labels": LABELS})
    with pytest.raises(UsageError, match=r"\(N, C\)"):
        m.process(None, (SCORES[0], torch.tensor([1])))
    with pytest.raises(UsageError, match="no ground-truth labels"):
        m.process(None, SCORES)
    with pytest.raises(UsageError, match="cannot read"):
        m.process(None, "nonsense")
    with pytest.raises(UsageError, match="5 score rows but 4 labels"):
        m.process(None, (SCORES, LABELS[:4]))
    with pytest.raises(UsageError, match="positive"):
        Accuracy(topk=0)


def test_registered_and_buildable():
    m = METRICS.build({"type": "Accuracy", "topk": (1, 5)})
    assert isinstance(m, Accuracy) and m.topk == (1, 5)


def test_empty_results_warn_and_give_nan():
    m = Accuracy()
    case = unittest.TestCase()
    with case.assertLogs(MMLogger.get_current_instance(), "WARNING") as logs:
        out = m.evaluate(0)
    assert "got no results" in logs.output[0]
    assert list(out) == ["accuracy/top1"] and out["accuracy/top1"] != out["accuracy/top1"]
