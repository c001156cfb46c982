"""Clear errors for what users get wrong when building or running a Runner."""

from __future__ import annotations

import pytest
import torch
from kiln_toys import ToyModel, make_loader
from torch import nn

from torchkiln import BaseModel, Runner
from torchkiln.errors import ConfigError, UsageError


def _base(tmp_path, **kw):
    args = dict(
        model=ToyModel(),
        work_dir=str(tmp_path),
        train_dataloader=make_loader(8, 4),
        train_cfg=dict(by_epoch=True, max_epochs=1),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1)),
    )
    args.update(kw)
    return args


def test_train_triple_all_or_none(tmp_path):
    with pytest.raises(ConfigError, match="train_dataloader, train_cfg given without optim_wrapper"):
        Runner(**_base(tmp_path, optim_wrapper=None))


def test_val_dataloader_without_evaluator(tmp_path):
    with pytest.raises(ConfigError) as info:
        Runner(**_base(tmp_path, val_dataloader=make_loader(4, 2), val_cfg={}))
    assert "val_evaluator" in str(info.value)


def test_train_cfg_type_and_by_epoch(tmp_path):
    with pytest.raises(ConfigError, match="both 'type' and 'by_epoch'"):
        Runner(**_base(tmp_path, train_cfg=dict(type="EpochBasedTrainLoop", by_epoch=True, max_epochs=1)))


def test_train_without_train_parts(tmp_path):
    runner = Runner(model=ToyModel(), work_dir=str(tmp_path))
    with pytest.raises(UsageError, match="cannot train"):
        runner.train()
    with pytest.raises(UsageError, match="cannot validate"):
        runner.val()


class BadLossModel(BaseModel):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 3)

    def forward(self, inputs, labels=None, mode="tensor"):
        out = self.linear(inputs)
        if mode == "loss":
            return out.sum()  # a tensor, not a dict
        return out


def test_loss_mode_must_return_a_dict(tmp_path):
    runner = Runner(**_base(tmp_path, model=BadLossModel()))
    with pytest.raises(TypeError) as info:
        runner.train()
    assert "BadLossModel" in str(info.value)
    assert "dict" in str(info.value)


def test_batch_structure_the_model_cannot_take(tmp_path):
    class DictData(torch.utils.data.Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return {"x": torch.zeros(4), "y": torch.tensor(0)}

    loader = torch.utils.data.DataLoader(DictData(), batch_size=2)
    runner = Runner(**_base(tmp_path, train_dataloader=loader))
    with pytest.raises(TypeError) as info:
        runner.train()
    message = str(info.value)
    assert "ToyModel" in message
    assert "x" in message


def test_unknown_launcher(tmp_path):
    with pytest.raises(ConfigError, match="must be one of 'none', 'pytorch', 'slurm', 'mpi'; got 'mpirun'"):
        Runner(**_base(tmp_path, launcher="mpirun"))


def test_a_failed_start_leaves_no_empty_run_folder(tmp_path):
    work_dir = tmp_path / "new_run"
    with pytest.raises(ConfigError):
        Runner(**_base(work_dir, model=dict(type="DigitsMLP", hidden=[8]), visualizer=dict(type="NopeVisualizer")))
    assert not work_dir.exists()
    existing = tmp_path / "old_run"
    (existing / "epoch_1.pth").parent.mkdir()
    (existing / "epoch_1.pth").write_bytes(b"x")
    with pytest.raises(ConfigError):
        Runner(**_base(existing, visualizer=dict(type="NopeVisualizer")))
    assert sorted(p.name for p in existing.iterdir()) == ["epoch_1.pth"]  # only the empty log folder went
