"""structlog setup: console lines, log.jsonl with run context, text log, de-duplication."""

from __future__ import annotations

import json
import logging

import pytest
import structlog
from structlog.testing import capture_logs

from torchkiln.errors import ConfigError
from torchkiln.logging import logger as logger_module
from torchkiln.logging.logger import (
    bind_run_context,
    clear_run_context,
    get_logger,
    print_log,
    setup_logging,
    shutdown_logging,
    warn_once,
)


@pytest.fixture(autouse=True)
def _reset_logging():
    yield
    shutdown_logging()
    structlog.contextvars.clear_contextvars()
    structlog.reset_defaults()
    logger_module._seen_warnings.clear()
    logger_module._warned_once.clear()


def _json_lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_files_get_json_with_run_context_and_plain_text(tmp_path, capsys):
    log = setup_logging(tmp_path / "run", tty=False, timestamp="20240101_120000")
    log.info("before context")
    bind_run_context(epoch=1, iter=50, mode="train")
    log.info("Epoch(train) [1][ 50/115]  loss: 0.4321", lr=0.1)
    clear_run_context()
    log.warning("after")
    shutdown_logging()

    records = _json_lines(tmp_path / "run" / "log.jsonl")
    assert [r["event"] for r in records] == ["before context", "Epoch(train) [1][ 50/115]  loss: 0.4321", "after"]
    assert "epoch" not in records[0] and "epoch" not in records[2]
    assert {k: records[1][k] for k in ("epoch", "iter", "mode", "lr", "level")} == {
        "epoch": 1, "iter": 50, "mode": "train", "lr": 0.1, "level": "info"}
    assert records[2]["level"] == "warning" and "timestamp" in records[2]

    text = (tmp_path / "run" / "20240101_120000.log").read_text().splitlines()
    assert [line.split(" - ", 2)[2] for line in text] == [
        "INFO - before context",
        "INFO - Epoch(train) [1][ 50/115]  loss: 0.4321 lr=0.1",  # context is left out
        "WARNING - after",
    ]
    assert text[0].split(" - ")[1] == "torchkiln"
    console = capsys.readouterr().out
    assert [line.split(" - ", 2)[2] for line in console.splitlines()] == [line.split(" - ", 2)[2] for line in text]
    assert "\x1b[" not in console


def test_repeated_warnings_are_dropped(tmp_path):
    log = setup_logging(tmp_path, tty=False, timestamp="t")
    for _ in range(3):
        log.warning("deprecated key 'x'")
    log.warning("another warning")
    log.info("info repeats")
    log.info("info repeats")
    warn_once(log, "once only")
    warn_once(None, "once only")
    shutdown_logging()
    events = [r["event"] for r in _json_lines(tmp_path / "log.jsonl")]
    assert events == ["deprecated key 'x'", "another warning", "info repeats", "info repeats", "once only"]


def test_exceptions_and_stdlib_records_reach_the_files(tmp_path):
    log = setup_logging(tmp_path, tty=False, timestamp="t")
    try:
        raise ZeroDivisionError("boom")
    except ZeroDivisionError:
        log.exception("step failed")
    logging.getLogger("torchkiln.somewhere").warning("from the standard library")
    shutdown_logging()
    records = _json_lines(tmp_path / "log.jsonl")
    assert records[0]["event"] == "step failed" and "ZeroDivisionError: boom" in records[0]["exception"]
    assert records[1]["event"] == "from the standard library" and records[1]["level"] == "warning"
    assert "ZeroDivisionError: boom" in (tmp_path / "t.log").read_text()


def test_other_ranks_write_no_files_and_only_warnings(tmp_path, capsys):
    log = setup_logging(tmp_path / "r1", level="DEBUG", rank=1, tty=False)
    log.info("hidden")
    log.warning("shown")
    assert not (tmp_path / "r1").exists()
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and out[0].startswith("[rank 1] ") and out[0].endswith("WARNING - shown")


def test_tty_console_uses_the_colour_renderer(capsys):
    setup_logging(None, tty=True).info("hello", answer=42)
    out = capsys.readouterr().out
    assert "hello" in out and "\x1b[" in out and "answer" in out


def test_levels(tmp_path, capsys):
    log = setup_logging(None, level="warning", tty=False)
    log.info("dropped")
    log.error("kept")
    assert capsys.readouterr().out.strip().endswith("ERROR - kept")
    with pytest.raises(ConfigError, match="did you mean 'DEBUG'"):
        setup_logging(None, level="DEBG")


def test_capture_logs_sees_run_logger_events():
    log = setup_logging(None, tty=False)
    with capture_logs() as captured:
        log.info("captured", value=3)
        get_logger().warning("also captured")
    assert captured == [
        {"event": "captured", "value": 3, "log_level": "info"},
        {"event": "also captured", "log_level": "warning"},
    ]


def test_get_logger_defaults_to_console(capsys):
    shutdown_logging()
    get_logger().info("default logger")
    assert capsys.readouterr().out.strip().endswith("INFO - default logger")


def test_print_log_targets(capsys):
    setup_logging(None, tty=False)
    print_log("plain print")
    print_log("nothing", logger="silent")
    print_log("to the run logger", logger="current", level=logging.WARNING)

    class Collector:
        def __init__(self):
            self.seen = []

        def error(self, msg):
            self.seen.append(msg)

    collector = Collector()
    print_log("to an object", logger=collector, level="ERROR")
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "plain print"
    assert out[1].endswith("WARNING - to the run logger") and len(out) == 2
    assert collector.seen == ["to an object"]
