"""What a run says about itself when it starts and when it stops."""

from __future__ import annotations

import pytest
from kiln_toys import ToyModel, make_loader
from structlog.testing import capture_logs

from torchkiln import Hook, Runner
from torchkiln.errors import RunInterrupted


def _runner(tmp_path, **kw):
    args = dict(
        model=ToyModel(),
        work_dir=str(tmp_path),
        train_dataloader=make_loader(8, 2),
        train_cfg=dict(by_epoch=True, max_epochs=2),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1)),
        default_hooks=dict(checkpoint=None, progress_bar=None),
    )
    args.update(kw)
    return Runner(**args)


def _events(logs, level):
    return [e["event"] for e in logs if e["log_level"] == level]


def test_the_hook_table_is_debug_and_a_summary_is_info(tmp_path):
    runner = _runner(tmp_path, log_level="DEBUG")
    with capture_logs() as logs:
        runner.train()
    info = _events(logs, "info")
    assert not any("hooks in call order" in e for e in info)
    [summary] = [e for e in info if e.startswith("hooks: ")]
    assert "LoggerHook" in summary and "log_level: DEBUG" in summary
    assert any("hooks in call order" in e for e in _events(logs, "debug"))


def test_the_header_says_whether_mixed_precision_is_on(tmp_path):
    runner = _runner(tmp_path / "fp32")
    with capture_logs() as logs:
        runner.train()
    assert "mixed precision: off (float32)" in _events(logs, "info")
    amp = dict(type="AmpOptimWrapper", dtype="bfloat16", optimizer=dict(type="SGD", lr=0.1))
    runner = _runner(tmp_path / "bf16", optim_wrapper=amp)
    with capture_logs() as logs:
        runner.train()
    assert "mixed precision: AmpOptimWrapper autocast to bfloat16 (no loss scaling)" in _events(logs, "info")


class _StopAfter(Hook):
    def __init__(self, iteration):
        self.iteration = iteration

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 == self.iteration:
            runner.request_stop("a test")


class _StopAfterEpoch(Hook):
    def after_train_epoch(self, runner):
        runner.request_stop("a test")


@pytest.mark.parametrize(
    ("hook", "message"),
    [
        (_StopAfter(5), "after iteration 5 (in epoch 2)"),
        (_StopAfter(4), "after iteration 4 (in epoch 1)"),
        (_StopAfterEpoch(), "after iteration 4 (at the end of epoch 1)"),
    ],
)
def test_the_stop_message_counts_epochs_as_the_log_does(tmp_path, hook, message):
    # 4 batches per epoch: iterations 1-4 are the log's "Epoch(train) [1]", 5-8 its "[2]".
    runner = _runner(tmp_path, custom_hooks=[hook], train_cfg=dict(by_epoch=True, max_epochs=3))
    with pytest.raises(RunInterrupted) as info:
        runner.train()
    assert message in str(info.value)
