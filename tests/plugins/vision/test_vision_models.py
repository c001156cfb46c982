"""The classifiers: losses, predictions, and local weights (never downloaded)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torchkiln.errors import ConfigError
from torchkiln.registry import MODELS
from torchkiln_vision.losses import classification_loss


def _tiny_resnet(**kwargs):
    return MODELS.build(
        {"type": "TorchvisionClassifier", "model_name": "resnet18", "num_classes": 3, **kwargs}
    )


def test_loss_hard_smoothed_and_soft_targets():
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]])
    labels = torch.tensor([0, 2])
    assert torch.allclose(classification_loss(logits, labels), F.cross_entropy(logits, labels))
    logp = logits.log_softmax(-1)
    smooth = 0.1
    targets = F.one_hot(labels, 3).float() * (1 - smooth) + smooth / 3
    assert torch.allclose(
        classification_loss(logits, labels, smooth), -(targets * logp).sum(-1).mean()
    )
    soft = torch.tensor([[0.7, 0.3, 0.0], [0.0, 0.5, 0.5]])
    assert torch.allclose(classification_loss(logits, soft), -(soft * logp).sum(-1).mean())
    with pytest.raises(ValueError, match="do not match"):
        classification_loss(logits, torch.zeros(2, 4))


def test_torchvision_classifier_modes():
    torch.manual_seed(0)
    model = _tiny_resnet(label_smoothing=0.1)
    model.eval()
    images = torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8)
    labels = torch.tensor([1, 2])
    data = model.data_preprocessor({"inputs": images, "data_samples": labels}, False)
    logits = model(**data, mode="tensor")
    assert logits.shape == (2, 3)
    loss = model(**data, mode="loss")["loss"]
    assert torch.allclose(loss, F.cross_entropy(logits, labels, label_smoothing=0.1))
    out = model.val_step({"inputs": images, "data_samples": labels})
    assert torch.allclose(out["pred_scores"], logits.softmax(-1))
    assert out["pred_labels"].tolist() == logits.argmax(-1).tolist()
    assert out["gt_labels"].tolist() == [1, 2]


def test_unknown_model_names_are_config_errors():
    with pytest.raises(ConfigError, match="no classification model 'resnet81'") as info:
        _tiny_resnet(model_name="resnet81")
    assert "did you mean" in str(info.value)
    with pytest.raises(ConfigError, match="timm has no model 'resnet1800'"):
        MODELS.build({"type": "TimmClassifier", "model_name": "resnet1800"})


def test_missing_local_weights_file_is_a_clear_error(tmp_path):
    missing = str(tmp_path / "nope.pth")
    with pytest.raises(ConfigError) as info:
        _tiny_resnet(pretrained=missing)
    text = str(info.value)
    assert f"local weights file {missing!r} does not exist" in text
    assert "model.pretrained" in text and "never downloads" in text
    with pytest.raises(ConfigError, match=r"init_cfg\[0\]\.checkpoint"):
        _tiny_resnet(init_cfg={"type": "Pretrained", "checkpoint": missing})
    assert info.value.exit_code == 2


@pytest.mark.parametrize("value", [True, "IMAGENET1K_V1", "https://example.com/resnet18.pth"])
def test_asking_for_a_download_is_refused(value):
    with pytest.raises(ConfigError, match="download"):
        _tiny_resnet(pretrained=value)
    with pytest.raises(ConfigError, match="weights would download"):
        _tiny_resnet(weights="DEFAULT")


def test_local_weights_load_from_raw_state_dicts_and_checkpoints(tmp_path):
    import torchvision

    torch.manual_seed(1)
    source = torchvision.models.resnet18(num_classes=10)  # another head size: skipped
    raw = tmp_path / "resnet18.pth"
    torch.save(source.state_dict(), raw)
    model = _tiny_resnet(pretrained=str(raw))
    assert torch.equal(model.network.conv1.weight, source.conv1.weight)
    assert model.network.fc.weight.shape == (3, 512)
    # a torchkiln checkpoint of the wrapper, through init_cfg, applied by init_weights
    ckpt = tmp_path / "epoch_1.pth"
    torch.save({"meta": {}, "state_dict": model.state_dict()}, ckpt)
    fresh = _tiny_resnet(init_cfg={"type": "Pretrained", "checkpoint": str(ckpt)})
    assert not torch.equal(fresh.network.fc.weight, model.network.fc.weight)
    fresh.init_weights()
    assert torch.equal(fresh.network.fc.weight, model.network.fc.weight)
    unrelated = tmp_path / "other.pth"
    torch.save({"something.weight": torch.zeros(2)}, unrelated)
    with pytest.raises(ConfigError, match="no tensor of weights file"):
        _tiny_resnet(pretrained=str(unrelated))
