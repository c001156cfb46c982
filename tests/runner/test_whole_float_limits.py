"""Loop limits given as whole floats (``val_interval=1e6``) work, as in MMEngine."""

from __future__ import annotations

import pytest
from kiln_toys import ToyModel, make_loader

from torchkiln import Runner
from torchkiln.errors import ConfigError


def _runner(tmp_path, train_cfg):
    return Runner(
        model=ToyModel(),
        work_dir=str(tmp_path),
        train_dataloader=make_loader(8, 2),
        train_cfg=train_cfg,
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1)),
        default_hooks=dict(checkpoint=None, progress_bar=None),
    )


def test_whole_floats_become_integers(tmp_path):
    runner = _runner(tmp_path, dict(by_epoch=True, max_epochs=2.0, val_interval=1e6))
    runner.train()
    loop = runner.train_loop
    assert runner.epoch == 2 and loop.max_epochs == 2 and type(loop.max_epochs) is int
    assert loop.val_interval == 1_000_000 and type(loop.val_interval) is int


def test_iteration_limits_too(tmp_path):
    runner = _runner(tmp_path, dict(by_epoch=False, max_iters=3.0, val_interval=1e6))
    runner.train()
    assert runner.iter == 3


def test_a_fractional_limit_is_still_refused(tmp_path):
    with pytest.raises(ConfigError, match="max_epochs"):
        _runner(tmp_path, dict(by_epoch=True, max_epochs=2.5)).train()
