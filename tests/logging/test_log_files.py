"""log.jsonl through the background sink: run context from the context source, flushing."""

from __future__ import annotations

import io
import json
import sys

import pytest
import structlog

from torchkiln.logging import flush_all
from torchkiln.logging import logger as logger_module
from torchkiln.logging.logger import bind_run_context, set_run_context_source, setup_logging, shutdown_logging


@pytest.fixture(autouse=True)
def _reset_logging():
    yield
    set_run_context_source(None)
    shutdown_logging()
    structlog.contextvars.clear_contextvars()
    structlog.reset_defaults()
    logger_module._seen_warnings.clear()


def _records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_log_jsonl_is_written_by_the_sink_and_flushed_on_demand(tmp_path):
    log = setup_logging(tmp_path, tty=False, timestamp="t")
    handler = next(h for h in logger_module._handlers if isinstance(h, logger_module._JsonlHandler))
    assert type(handler.writer._sink).__module__ == "torchkiln._native"
    log.info("first")
    flush_all()  # the signal path's call: records are on disk, logging goes on
    assert [r["event"] for r in _records(tmp_path / "log.jsonl")] == ["first"]
    log.info("second")
    shutdown_logging()
    assert [r["event"] for r in _records(tmp_path / "log.jsonl")] == ["first", "second"]
    assert handler.writer.closed


def test_context_source_fills_epoch_iter_mode_and_bound_values_win(tmp_path):
    state = {"epoch": 2, "iter": 130, "mode": "train"}
    calls = []

    def source():
        calls.append(1)
        return dict(state)

    set_run_context_source(source)
    log = setup_logging(tmp_path, tty=False, timestamp="t")
    log.info("in training")
    state.update(mode="val", iter=150)
    bind_run_context(epoch=9)
    log.info("in validation")
    set_run_context_source(lambda: 1 / 0)  # a broken source never loses a record
    log.info("no context")
    shutdown_logging()
    first, second, third = _records(tmp_path / "log.jsonl")
    assert {k: first[k] for k in ("epoch", "iter", "mode")} == {"epoch": 2, "iter": 130, "mode": "train"}
    assert {k: second[k] for k in ("epoch", "iter", "mode")} == {"epoch": 9, "iter": 150, "mode": "val"}
    assert third["event"] == "no context" and "iter" not in third
    assert len(calls) == 2  # read once per record, and only for the JSON file
    text = (tmp_path / "t.log").read_text()
    assert "iter=" not in text and "mode=" not in text


def test_console_follows_the_current_stdout(monkeypatch):
    log = setup_logging(None, tty=False)
    redirected = io.StringIO()
    monkeypatch.setattr(sys, "stdout", redirected)  # what a progress bar's live display does
    log.info("above the bar")
    assert redirected.getvalue().rstrip().endswith("INFO - above the bar")
