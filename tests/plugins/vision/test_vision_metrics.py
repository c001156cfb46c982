"""Metrics against hand-computed values; the confusion matrix image through the visualizer."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torchkiln.registry import METRICS
from torchkiln.visualization import Visualizer
from torchkiln_vision.confusion_image import confusion_matrix_image

# 8 samples, 3 classes. true: 0 0 0 1 1 2 2 2, predicted: 0 1 0 1 1 2 0 1
GT = [0, 0, 0, 1, 1, 2, 2, 2]
PRED = [0, 1, 0, 1, 1, 2, 0, 1]


def _outputs(gt, pred):
    scores = torch.full((len(gt), 3), 0.1)
    scores[torch.arange(len(gt)), torch.tensor(pred)] = 0.8
    return {"pred_scores": scores, "pred_labels": torch.tensor(pred), "gt_labels": torch.tensor(gt)}


def test_single_label_metric_matches_hand_computed_values():
    metric = METRICS.build({"type": "SingleLabelMetric"})
    metric.dataset_meta = {"classes": ("a", "b", "c")}
    metric.process(None, _outputs(GT[:4], PRED[:4]))
    metric.process(None, _outputs(GT[4:], PRED[4:]))
    result = metric.evaluate(8)
    # class a: tp 2, predicted 3, actual 3; b: tp 2, predicted 4, actual 2; c: tp 1, predicted 1, actual 3
    precision = {"a": 200 / 3, "b": 50.0, "c": 100.0}
    recall = {"a": 200 / 3, "b": 100.0, "c": 100 / 3}
    for name in "abc":
        p, r = precision[name], recall[name]
        assert result[f"single-label/precision/{name}"] == pytest.approx(p)
        assert result[f"single-label/recall/{name}"] == pytest.approx(r)
        assert result[f"single-label/f1-score/{name}"] == pytest.approx(2 * p * r / (p + r))
    assert result["single-label/precision"] == pytest.approx(sum(precision.values()) / 3)
    assert result["single-label/recall"] == pytest.approx(sum(recall.values()) / 3)
    f1 = [2 * precision[n] * recall[n] / (precision[n] + recall[n]) for n in "abc"]
    assert result["single-label/f1-score"] == pytest.approx(sum(f1) / 3)


def test_top_k_accuracy_reads_the_classifier_outputs():
    metric = METRICS.build({"type": "Accuracy", "topk": [1, 2]})
    scores = torch.tensor([[0.5, 0.3, 0.2], [0.2, 0.3, 0.5], [0.6, 0.3, 0.1], [0.1, 0.2, 0.7]])
    metric.process(
        None,
        {
            "pred_scores": scores,
            "pred_labels": scores.argmax(1),
            "gt_labels": torch.tensor([0, 1, 2, 2]),
        },
    )
    # top-1: rows 0 and 3 right; top-2 adds row 1 (label 1 second best); row 2's label is last
    assert metric.evaluate(4) == {"accuracy/top1": 50.0, "accuracy/top2": 75.0}


def test_confusion_matrix_counts_and_writes_an_image(tmp_path):
    Visualizer.reset_instances()
    visualizer = Visualizer(vis_backends=[{"type": "LocalVisBackend"}], save_dir=str(tmp_path))
    metric = METRICS.build({"type": "ConfusionMatrix", "num_classes": 3})
    metric.process(None, _outputs(GT, PRED))
    result = metric.evaluate(8)
    assert result == {"confusion_matrix/matrix": [[2, 1, 0], [0, 2, 0], [1, 1, 1]]}
    visualizer.flush()
    pngs = list((tmp_path / "vis_data").rglob("*.png"))
    assert len(pngs) == 1 and "confusion_matrix" in pngs[0].name
    from PIL import Image

    image = np.asarray(Image.open(pngs[0]))
    assert (
        image.shape[:2]
        == confusion_matrix_image(np.array(result["confusion_matrix/matrix"])).shape[:2]
    )
    json.dumps(result)  # plain data, for metrics.json
    Visualizer.reset_instances()


def test_confusion_matrix_image_shades_by_row_share():
    image = confusion_matrix_image(np.array([[4, 0], [1, 1]]), max_size=64)
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8
    full, empty, half = image[10, 10], image[10, 40], image[40, 10]
    assert full.tolist() == [8, 48, 107] and empty.tolist() == [255, 255, 255]
    assert empty.sum() > half.sum() > full.sum()
    with pytest.raises(ValueError, match="square"):
        confusion_matrix_image(np.zeros((2, 3)))
