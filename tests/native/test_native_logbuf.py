"""``LogBuffer`` and ``JsonlSink`` of ``torchkiln._native``."""

from __future__ import annotations

import json
import math
import statistics
import time
from pathlib import Path

import pytest

from torchkiln import _native as native


def test_window_statistics() -> None:
    buf = native.LogBuffer(10)
    for v in [5.0, 1.0, 4.0, 2.0, 3.0]:
        buf.update("loss", v)
    assert buf.current("loss") == 3.0
    assert buf.mean("loss") == pytest.approx(3.0)
    assert buf.mean("loss", 2) == pytest.approx(2.5)
    assert buf.min("loss") == 1.0
    assert buf.min("loss", 3) == 2.0
    assert buf.max("loss", 3) == 4.0
    assert buf.median("loss") == 3.0
    assert buf.median("loss", 4) == 2.5
    assert buf.mean("loss", 1000) == buf.mean("loss")
    with pytest.raises(ValueError, match="window"):
        buf.mean("loss", 0)
    with pytest.raises(ValueError, match="window"):
        buf.max("loss", -2)


def test_missing_keys_raise_key_error() -> None:
    buf = native.LogBuffer()
    assert buf.capacity == 1024
    for method in (buf.current, buf.mean, buf.min, buf.max, buf.median, buf.global_mean, buf.count, buf.data):
        with pytest.raises(KeyError):
            method("nope")
    assert "nope" not in buf
    assert 3 not in buf
    assert len(buf) == 0


def test_capacity_wrap_around_keeps_global_stats() -> None:
    buf = native.LogBuffer(3)
    for i in range(1, 11):
        buf.update("x", float(i))
    assert buf.data("x") == ([8.0, 9.0, 10.0], [1, 1, 1])
    assert buf.mean("x") == pytest.approx(9.0)
    assert buf.min("x") == 8.0
    assert buf.global_mean("x") == pytest.approx(5.5)
    assert buf.count("x") == 10


def test_a_value_with_a_count_is_a_sum_over_that_many_samples() -> None:
    buf = native.LogBuffer(2)
    buf.update("acc", 2.0, 4)  # 4 samples summing to 2
    buf.update("acc", 1.0, 1)
    buf.update("acc", 3.0, 5)
    assert buf.mean("acc") == pytest.approx(4.0 / 6.0)  # window: (1 + 3) over 6 samples
    assert buf.global_mean("acc") == pytest.approx(0.6)  # (2 + 1 + 3) over 10
    assert buf.count("acc") == 10
    assert buf.median("acc") == 2.0  # counts do not weight the median
    zero = native.LogBuffer(4)
    zero.update("z", 1.0, 0)
    assert math.isnan(zero.mean("z"))
    assert math.isnan(zero.global_mean("z"))


def test_update_many_keys_len_contains() -> None:
    buf = native.LogBuffer(4)
    buf.update_many({"train/loss": 0.5, "train/lr": 0.1}, count=2)
    buf.update_many({"train/loss": 1.5})
    assert buf.keys() == ["train/loss", "train/lr"]
    assert "train/lr" in buf
    assert len(buf) == 2
    assert buf.mean("train/loss") == pytest.approx((0.5 + 1.5) / 3)  # sums over 2 + 1 samples
    assert buf.count("train/lr") == 2
    with pytest.raises(TypeError):
        buf.update_many({"k": "not a number"})


def test_matches_a_reference_on_random_data() -> None:
    import random

    rng = random.Random(0)
    cap = 7
    buf = native.LogBuffer(cap)
    history: list[tuple[float, int]] = []
    for _ in range(50):
        v, c = rng.uniform(-5, 5), rng.randint(1, 4)
        buf.update("k", v, c)
        history.append((v, c))
    kept = history[-cap:]
    for window in (None, 1, 3, cap, 100):
        part = kept if window is None else kept[-window:]
        values = [v for v, _ in part]
        assert buf.mean("k", window) == pytest.approx(sum(v for v, _ in part) / sum(c for _, c in part))
        assert buf.min("k", window) == min(values)
        assert buf.max("k", window) == max(values)
        assert buf.median("k", window) == pytest.approx(statistics.median(values))
    assert buf.global_mean("k") == pytest.approx(sum(v for v, _ in history) / sum(c for _, c in history))


def test_state_round_trip_is_bounded() -> None:
    buf = native.LogBuffer(4)
    for i in range(100):
        buf.update("a", float(i), 2)
    buf.update("b", 7.0)
    state = buf.state_dict()
    assert state["capacity"] == 4
    assert state["keys"]["a"] == {"values": [96.0, 97.0, 98.0, 99.0], "counts": [2, 2, 2, 2], "global_sum": 4950.0, "global_count": 200}
    json.dumps(state)  # plain data
    other = native.LogBuffer(4)
    other.update("stale", 1.0)
    other.load_state_dict(state)
    assert other.keys() == ["a", "b"]
    assert other.state_dict() == state
    assert other.global_mean("a") == pytest.approx(4950 / 200)
    small = native.LogBuffer(2)
    small.load_state_dict(state)
    assert small.data("a") == ([98.0, 99.0], [2, 2])
    assert small.key_state_dict("b") == state["keys"]["b"]
    with pytest.raises(ValueError, match="values but"):
        small.load_key_state_dict("x", {"values": [1.0], "counts": [], "global_sum": 0.0, "global_count": 0})
    with pytest.raises(ValueError, match="missing 'keys'"):
        small.load_state_dict({})
    assert small.keys() == ["a", "b"]  # a failed load leaves the buffer as it was


def test_required_interface_of_the_python_side() -> None:
    required = (
        "update", "update_many", "current", "mean", "min", "max", "median", "global_mean", "count",
        "keys", "data", "key_state_dict", "load_key_state_dict", "state_dict", "load_state_dict",
    )
    assert all(hasattr(native.LogBuffer, name) for name in required)
    with pytest.raises(ValueError):
        native.LogBuffer(0)


# ---------------------------------------------------------------------------- JsonlSink


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_sink_flush_and_close_contents(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    sink = native.JsonlSink(str(path), flush_interval_s=3600.0, max_buffered=100_000)
    for i in range(300):
        sink.write(json.dumps({"iter": i, "loss": 1.0 / (i + 1)}))
    sink.flush()
    records = _lines(path)
    assert [r["iter"] for r in records] == list(range(300))
    sink.write('{"final": true}')
    assert not sink.closed
    sink.close()
    sink.close()  # idempotent
    assert sink.closed
    assert _lines(path)[-1] == {"final": True}
    assert len(_lines(path)) == 301
    with pytest.raises(ValueError, match="closed"):
        sink.write("{}")
    sink.flush()  # a no-op once closed


def test_sink_writes_in_background(tmp_path: Path) -> None:
    path = tmp_path / "bg.jsonl"
    with native.JsonlSink(path, flush_interval_s=0.02) as sink:
        sink.write('{"a": 1}')
        deadline = time.monotonic() + 5
        while not path.read_text() and time.monotonic() < deadline:
            time.sleep(0.005)
        assert _lines(path) == [{"a": 1}]
    assert sink.closed

    full = tmp_path / "full.jsonl"
    sink = native.JsonlSink(full, flush_interval_s=3600.0, max_buffered=5)
    for i in range(5):
        sink.write(str(i))
    deadline = time.monotonic() + 5
    while len(full.read_text().splitlines()) < 5 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert full.read_text() == "0\n1\n2\n3\n4\n"
    sink.close()


def test_sink_appends_and_validates(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text('{"old": 1}\n')
    sink = native.JsonlSink(path)
    assert sink.path == str(path)
    with pytest.raises(ValueError, match="newline"):
        sink.write('{"a":\n1}')
    sink.write('{"new": 2}')
    sink.close()
    assert _lines(path) == [{"old": 1}, {"new": 2}]
    with pytest.raises(OSError):
        native.JsonlSink(tmp_path / "missing_dir" / "x.jsonl")
    with pytest.raises(ValueError):
        native.JsonlSink(tmp_path / "b.jsonl", flush_interval_s=0)
    with pytest.raises(ValueError):
        native.JsonlSink(tmp_path / "b.jsonl", max_buffered=0)


def test_write_does_not_wait_for_the_disk(tmp_path: Path) -> None:
    # Not a timing assertion: many writes with a long interval leave the file untouched
    # until flush, so they were only buffered.
    path = tmp_path / "buffered.jsonl"
    sink = native.JsonlSink(path, flush_interval_s=3600.0, max_buffered=1_000_000)
    for i in range(2000):
        sink.write(f'{{"i": {i}}}')
    assert path.read_text() == ""
    sink.close()
    assert len(path.read_text().splitlines()) == 2000


def test_negative_counts_are_rejected_and_the_count_never_wraps() -> None:
    buf = native.LogBuffer(4)
    with pytest.raises(ValueError, match="count must be a non-negative int, got -1"):
        buf.update("x", 1.0, -1)
    with pytest.raises(ValueError, match="non-negative"):
        buf.update_many({"x": 1.0, "y": 2.0}, -3)
    assert "x" not in buf and "y" not in buf  # nothing recorded
    buf.update("x", 1.0, 2**62)
    buf.update("x", 1.0, 2**62)
    assert buf.count("x") == 2**63 - 1
    assert buf.global_mean("x") > 0 and buf.mean("x") > 0
    with pytest.raises(ValueError, match="negative count"):
        buf.load_key_state_dict("z", {"values": [1.0], "counts": [-1], "global_sum": 0.0, "global_count": 0})


@pytest.mark.parametrize("interval", [1e20, 1e300, float("inf"), float("nan"), 0.0, -1.0])
def test_sink_rejects_intervals_a_duration_cannot_hold(tmp_path: Path, interval: float) -> None:
    """A ValueError, never a PanicException (a BaseException ``except Exception`` misses)."""
    with pytest.raises(ValueError, match="flush_interval_s must be a positive number"):
        native.JsonlSink(tmp_path / "x.jsonl", flush_interval_s=interval)
    with native.JsonlSink(tmp_path / "y.jsonl", flush_interval_s=1e9) as sink:  # long but valid
        sink.write("{}")
    assert (tmp_path / "y.jsonl").read_text() == "{}\n"
