"""``resume: true | PATH`` and config changes on resume; ``load_from`` as a path or a dict."""

from __future__ import annotations

import os

import pytest
import torch
from resume_helpers import build_runner, train
from resume_support import config
from structlog.testing import capture_logs

from torchkiln.errors import ConfigError
from torchkiln.runner import CheckpointError


def _warnings(logs):
    return "\n".join(e["event"] for e in logs if e.get("log_level") == "warning")


def test_resume_true_picks_last_checkpoint_and_changes_apply_with_a_warning(tmp_path):
    cfg = config(str(tmp_path), by_epoch=True, max_epochs=2, interval=-1, progress=False)
    cfg["default_hooks"] = dict(cfg["default_hooks"], checkpoint={"type": "CheckpointHook", "interval": 1})
    cfg["param_scheduler"] = [cfg["param_scheduler"][0], dict(cfg["param_scheduler"][1], milestones=[1])]
    train(cfg)
    assert (tmp_path / "last_checkpoint").read_text() == str(tmp_path / "epoch_2.pth")
    more = dict(cfg, train_cfg=dict(cfg["train_cfg"], max_epochs=4))
    more["param_scheduler"] = [cfg["param_scheduler"][0], dict(cfg["param_scheduler"][1], milestones=[1, 2])]
    runner = build_runner(more, resume=True)
    with capture_logs() as logs:  # after the runner set up logging
        runner.train()
    text = _warnings(logs)
    assert "train_cfg.max_epochs: 2 -> 4" in text
    assert "param_scheduler.1.milestones: [1] -> [1, 2]" in text
    assert "resume: param_scheduler[1] MultiStepLR changed (milestones: {1: 1} -> {1: 1, 2: 1}, end: 2 -> 4)" in text
    assert runner.epoch == 4 and runner.iter == 92
    # The schedule's second milestone (its 2nd active step, after epoch 3) applied: 0.1 * 0.5^2.
    assert runner.optim_wrapper.get_lr()["lr"][0] == pytest.approx(0.1 * 0.5**2)
    assert torch.load(tmp_path / "epoch_4.pth", weights_only=True)["meta"]["epoch"] == 4


def test_resume_path_and_missing_pointer_target(tmp_path):
    cfg = config(str(tmp_path / "a"), by_epoch=False, max_iters=8, interval=4, progress=False)
    train(cfg)
    other = dict(cfg, work_dir=str(tmp_path / "b"), train_cfg=dict(cfg["train_cfg"], max_iters=10))
    runner = train(other, resume=str(tmp_path / "a" / "iter_4.pth"))
    assert runner.iter == 10
    os.remove(tmp_path / "a" / "iter_8.pth")
    with pytest.raises(CheckpointError, match="last_checkpoint points to .*iter_8.pth, which does not exist"):
        train(cfg, resume=True)


def test_resume_true_without_checkpoint_trains_from_scratch(tmp_path):
    cfg = config(str(tmp_path), by_epoch=False, max_iters=4, interval=-1, progress=False)
    runner = build_runner(cfg, resume=True)
    with capture_logs() as logs:
        runner.train()
    assert runner.iter == 4
    assert "no last_checkpoint" in _warnings(logs)


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("weights")
    runner = train(config(str(folder), by_epoch=False, max_iters=2, interval=-1, progress=False))
    state = runner.unwrapped_model.state_dict()
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, folder / "ddp_style.pth")
    torch.save({"state_dict": {f"net.{k}": v for k, v in state.items()}}, folder / "prefixed.pth")
    partial = {k: v for k, v in state.items() if not k.startswith("head.")}
    partial["backbone.0.weight"] = torch.zeros(5, 5)
    partial["extra.weight"] = torch.ones(1)
    torch.save({"state_dict": partial}, folder / "partial.pth")
    return folder, state


def _load(folder, load_from):
    cfg = config(str(folder / "load"), by_epoch=False, max_iters=1, interval=-1, progress=False)
    cfg.pop("custom_hooks")  # no EMA: the loaded weights stay as they are
    runner = build_runner(dict(cfg, load_from=load_from))
    with capture_logs() as logs:
        runner.load_or_resume(resume_state=False)
    return runner, logs


def test_load_from_strips_module_prefix_by_default(weights_file):
    folder, state = weights_file
    runner, logs = _load(folder, str(folder / "ddp_style.pth"))
    loaded = runner.unwrapped_model.state_dict()
    assert all(torch.equal(loaded[k], state[k]) for k in state)
    assert any("all keys matched" in e["event"] for e in logs)


def test_load_from_dict_with_revise_keys(weights_file):
    folder, state = weights_file
    runner, _ = _load(folder, {"path": str(folder / "prefixed.pth"), "revise_keys": [["^net\\.", ""]]})
    loaded = runner.unwrapped_model.state_dict()
    assert all(torch.equal(loaded[k], state[k]) for k in state)


def test_load_from_reports_missing_unexpected_and_mismatched_keys(weights_file):
    folder, _ = weights_file
    _, logs = _load(folder, str(folder / "partial.pth"))
    text = _warnings(logs)
    assert "missing keys in checkpoint (2): head.weight, head.bias" in text
    assert "unexpected keys in checkpoint (1): extra.weight" in text
    assert "shape mismatch for backbone.0.weight: checkpoint [5, 5] vs model [32, 64]" in text
    with pytest.raises(CheckpointError, match="do not match DigitsMLP"):
        _load(folder, {"path": str(folder / "partial.pth"), "strict": True})


def test_load_from_errors(weights_file):
    folder, _ = weights_file
    with pytest.raises(CheckpointError, match="none of the weights in .*prefixed.pth fit DigitsMLP"):
        _load(folder, str(folder / "prefixed.pth"))
    with pytest.raises(ConfigError, match="(?s)unknown key 'load_from.stric'.*did you mean 'strict'"):
        _load(folder, {"path": str(folder / "partial.pth"), "stric": True})
    with pytest.raises(ConfigError, match="revise_keys.0': expected a list"):
        _load(folder, {"path": str(folder / "partial.pth"), "revise_keys": ["^net"]})
    with pytest.raises(ConfigError, match="revise_keys': items must be \\[pattern, replacement\\] pairs"):
        _load(folder, {"path": str(folder / "partial.pth"), "revise_keys": [["^net", "", "x"]]})
