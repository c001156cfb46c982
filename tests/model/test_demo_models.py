"""Demo digits models: output contract per mode, input shapes, default init, and learning."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from torchkiln.model import DigitsCNN, DigitsMLP
from torchkiln.registry import MODELS


@pytest.fixture(params=[DigitsMLP, DigitsCNN])
def model(request):
    torch.manual_seed(0)
    return request.param()


@pytest.mark.parametrize("shape", [(5, 64), (5, 8, 8), (5, 1, 8, 8)])
def test_tensor_mode_accepts_all_input_shapes(model, shape) -> None:
    logits = model(torch.rand(shape), mode="tensor")
    assert logits.shape == (5, 10)


def test_loss_mode_is_cross_entropy(model) -> None:
    x = torch.rand(4, 64, dtype=torch.float64)  # converted to the parameters' dtype
    y = torch.tensor([0, 1, 2, 3], dtype=torch.int32)
    model.eval()
    losses = model(x, y, mode="loss")
    assert set(losses) == {"loss"}
    expected = F.cross_entropy(model(x.float()), y.long())
    assert torch.allclose(losses["loss"], expected)


def test_predict_mode_returns_the_batch_dict(model) -> None:
    x, y = torch.rand(3, 1, 8, 8), torch.tensor([1, 2, 3])
    model.eval()
    out = model(x, y, mode="predict")
    assert set(out) == {"pred_scores", "gt_labels", "loss"}
    assert out["pred_scores"].shape == (3, 10) and not out["pred_scores"].requires_grad
    assert torch.allclose(out["loss"], F.cross_entropy(model(x), y, reduction="none"))  # per sample
    assert torch.equal(out["gt_labels"], y)
    assert torch.allclose(out["pred_scores"], model(x))


def test_errors_name_the_model(model) -> None:
    name = type(model).__name__
    with pytest.raises(ValueError, match=f"{name}: unknown mode 'train'"):
        model(torch.rand(2, 64), mode="train")
    with pytest.raises(ValueError, match=rf"{name}\.forward\(mode='loss'\) needs labels"):
        model(torch.rand(2, 64), mode="loss")
    with pytest.raises(ValueError, match=name):
        model(torch.rand(2, 63))


def test_default_init_cfg() -> None:
    torch.manual_seed(0)
    mlp = DigitsMLP(hidden=[256, 64])
    mlp.init_weights()
    assert mlp.head.weight.std().item() == pytest.approx(0.01, rel=0.1)
    assert torch.equal(mlp.head.bias, torch.zeros(10))
    assert mlp.backbone[0].weight.std().item() == pytest.approx((2 / 64) ** 0.5, rel=0.05)
    assert mlp.backbone[2].weight.shape == (64, 256)
    cnn = DigitsCNN(channels=(8, 16))
    cnn.init_weights()
    assert torch.equal(cnn.features[1].weight, torch.ones(8))
    assert "Kaiming" in cnn.params_init_info()["features.0.weight"]
    assert DigitsMLP(init_cfg=[]).init_cfg == []


def test_built_by_name() -> None:
    assert isinstance(MODELS.build({"type": "DigitsMLP", "hidden": 16}), DigitsMLP)
    assert isinstance(MODELS.build({"type": "DigitsCNN", "dropout": 0.1}), DigitsCNN)


def test_mlp_learns_digits(make_optim_wrapper) -> None:
    datasets = pytest.importorskip("sklearn.datasets")
    digits = datasets.load_digits()
    x = torch.tensor(digits.data, dtype=torch.float32) / 16.0
    y = torch.tensor(digits.target)
    g = torch.Generator().manual_seed(0)
    perm = torch.randperm(len(y), generator=g)
    train, val = perm[:1400], perm[1400:]
    torch.manual_seed(0)
    model = DigitsMLP()
    model.init_weights()
    ow = make_optim_wrapper(model.parameters(), lr=0.1, momentum=0.9)
    model.train()
    for _ in range(8):
        for idx in train[torch.randperm(len(train), generator=g)].split(32):
            model.train_step({"inputs": x[idx], "labels": y[idx]}, ow)
    model.eval()
    with torch.no_grad():
        out = model.val_step({"inputs": x[val], "labels": y[val]})
    accuracy = (out["pred_scores"].argmax(1) == out["gt_labels"]).float().mean().item()
    assert accuracy >= 0.95
