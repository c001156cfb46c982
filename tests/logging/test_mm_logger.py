"""MMLogger and print_log: MMEngine's logger API on a standard logging.Logger, structlog under it."""

from __future__ import annotations

import json
import logging
import logging.handlers
import unittest

import pytest
import structlog
from kiln_toys import ToyModel, make_loader
from structlog.testing import capture_logs

from torchkiln import Runner
from torchkiln.logging import MMLogger, print_log
from torchkiln.logging import logger as logger_module
from torchkiln.logging import mm_logger as mm_logger_module
from torchkiln.logging.logger import bind_run_context, clear_run_context, setup_logging, shutdown_logging


@pytest.fixture(autouse=True)
def _fresh_loggers():
    saved = MMLogger._instance_dict.copy()
    MMLogger._instance_dict.clear()
    yield
    shutdown_logging()
    for logger in MMLogger._instance_dict.values():
        for handler in logger.handlers:
            handler.close()
    MMLogger._instance_dict.clear()
    MMLogger._instance_dict.update(saved)
    structlog.contextvars.clear_contextvars()
    structlog.reset_defaults()
    logger_module._seen_warnings.clear()


def _lines(text: str) -> list[str]:
    """The part of each line after '<date> <time> - <name> - '."""
    return [line.split(" - ", 2)[2] for line in text.splitlines()]


def test_instances_are_standard_loggers_found_by_name():
    logger = MMLogger.get_instance("det", log_level="DEBUG")
    assert isinstance(logger, logging.Logger)
    assert MMLogger.get_instance("det") is logger and MMLogger.check_instance_created("det")
    assert logger.instance_name == "det" and logger.name == "torchkiln"
    assert logger.parent is None and logger.level == logging.NOTSET  # outside logging's tree
    assert logging.getLogger("torchkiln") is not logger
    assert isinstance(logger.handlers[0], logging.StreamHandler)
    assert logger.handlers[0].level == logging.DEBUG
    with pytest.warns(UserWarning, match="ignores"):
        MMLogger.get_instance("det", log_level="INFO")
    other = MMLogger.get_instance("seg", logger_name="mmseg")
    assert other.name == "mmseg" and MMLogger.get_current_instance() is other
    MMLogger.get_instance("det")  # fetching does not make it current: creating does
    assert MMLogger.get_current_instance() is other


def test_current_instance_before_any_is_a_console_logger(capsys):
    current = MMLogger.get_current_instance()
    assert current.instance_name == "torchkiln" and current.log_file is None
    current.info("hello")
    assert _lines(capsys.readouterr().out) == ["INFO - hello"]


def test_assert_logs_and_ordinary_handlers_capture_records():
    logger = MMLogger.get_instance("captured")
    case = unittest.TestCase()
    with case.assertLogs(logger, "WARNING") as cm:
        logger.warning("disk %s is full", "/tmp")
        logger.info("below the level")
    assert cm.output == ["WARNING:torchkiln:disk /tmp is full"]

    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger.addHandler(Collect())
    logger.error("failed at step %d", 7)
    assert [r.getMessage() for r in records] == ["failed at step 7"]
    assert records[0].pathname == __file__  # the caller, not the logging machinery
    assert records[0].funcName == "test_assert_logs_and_ordinary_handlers_capture_records"


def test_keyword_fields_context_and_capture_logs(tmp_path, capsys):
    log = setup_logging(tmp_path, tty=False, timestamp="t")
    assert isinstance(log, MMLogger)
    bind_run_context(epoch=3)
    log.info("saved %s", "ckpt", path="epoch_3.pth")
    clear_run_context()
    with capture_logs() as captured:
        log.warning("captured", value=1)
    shutdown_logging()
    assert captured == [{"event": "captured", "value": 1, "log_level": "warning"}]
    [record] = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert record["event"] == "saved ckpt" and record["path"] == "epoch_3.pth"
    assert record["epoch"] == 3 and record["level"] == "info"
    assert _lines((tmp_path / "t.log").read_text()) == ["INFO - saved ckpt path=epoch_3.pth"]
    assert _lines(capsys.readouterr().out) == ["INFO - saved ckpt path=epoch_3.pth"]


def test_print_log_targets(capsys, tmp_path):
    print_log("plain")
    print_log("dropped", logger="silent")
    named = MMLogger.get_instance("named", log_file=tmp_path / "named.log")
    print_log("by name", logger="named", level="WARNING")
    print_log("by object", logger=named, level=logging.ERROR)
    MMLogger.get_instance("last")
    print_log("to the current one", logger="current")
    with pytest.raises(ValueError, match="no MMLogger named 'nope'"):
        print_log("x", logger="nope")
    with pytest.raises(TypeError, match="logger must be"):
        print_log("x", logger=dict)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "plain"
    assert _lines("\n".join(out[1:])) == [
        "WARNING - by name",
        "ERROR - by object",
        "INFO - to the current one",
    ]
    assert _lines((tmp_path / "named.log").read_text()) == ["WARNING - by name", "ERROR - by object"]


def test_only_rank_zero_writes_unless_distributed(tmp_path, monkeypatch):
    monkeypatch.setattr(mm_logger_module, "_get_rank", lambda: 1)
    monkeypatch.setattr(mm_logger_module, "_get_world_size", lambda: 2)
    monkeypatch.setattr(mm_logger_module, "_get_device_id", lambda: 1)
    monkeypatch.setattr(mm_logger_module, "_get_host_info", lambda: "me@box")
    quiet = MMLogger.get_instance("r1", log_file=tmp_path / "run.log")
    assert len(quiet.handlers) == 1 and quiet.handlers[0].level == logging.ERROR
    every = MMLogger.get_instance("r1-all", log_file=tmp_path / "run.log", distributed=True)
    every.info("from rank 1")
    assert every.log_file == str(tmp_path / "run_me@box_device1_rank1.log")
    assert "INFO - from rank 1" in (tmp_path / "run_me@box_device1_rank1.log").read_text()
    assert not (tmp_path / "run.log").exists()


def test_file_handler_cfg_and_levels(tmp_path, capsys):
    rotating = MMLogger(
        "rot", log_file=tmp_path / "r.log", file_handler_cfg={"type": "RotatingFileHandler", "maxBytes": 64}
    )
    assert isinstance(rotating.handlers[-1], logging.handlers.RotatingFileHandler)
    with pytest.raises(ValueError, match="not a file handler"):
        MMLogger("bad", log_file=tmp_path / "b.log", file_handler_cfg={"type": "StreamHandler"})
    logger = MMLogger.get_instance("levels")
    logger.setLevel("WARNING")
    logger.info("hidden")
    logger.warning("shown")
    logger.warning("shown")  # the same warning again: printed once
    assert _lines(capsys.readouterr().out) == ["WARNING - shown"]


def _runner(tmp_path, **kw):
    return Runner(
        model=ToyModel(),
        work_dir=str(tmp_path),
        train_dataloader=make_loader(8, 2),
        train_cfg=dict(by_epoch=True, max_epochs=1),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1)),
        default_hooks=dict(checkpoint=None, progress_bar=None),
        experiment_name="exp",
        **kw,
    )


def test_runner_logger_is_a_logging_logger_and_files_keep_working(tmp_path):
    runner = _runner(tmp_path)
    assert isinstance(runner.logger, logging.Logger)
    assert MMLogger.get_current_instance() is runner.logger
    assert runner.logger.instance_name == "exp"
    case = unittest.TestCase()
    with case.assertLogs(runner.logger, "INFO") as cm:
        runner.train()
        print_log("note from a plugin", logger="current")
    messages = [r.getMessage() for r in cm.records]
    assert any(m.startswith("Epoch(train) [1][4/4]") for m in messages)
    assert messages[-1] == "note from a plugin"
    runner.logger.info("after the run")
    shutdown_logging()
    [log_jsonl] = tmp_path.glob("*/log.jsonl")
    events = [json.loads(line)["event"] for line in log_jsonl.read_text().splitlines()]
    assert "after the run" in events and "note from a plugin" not in events  # assertLogs took it


def test_mmengine_names_the_default_instance():
    root = MMLogger.get_current_instance()
    assert MMLogger.get_instance("mmengine") is root  # MMEngine's name for its default logger
    assert MMLogger.check_instance_created("mmengine")
    MMLogger._instance_dict.clear()
    made = MMLogger.get_instance("mmengine", log_level="WARNING")
    assert made.instance_name == "torchkiln" and MMLogger.get_current_instance() is made


def test_process_facts_are_importable_from_the_logger_module():
    from torchkiln.logging.logger import _get_device_id, _get_rank, _get_world_size

    assert _get_device_id is mm_logger_module._get_device_id
    assert (_get_rank(), _get_world_size()) == (0, 1)
