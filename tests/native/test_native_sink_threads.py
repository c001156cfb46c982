"""JsonlSink under several Python threads: every line arrives whole, each thread in order."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from torchkiln._native import JsonlSink


def test_concurrent_writers_and_flushes(tmp_path: Path) -> None:
    path = tmp_path / "threads.jsonl"
    sink = JsonlSink(path, flush_interval_s=0.01, max_buffered=7)

    def writer(tid: int) -> None:
        for i in range(300):
            sink.write(json.dumps({"t": tid, "i": i, "pad": "x" * (i % 50)}))
            if i % 100 == 0:
                sink.flush()  # waits with the GIL released: the other threads keep writing

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sink.close()
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(records) == 1200
    for tid in range(4):
        assert [r["i"] for r in records if r["t"] == tid] == list(range(300))
