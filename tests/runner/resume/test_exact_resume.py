"""An interrupted and resumed deterministic CPU run ends bit-identical to an uninterrupted one.

Each case trains a small digits MLP with dropout (global torch RNG), random augmentation
(per sample, from seed/epoch/index), an EMA, momentum SGD and two schedulers; the
interrupted run stops after iteration ``k`` (a stop request saves a resumable checkpoint)
and a fresh Runner resumes from it.
"""

from __future__ import annotations

import pytest
import torch
from resume_helpers import assert_bit_identical, train, weights
from resume_support import config

from torchkiln.data import DigitsDataset
from torchkiln.registry import DATASETS

# (by_epoch, workers, k): 23 batches of 64 per epoch of the digits train split.
CASES = [
    pytest.param(True, 0, 30, id="epoch-mid-epoch-2"),
    pytest.param(True, 0, 23, id="epoch-last-batch-of-epoch"),  # epoch end and validation still to come
    pytest.param(True, 2, 10, id="epoch-mid-epoch-1-workers2"),
    pytest.param(False, 0, 20, id="iter-validation-pending"),  # validation due after iteration 20
    pytest.param(False, 0, 27, id="iter-second-pass"),
    pytest.param(False, 2, 13, id="iter-workers2"),
]


@pytest.mark.parametrize(("by_epoch", "workers", "k"), CASES)
def test_resumed_run_is_bit_identical(tmp_path, by_epoch, workers, k):
    cfg = config(str(tmp_path / "straight"), by_epoch=by_epoch, workers=workers, max_iters=36, interval=-1, progress=False)
    straight = train(cfg)
    cut = dict(cfg, work_dir=str(tmp_path / "cut"))
    first = train(cut, stop_at=k)
    assert first.iter == k
    resumed = train(cut, resume=True)
    assert resumed.iter == straight.iter
    assert_bit_identical(weights(straight), weights(resumed))
    # The optimizer state (momentum buffers, scheduled lr) matches too.
    a, b = straight.optim_wrapper.state_dict(), resumed.optim_wrapper.state_dict()
    assert a["param_groups"] == b["param_groups"]
    for key, state in a["state"].items():
        assert torch.equal(state["momentum_buffer"], b["state"][key]["momentum_buffer"])


def test_the_comparison_notices_a_lost_rng_state(tmp_path, monkeypatch):
    """A control: without restoring the RNG states (dropout) the runs differ."""
    cfg = config(str(tmp_path / "straight"), by_epoch=True, interval=-1, progress=False)
    straight = train(cfg)
    cut = dict(cfg, work_dir=str(tmp_path / "cut"))
    train(cut, stop_at=12)
    monkeypatch.setattr("torchkiln.runner.training_state.restore_rng_state", lambda state: None)
    resumed = train(cut, resume=True)
    with pytest.raises(AssertionError, match="differ"):
        assert_bit_identical(weights(straight), weights(resumed))


@DATASETS.register_module(force=True)
class CountingDigits(DigitsDataset):
    """DigitsDataset that counts the samples it hands out (class-wide)."""

    loaded = 0

    def __getitem__(self, index):
        CountingDigits.loaded += 1
        return super().__getitem__(index)


@pytest.mark.parametrize("by_epoch", [True, False], ids=["epoch", "iter"])
def test_resume_loads_no_consumed_sample(tmp_path, by_epoch):
    cfg = config(str(tmp_path / "run"), by_epoch=by_epoch, max_iters=30, interval=-1, progress=False)
    cfg["train_dataloader"]["dataset"]["type"] = "CountingDigits"
    cfg["val_dataloader"] = cfg["val_cfg"] = cfg["val_evaluator"] = None
    train(cfg, stop_at=17)
    CountingDigits.loaded = 0
    resumed = train(cfg, resume=True)
    if by_epoch:  # the rest of epoch 1 after 17 batches of 64, then all of epoch 2 (1438 samples)
        assert resumed.iter == 46
        assert CountingDigits.loaded == (1438 - 17 * 64) + 1438
    else:  # 13 more batches of 64 from the endless stream
        assert resumed.iter == 30
        assert CountingDigits.loaded == 13 * 64
