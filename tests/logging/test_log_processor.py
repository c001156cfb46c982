"""LogProcessor: exact line formats, eta, custom statistics, tags, config errors."""

from __future__ import annotations

import types

import pytest

from torchkiln.errors import ConfigError
from torchkiln.logging import LogProcessor, MessageHub
from torchkiln.logging import log_processor as log_processor_module
from torchkiln.registry import LOG_PROCESSORS


@pytest.fixture(autouse=True)
def _no_cuda_memory(monkeypatch):
    monkeypatch.setattr(LogProcessor, "_memory", lambda self, runner: None)


def _train_hub(iterations: int = 50) -> MessageHub:
    hub = MessageHub("lp")
    for i in range(iterations):
        hub.update_scalar("train/lr", 0.1)
        hub.update_scalar("train/time", 0.01 if i < iterations - 10 else 0.0123)
        hub.update_scalar("train/data_time", 0.0011)
        hub.update_scalar("train/loss", 0.4 + (i % 2) * 0.0642)  # alternates: window mean 0.4321
        hub.update_scalar("train/accuracy", float(i))  # not smoothed: current value
    return hub


def _runner(hub: MessageHub, **kwargs) -> types.SimpleNamespace:
    values = {"message_hub": hub, "epoch": 0, "iter": 49, "max_iters": 1150, "max_epochs": 10,
              "train_dataloader": range(115), "val_dataloader": range(8), "test_dataloader": range(8)}
    values.update(kwargs)
    return types.SimpleNamespace(**values)


def test_epoch_based_train_line():
    runner = _runner(_train_hub())
    tag, line = LogProcessor().get_log_after_iter(runner, 49, "train")
    # eta: 0.0123 s/iter x (1150 - 49 - 1) iterations left = 13.53 s; the epoch is
    # right-aligned to the width of max_epochs (10), as in MMEngine's lines
    assert line == ("Epoch(train)  [1][ 50/115]  lr: 1.0000e-01  eta: 0:00:13  time: 0.0123  "
                    "data_time: 0.0011  loss: 0.4321  accuracy: 49.0000")
    assert tag == pytest.approx({"lr": 0.1, "time": 0.0123, "data_time": 0.0011, "loss": 0.4321, "accuracy": 49.0,
                                 "epoch": 1, "iter": 50})


def test_iteration_based_train_line_and_eta():
    runner = _runner(_train_hub(), iter=49, max_iters=1000)
    _, line = LogProcessor(by_epoch=False).get_log_after_iter(runner, 49, "train")
    # 0.0123 x 950 = 11.685 s
    assert line.startswith("Iter(train) [  50/1000]  lr: 1.0000e-01  eta: 0:00:11  time: 0.0123  ")


def test_eta_in_hours_and_window():
    hub = MessageHub("eta")
    for time in [1.0] * 5 + [2**-7] * 10 + [2**-6] * 10:  # binary fractions: exact means
        hub.update_scalar("train/time", time)
    runner = _runner(hub, iter=9, max_iters=1_000_010)
    _, line = LogProcessor(window_size=20).get_log_after_iter(runner, 9, "train")
    # mean of the last 20 = 0.01171875 s; x 1,000,000 iterations left = 11718.75 s
    assert line == "Epoch(train)  [1][ 10/115]    eta: 3:15:18  time: 0.0117  "


def test_memory_is_shown_on_cuda(monkeypatch):
    monkeypatch.setattr(LogProcessor, "_memory", lambda self, runner: 812)
    tag, line = LogProcessor().get_log_after_iter(_runner(_train_hub()), 49, "train")
    assert "data_time: 0.0011  memory: 812  loss: 0.4321" in line
    assert tag["memory"] == 812


def test_val_iteration_and_epoch_lines():
    hub = _train_hub()
    for i in range(8):
        hub.update_scalar("val/time", 0.004 + 0.002 * (i % 2))
        hub.update_scalar("val/data_time", 0.001)
    hub.update_scalar("val/accuracy/top1", 96.1)
    hub.update_scalar("val/loss", 0.25)
    runner = _runner(hub, epoch=1)
    processor = LogProcessor(window_size=4)
    _, line = processor.get_log_after_iter(runner, 4, "val")
    assert line == "Epoch(val)  [1][5/8]    eta: 0:00:00  time: 0.0050  data_time: 0.0010  "
    tag, line = processor.get_log_after_epoch(runner, 8, "val")
    assert line == "Epoch(val) [1][8/8]    accuracy/top1: 96.1000  loss: 0.2500  data_time: 0.0010  time: 0.0050"
    assert tag == pytest.approx({"accuracy/top1": 96.1, "loss": 0.25, "data_time": 0.001, "time": 0.005})


def test_test_and_standalone_val_lines_have_no_epoch():
    hub = MessageHub("t")
    for _ in range(8):
        hub.update_scalar("test/time", 0.02)
        hub.update_scalar("test/data_time", 0.01)
        hub.update_scalar("val/time", 0.02)
    hub.update_scalar("test/accuracy", 88.0)
    runner = _runner(hub, epoch=0)
    _, line = LogProcessor().get_log_after_epoch(runner, 8, "test")
    assert line == "Epoch(test) [8/8]    accuracy: 88.0000  data_time: 0.0100  time: 0.0200"
    _, line = LogProcessor().get_log_after_epoch(runner, 8, "val")
    assert line == "Epoch(val) [8/8]    time: 0.0200"
    _, line = LogProcessor(by_epoch=False).get_log_after_epoch(runner, 8, "test")
    assert line.startswith("Iter(test) [8/8]    accuracy: 88.0000")


def test_non_scalar_info_and_hierarchy_tags():
    hub = MessageHub("t")
    hub.update_scalar("val/accuracy", 90.0)
    hub.update_info("val/confusion", [[1, 0], [0, 1]])
    runner = _runner(hub, epoch=2)
    tag, line = LogProcessor(log_with_hierarchy=True).get_log_after_epoch(runner, 8, "val", with_non_scalar=True)
    assert line == "Epoch(val) [2][8/8]    val/accuracy: 90.0000  val/confusion: [[1, 0], [0, 1]]"
    assert tag == {"val/accuracy": 90.0, "val/confusion": [[1, 0], [0, 1]]}
    tag, _ = LogProcessor(log_with_hierarchy=True).get_log_after_iter(_runner(_train_hub()), 49, "train")
    assert set(tag) == {"train/lr", "train/time", "train/data_time", "train/loss", "train/accuracy", "epoch", "iter"}


def test_custom_cfg_statistics():
    hub = _train_hub()
    runner = _runner(hub)
    processor = LogProcessor(custom_cfg=[
        {"data_src": "loss", "method": "max", "window_size": 10, "log_name": "loss_max"},
        {"data_src": "accuracy", "method": "mean", "window_size": "global", "log_name": "acc_global"},
        {"data_src": "accuracy", "method": "min", "window_size": "epoch", "log_name": "acc_epoch_min"},
        {"data_src": "accuracy", "method": "mean"},  # replaces the default (current) value
        {"data_src": "time", "method": "current"},
    ])
    tag, line = processor.get_log_after_iter(runner, 4, "train")  # 'epoch' window: 5 iterations
    assert tag["loss_max"] == pytest.approx(0.4642)
    assert tag["acc_global"] == pytest.approx(24.5)
    assert tag["acc_epoch_min"] == 45.0
    assert tag["accuracy"] == pytest.approx(44.5)  # mean of the last 10 (40..49)
    assert tag["time"] == 0.0123
    assert line.endswith("loss: 0.4321  accuracy: 44.5000  loss_max: 0.4642  acc_global: 24.5000  acc_epoch_min: 45.0000")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"window_size": 0}, "window_size must be a positive int"),
        ({"mean_pattern": "("}, "not a valid regular expression"),
        ({"custom_cfg": [{"data_src": "loss", "method": "avg"}]}, "method must be one of"),
        ({"custom_cfg": [{"data_src": "loss", "method": "mean", "windw_size": 3}]}, "did you mean 'window_size'"),
        ({"custom_cfg": [{"method": "mean"}]}, "need data_src"),
        ({"custom_cfg": [{"data_src": "loss", "method": "mean", "window_size": "epoch"}], "by_epoch": False},
         "needs by_epoch=True"),
        ({"custom_cfg": [{"data_src": "loss", "method": "mean", "window_size": -2}]}, "positive int, 'epoch'"),
        ({"custom_cfg": [{"data_src": "loss", "method": "mean"}, {"data_src": "loss", "method": "max"}]},
         "replaced twice"),
        ({"custom_cfg": [{"data_src": "a", "method": "mean", "log_name": "x"},
                         {"data_src": "b", "method": "max", "log_name": "x"}]}, "used twice"),
    ],
)
def test_config_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        LogProcessor(**kwargs)


def test_registered_lazily_in_log_processors():
    from torchkiln.registry._index import builtin_components

    assert builtin_components("torchkiln.log_processors") == {"LogProcessor": "torchkiln.logging.log_processor:LogProcessor"}
    built = LOG_PROCESSORS.build({"type": "LogProcessor", "window_size": 20, "by_epoch": False})
    assert isinstance(built, LogProcessor) and built.window_size == 20 and not built.by_epoch


def test_mmengine_private_steps_of_a_line():
    """The steps MMEngine's LogProcessor exposes, which subclasses override or call."""
    hub = _train_hub()
    hub.update_info("val/confusion", [[1]])
    runner = _runner(hub, epoch=2, iter=10, _train_loop=object())
    processor = LogProcessor()
    parsed = processor._parse_windows_size(
        runner, 4, [{"data_src": "loss", "window_size": "epoch"}, {"data_src": "x", "window_size": "global"}]
    )
    assert [item["window_size"] for item in parsed] == [5, 11]
    with pytest.raises(TypeError):
        processor._parse_windows_size(runner, 4, [{"data_src": "loss", "window_size": []}])
    scalars = processor._collect_scalars([{"data_src": "accuracy", "method_name": "max", "log_name": "best"}],
                                         runner, "train", reserve_prefix=True)
    assert scalars["train/best"] == 49.0 and scalars["train/accuracy"] == 49.0
    assert processor._collect_non_scalars(runner, "val") == {"confusion": [[1]]}
    assert processor._get_iter(runner, 4) == 5 and processor._get_epoch(runner, "train") == 3
    assert processor._get_epoch(runner, "val") == 2
    with pytest.raises(ValueError):
        processor._get_epoch(runner, "test")
    assert processor._get_epoch(_runner(hub, _train_loop={"by_epoch": True}), "val") == 0
