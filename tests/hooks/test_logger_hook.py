"""LoggerHook: log lines and scalars.jsonl records at the right iterations; val/test records."""

from __future__ import annotations

import json
import os
import types

import pytest

from torchkiln.errors import ConfigError
from torchkiln.hooks.logger_hook import LoggerHook


def _records(runner):
    path = os.path.join(runner.log_dir, "scalars.jsonl")
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def test_train_lines_every_interval(make_runner, drive):
    runner = make_runner(max_epochs=2, iters_per_epoch=5)
    hook = LoggerHook(interval=2)
    drive.train_epoch(runner, [hook])
    drive.train_epoch(runner, [hook])
    hook.after_run(runner)
    # ignore_last: the 5th batch of each epoch is not logged (epoch longer than interval).
    assert [r["step"] for r in _records(runner)] == [2, 4, 7, 9]
    assert [r["epoch"] for r in _records(runner)] == [1, 1, 2, 2]
    first = _records(runner)[0]
    assert first == {"step": 2, "epoch": 1, "mode": "train", "loss": 0.5, "lr": 0.1}
    assert runner.logger.messages("info") == ["train iter 1", "train iter 3", "train iter 1", "train iter 3"]


def test_last_batch_logged_without_ignore_last(make_runner, drive):
    runner = make_runner(max_epochs=1, iters_per_epoch=5)
    hook = LoggerHook(interval=2, ignore_last=False)
    drive.train_epoch(runner, [hook])
    hook.after_run(runner)
    assert [r["step"] for r in _records(runner)] == [2, 4, 5]


def test_short_epochs_log_their_last_batch(make_runner, drive):
    runner = make_runner(max_epochs=1, iters_per_epoch=3)
    hook = LoggerHook(interval=10)
    drive.train_epoch(runner, [hook])
    hook.after_run(runner)
    assert [r["step"] for r in _records(runner)] == [3]


def test_experiment_name_interval(make_runner, drive):
    runner = make_runner(max_epochs=1, iters_per_epoch=4)
    drive.train_epoch(runner, [LoggerHook(interval=100, interval_exp_name=2)])
    assert runner.logger.messages("info").count("Exp name: exp") == 2


def test_val_and_test_records_and_metrics_file(make_runner, drive):
    runner = make_runner(max_epochs=1, iters_per_epoch=2)
    runner.val_loop = types.SimpleNamespace(dataloader=[0, 1, 2])
    runner.test_loop = types.SimpleNamespace(dataloader=[0])
    hook = LoggerHook(interval=1)
    drive.train_epoch(runner, [hook])
    for idx in range(3):
        hook.after_val_iter(runner, idx, None, None)
    hook.after_val_epoch(runner, {"accuracy/top1": 90.0, "cm": [[1, 2]]})
    hook.after_test_epoch(runner, {"accuracy/top1": 88.0})
    hook.after_run(runner)
    records = _records(runner)
    assert [r["mode"] for r in records] == ["train", "train", "val", "test"]
    assert records[2] == {"step": 2, "epoch": 1, "mode": "val", "accuracy/top1": 90.0}
    assert ("epoch", 3, "val") in runner.log_processor.calls
    assert [c for c in runner.log_processor.calls if c[2] == "val" and c[0] == "iter"] == [
        ("iter", 0, "val"), ("iter", 1, "val"), ("iter", 2, "val")
    ]
    with open(os.path.join(runner.log_dir, "metrics.json"), encoding="utf-8") as fh:
        metrics = json.load(fh)
    assert metrics["val"] == {"step": 2, "epoch": 1, "mode": "val", "accuracy/top1": 90.0, "cm": [[1, 2]]}
    assert metrics["test"]["accuracy/top1"] == 88.0


def test_tensor_values_become_numbers(make_runner, drive):
    import torch

    runner = make_runner(max_epochs=1, iters_per_epoch=1)
    runner.log_processor.get_log_after_iter = lambda r, i, m: ({"loss": torch.tensor(0.25), "bad": float("nan")}, "x")
    hook = LoggerHook(interval=1)
    drive.train_epoch(runner, [hook])
    hook.after_run(runner)
    assert _records(runner)[0]["loss"] == 0.25 and _records(runner)[0]["bad"] == "nan"


def test_only_rank_zero_writes(make_runner, drive):
    runner = make_runner(max_epochs=1, iters_per_epoch=2)
    runner.rank = 1
    hook = LoggerHook(interval=1)
    drive.train_epoch(runner, [hook])
    hook.after_run(runner)
    assert not os.path.exists(os.path.join(runner.log_dir, "scalars.jsonl"))
    assert len(runner.logger.messages("info")) == 2


def test_file_is_opened_once_and_closed(make_runner, drive):
    from torchkiln.logging import flush_all

    runner = make_runner(max_epochs=1, iters_per_epoch=4)
    hook = LoggerHook(interval=1)
    drive.train_epoch(runner, [hook])  # the epoch end flushes
    handle = hook._scalars_file
    assert handle is not None and not handle.closed
    assert len(_records(runner)) == 4
    handle.write({"step": 99})
    flush_all()  # what the signal and crash paths call
    assert _records(runner)[-1] == {"step": 99}
    hook.after_run(runner)
    assert handle.closed and hook._scalars_file is None


def test_visualizer_gets_the_tags(make_runner, drive):
    calls = []
    runner = make_runner(max_epochs=1, iters_per_epoch=2)
    runner.visualizer = types.SimpleNamespace(
        add_scalars=lambda tag, step, file_path=None: calls.append((tag, step, file_path))
    )
    hook = LoggerHook(interval=2)
    hook.before_run(runner)
    drive.train_epoch(runner, [hook])
    # file_path: the local backend also appends to vis_data/<timestamp>.json, as MMEngine does
    assert calls == [({"loss": 0.5, "lr": 0.1}, 2, "20240101_000000.json")]


def test_last_batch_of_a_short_epoch_is_logged_without_before_train_epoch(make_runner):
    runner = make_runner(max_epochs=1, iters_per_epoch=9)
    hook = LoggerHook()  # interval 10 > 9 batches
    hook.after_train_iter(runner, 7)
    assert runner.log_processor.calls == []
    hook.after_train_iter(runner, 8)
    assert runner.log_processor.calls == [("iter", 8, "train")]


def test_test_results_are_dumped_with_non_scalars(make_runner, drive):
    runner = make_runner(max_epochs=1, iters_per_epoch=1)
    hook = LoggerHook()
    hook.before_run(runner)
    hook.after_test_epoch(runner, {"accuracy/top1": 90.0})
    path = os.path.join(runner.log_dir, "20240101_000000.json")
    with open(path, encoding="utf-8") as fh:
        assert json.load(fh) == {"accuracy/top1": 90.0, "confusion": [[1, 0], [0, 1]]}


def test_out_dir_copies_logs(make_runner, drive, tmp_path):
    runner = make_runner(max_epochs=1, iters_per_epoch=1)
    with open(os.path.join(runner.log_dir, "run.log"), "w", encoding="utf-8") as fh:
        fh.write("hello\n")
    hook = LoggerHook(interval=1, out_dir=str(tmp_path / "archive"), out_suffix=(".log", ".jsonl"), keep_local=False)
    drive.train_epoch(runner, [hook])
    hook.after_run(runner)
    target = tmp_path / "archive" / os.path.basename(runner.work_dir) / os.path.basename(runner.log_dir)
    assert sorted(os.listdir(target)) == ["run.log", "scalars.jsonl"]
    assert not os.path.exists(os.path.join(runner.log_dir, "run.log"))


def test_out_dir_copies_subfolders_and_keep_local_false_removes_them(make_runner, drive, tmp_path):
    runner = make_runner(max_epochs=1, iters_per_epoch=1)
    os.makedirs(os.path.join(runner.log_dir, "vis_data"))
    with open(os.path.join(runner.log_dir, "vis_data", "run.json"), "w", encoding="utf-8") as fh:
        fh.write("{}\n")
    hook = LoggerHook(interval=1, out_dir=str(tmp_path / "archive"), keep_local=False)
    drive.train_epoch(runner, [hook])
    hook.after_run(runner)
    target = tmp_path / "archive" / os.path.basename(runner.work_dir) / os.path.basename(runner.log_dir)
    assert (target / "vis_data" / "run.json").read_text() == "{}\n"
    assert not os.path.exists(os.path.join(runner.log_dir, "vis_data", "run.json"))


def test_bad_arguments():
    with pytest.raises(ConfigError, match="interval"):
        LoggerHook(interval=0)
    # The exception types MMEngine raises at the same checks.
    with pytest.raises(TypeError, match="interval must be"):
        LoggerHook(interval="100")
    with pytest.raises(ValueError, match="interval must be"):
        LoggerHook(interval=-1)
    with pytest.raises(TypeError, match="ignore_last must be"):
        LoggerHook(ignore_last="False")
    with pytest.raises(TypeError, match="interval_exp_name"):
        LoggerHook(interval_exp_name="100")
    with pytest.raises(ValueError, match="interval_exp_name"):
        LoggerHook(interval_exp_name=-1)
    with pytest.raises(TypeError, match="out_suffix"):
        LoggerHook(out_suffix=[100])
    with pytest.raises(TypeError, match="out_dir must be"):
        LoggerHook(out_dir=1)
    with pytest.raises(ValueError, match="file_client_args"):
        LoggerHook(file_client_args={"enable_mc": True})
    with pytest.raises(ValueError, match="cannot be set at the same time"):
        LoggerHook(file_client_args={"backend": "disk"}, backend_args={"backend": "local"})
    LoggerHook(file_client_args={"backend": "disk"})  # the local disk: accepted
    with pytest.raises(ConfigError, match="keep_local"):
        LoggerHook(keep_local=False)
