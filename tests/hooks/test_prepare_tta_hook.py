"""PrepareTTAHook + BaseTTAModel + DumpResults, end to end through ``Runner.test()``."""

from __future__ import annotations

import pickle

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from torchkiln.data.collate import pseudo_collate
from torchkiln.hooks import PrepareTTAHook
from torchkiln.model import BaseModel, BaseTTAModel
from torchkiln.registry import HOOKS, MODELS
from torchkiln.runner import Runner


class TwoViews(Dataset):
    """Each sample comes as two views, ``x`` and ``-x`` (a flip-like TTA pipeline)."""

    def __init__(self) -> None:
        self.x = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict:
        return {"inputs": [self.x[i], -self.x[i]]}


class Linear(BaseModel):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, inputs, data_samples=None, mode="tensor"):
        logits = self.fc(torch.stack(list(inputs)))
        return list(logits) if mode == "predict" else logits


class MeanTTA(BaseTTAModel):
    """Averages the per-view predictions of each sample."""

    def merge_preds(self, data_samples_list):
        return [torch.stack(views).mean(0) for views in data_samples_list]


@pytest.fixture(autouse=True)
def _registered():
    MODELS.register_module(module=MeanTTA, force=True)
    yield


def test_the_hook_is_a_registered_builtin() -> None:
    assert HOOKS.get("PrepareTTAHook") is PrepareTTAHook
    with pytest.raises(TypeError, match="tta_cfg"):
        PrepareTTAHook(tta_cfg={"module": None})


def test_runner_test_wraps_the_model_and_dumps_merged_predictions(tmp_path) -> None:
    model = Linear()
    out = tmp_path / "preds.pkl"
    runner = Runner(
        model=model,
        work_dir=str(tmp_path),
        test_dataloader=DataLoader(TwoViews(), batch_size=4, collate_fn=pseudo_collate),
        test_cfg={},
        test_evaluator={"type": "DumpResults", "out_file_path": str(out)},
        custom_hooks=[{"type": "PrepareTTAHook", "tta_cfg": {"type": "MeanTTA"}}],
    )
    metrics = runner.test()
    assert metrics == {}
    assert isinstance(runner.model, MeanTTA) and runner.model.module is model
    with open(out, "rb") as fh:
        dumped = pickle.load(fh)
    # the two views are x and -x, so the mean of a linear layer's outputs is its bias
    assert len(dumped) == 6
    for prediction in dumped:
        assert torch.allclose(prediction, model.fc.bias.detach(), atol=1e-6)


def test_tta_model_accepts_tuples_and_rejects_other_batches() -> None:
    tta = MeanTTA(module=Linear())
    x = torch.randn(2, 4)
    merged = tta.test_step(([list(x), list(-x)],))
    assert len(merged) == 2
    with pytest.raises(TypeError, match="one entry per view"):
        tta.test_step(torch.zeros(2))
    with pytest.raises(NotImplementedError):
        tta(x)
    with pytest.raises(NotImplementedError, match="train_step should not be called"):
        tta.train_step(None, None)
    built = MeanTTA(module={"type": "DigitsMLP"})
    assert type(built.module).__name__ == "DigitsMLP"


def test_build_runner_with_tta_needs_both_keys():
    """The MMEngine module path offers the builder; a config without the TTA keys is refused."""
    from torchkiln.config import Config
    from torchkiln.errors import ConfigError
    from torchkiln.hooks.test_time_aug_hook import PrepareTTAHook as Aliased
    from torchkiln.hooks.test_time_aug_hook import build_runner_with_tta

    assert Aliased is PrepareTTAHook
    with pytest.raises(KeyError, match="tta_pipeline") as info:
        build_runner_with_tta(Config({"tta_model": {"type": "X"}}))
    assert isinstance(info.value, ConfigError)
