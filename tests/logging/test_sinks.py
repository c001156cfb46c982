"""JSON-lines writers on the Rust sink: records, flush_all, close_all, the Python fallback."""

from __future__ import annotations

import json
import math

import pytest

from torchkiln.logging import sinks
from torchkiln.logging.sinks import JsonlWriter, close_all, flush_all, open_writers, register_flushable, to_jsonable


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_records_reach_the_file_on_flush_and_close(tmp_path):
    path = tmp_path / "deep" / "scalars.jsonl"
    writer = JsonlWriter(path, flush_interval_s=3600)
    assert type(writer._sink).__module__ == "torchkiln._native"
    writer.write({"step": 1, "loss": 0.5, "note": "multi\nline"})
    writer.write({"step": 2, "loss": float("nan"), "inf": -math.inf})
    writer.flush()
    assert _lines(path) == [
        {"step": 1, "loss": 0.5, "note": "multi\nline"},
        {"step": 2, "loss": "nan", "inf": "-inf"},
    ]
    writer.write({"step": 3})
    writer.close()
    writer.close()
    assert writer.closed and _lines(path)[-1] == {"step": 3}
    with pytest.raises(ValueError, match="closed"):
        writer.write({"step": 4})


def test_flush_all_reaches_every_writer_and_flushable(tmp_path):
    a = JsonlWriter(tmp_path / "a.jsonl", flush_interval_s=3600)
    b = JsonlWriter(tmp_path / "b.jsonl", flush_interval_s=3600)
    flushed = []

    class Flushable:
        def flush(self):
            flushed.append(True)

    class Broken:
        def flush(self):
            raise OSError("disk gone")

    keep = [Flushable(), Broken()]
    for obj in keep:
        register_flushable(obj)
    a.write({"a": 1})
    b.write({"b": 2})
    flush_all()  # a failing flushable is reported, the others still flush
    assert _lines(tmp_path / "a.jsonl") == [{"a": 1}] and _lines(tmp_path / "b.jsonl") == [{"b": 2}]
    assert flushed == [True]
    assert a in open_writers() and b in open_writers()
    b.write({"b": 3})
    close_all()
    assert a.closed and b.closed and _lines(tmp_path / "b.jsonl")[-1] == {"b": 3}
    for obj in keep:
        sinks.unregister_flushable(obj)


def test_tensors_become_numbers():
    import torch

    assert to_jsonable({"t": torch.tensor(0.25), "v": torch.tensor([1, 2]), 3: (1, None)}) == {
        "t": 0.25, "v": [1, 2], "3": [1, None]}
    assert to_jsonable(object()).startswith("<object")


def test_python_fallback_has_the_same_behaviour(tmp_path, monkeypatch):
    monkeypatch.setattr(sinks, "_sink_class", lambda: sinks._PyJsonlSink)
    writer = JsonlWriter(tmp_path / "py.jsonl")
    assert isinstance(writer._sink, sinks._PyJsonlSink)
    writer.write({"x": 1})
    with pytest.raises(ValueError, match="newline"):
        writer.write_line("{}\n{}")
    flush_all()
    assert _lines(tmp_path / "py.jsonl") == [{"x": 1}]
    writer.close()
    with pytest.raises(ValueError, match="closed"):
        writer.write({"x": 2})
