"""Per-iteration logging cost, flat in history length; the Rust log buffer against pure Python.

Part 1, the engine's logging path per training iteration, amortised over log intervals:
what ``RuntimeInfoHook`` and ``IterTimerHook`` hand to the message hub each iteration
(a 0-d loss tensor, the learning rate, ``time``, ``data_time``, the ``iter`` info), the
``LoggerHook`` check, and every ``interval`` iterations the ``LogProcessor`` line (reading
the pending tensors), the log record (structlog to ``log.jsonl`` and the text log), the
``scalars.jsonl`` record and the visualizer's local backend. Measured after a history of
1e3 and of 1e6 iterations: with bounded rings the two must cost the same.

Part 2, the log buffer alone: ``torchkiln._native.LogBuffer`` (Rust) against
``PyLogBuffer`` (the pure-Python fallback, deques): updates, window statistics and the
checkpoint state, on a full ring of 1,000 entries.

Part 3, experiment trackers (when torchkiln-mlflow / torchkiln-wandb are installed): one
logged record (the five values ``LoggerHook`` hands the visualizer each log interval) through
a visualizer with ``LocalVisBackend`` alone, and with ``MLflowVisBackend`` (local ``file:``
store) or ``WandbVisBackend`` (``WANDB_MODE=offline``) beside it: the time the training
thread spends in ``add_scalars`` per logged iteration, and the time until the store holds
every record (the tracker's worker thread included), per record. ``--trackers only`` runs
this part alone.

Run ``python bench/logging_cost.py`` (``--markdown`` for tables). Timings never gate tests.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import sys
import tempfile
import timeit
import types
from collections.abc import Callable
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))

INTERVAL = 50
CAPACITY = 1000


# ---------------------------------------------------------------------- part 1: the logging path
def _fake_runner(log_dir: str, hub: Any) -> Any:
    from torchkiln.logging import LogProcessor
    from torchkiln.visualization import build_visualizer

    loop = types.SimpleNamespace(dataloader=range(10**9), max_iters=10**9)
    runner = types.SimpleNamespace(
        epoch=0, iter=0, max_epochs=1, max_iters=10**9, rank=0, experiment_name="bench",
        work_dir=log_dir, log_dir=log_dir, message_hub=hub, train_loop=loop, val_loop=None, test_loop=None,
        log_processor=LogProcessor(window_size=10),
    )
    runner.visualizer = build_visualizer(None, log_dir=log_dir, name="bench")
    return runner


def _prefill(hub: Any, history: int) -> None:
    """``history`` iterations of the four scalar keys, through the hub's public API."""
    import torch

    for i in range(history):
        hub.update_scalars({"train/lr": 0.1, "train/data_time": 0.001, "train/time": 0.01, "train/loss": 1.0 / (i + 1)})
    hub.update_scalar("train/loss", torch.tensor(0.5))
    hub.get_scalar("train/loss").current()


def _iteration_cost(history: int, iters: int, repeat: int) -> tuple[float, float]:
    """Median and best seconds per iteration after ``history`` iterations."""
    import torch

    from torchkiln.hooks.logger_hook import LoggerHook
    from torchkiln.logging import MessageHub
    from torchkiln.logging.logger import setup_logging, shutdown_logging

    MessageHub.reset_instances()
    hub = MessageHub.get_instance(f"bench-{history}", max_length=CAPACITY)
    _prefill(hub, history)
    losses = [torch.tensor(1.0 / (i + 1)) for i in range(iters)]  # the step makes these anyway
    samples = []
    with tempfile.TemporaryDirectory() as tmp, redirect_stdout(io.StringIO()):
        runner = _fake_runner(tmp, hub)
        runner.logger = setup_logging(tmp, tty=False, timestamp="bench")
        hook = LoggerHook(interval=INTERVAL, interval_exp_name=0)
        hook.before_run(runner)
        update_info = hub.update_info
        update_scalars = hub.update_scalars
        update_scalar = hub.update_scalar
        after = hook.after_train_iter
        for _ in range(repeat):
            start = timeit.default_timer()
            for i in range(iters):
                # before_train_iter: RuntimeInfoHook + IterTimerHook
                update_info("iter", runner.iter)
                update_scalars({"train/lr": 0.1})
                update_scalar("train/data_time", 0.001)
                # after_train_iter: RuntimeInfoHook + IterTimerHook + LoggerHook
                update_scalars({"train/loss": losses[i]})
                update_scalar("train/time", 0.01)
                after(runner, i, None, None)
                runner.iter += 1
            samples.append((timeit.default_timer() - start) / iters)
        hook.after_run(runner)
        shutdown_logging()
    samples.sort()
    return samples[len(samples) // 2], samples[0]


# ---------------------------------------------------------------------- part 2: the buffer
def _buffer_ops(cls: Any) -> list[tuple[str, Callable[[], Any], int]]:
    """(operation, callable, calls per sample) on a full ring."""
    buf = cls(CAPACITY)
    for i in range(CAPACITY):
        buf.update("loss", float(i % 97), 1)
    values = {"a": 0.1, "b": 0.2, "c": 0.3, "d": 0.4}
    for key in values:
        for i in range(CAPACITY):
            buf.update(key, float(i), 1)
    return [
        ("update (one key)", lambda: buf.update("loss", 0.5, 1), 20000),
        ("update_many (4 keys)", lambda: buf.update_many(values, 1), 10000),
        ("mean, window 10", lambda: buf.mean("loss", 10), 20000),
        ("mean, window 1000", lambda: buf.mean("loss", 1000), 2000),
        ("median, window 1000", lambda: buf.median("loss", 1000), 500),
        ("global_mean", lambda: buf.global_mean("loss"), 20000),
        ("state_dict (5 keys x 1000)", buf.state_dict, 200),
    ]


def _time(fn: Callable[[], Any], number: int, repeat: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number


# ---------------------------------------------------------------------- part 3: trackers
def _tracker_backends(tmp: str) -> list[tuple[str, list[dict[str, Any]]]]:
    import importlib.util

    local = {"type": "LocalVisBackend"}
    setups = [("LocalVisBackend", [local])]
    if importlib.util.find_spec("torchkiln_mlflow") and importlib.util.find_spec("mlflow"):
        uri = "file:" + os.path.join(tmp, "mlruns")
        setups.append(("+ MLflowVisBackend (file:)", [local, {"type": "MLflowVisBackend", "tracking_uri": uri}]))
    if importlib.util.find_spec("torchkiln_wandb") and importlib.util.find_spec("wandb"):
        os.environ.setdefault("WANDB_MODE", "offline")
        os.environ.setdefault("WANDB_SILENT", "true")
        wandb_cfg = {"type": "WandbVisBackend", "init_kwargs": {"project": "bench", "dir": os.path.join(tmp, "wb")}}
        setups.append(("+ WandbVisBackend (offline)", [local, wandb_cfg]))
    return setups


def _tracker_cost(backends: list[dict[str, Any]], log_dir: str, records: int, repeat: int) -> tuple[float, float]:
    """(training-thread seconds per record, seconds per record until the store holds it), medians."""
    import statistics
    import time

    from torchkiln.visualization import Visualizer, build_visualizer

    caller, total = [], []
    for r in range(repeat):
        Visualizer.reset_instances()
        vis = build_visualizer({"type": "Visualizer", "vis_backends": backends}, log_dir=os.path.join(log_dir, str(r)))
        vis.add_scalars({"loss": 1.0}, step=0)  # opens files and runs outside the timing
        vis.flush()
        start = time.perf_counter()
        for i in range(1, records + 1):
            vis.add_scalars({"loss": 1.0 / i, "lr": 0.1, "time": 0.01, "data_time": 0.001, "memory": 100.0}, step=i)
        mid = time.perf_counter()
        vis.flush()
        end = time.perf_counter()
        vis.close()
        caller.append((mid - start) / records)
        total.append((end - start) / records)
    return statistics.median(caller), statistics.median(total)


def _trackers(records: int, repeat: int, markdown: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        rows = [(name, *_tracker_cost(b, os.path.join(tmp, str(i)), records, repeat))
                for i, (name, b) in enumerate(_tracker_backends(tmp))]
    base = rows[0][1]
    note = f"{records} records of 5 values x {repeat} samples, medians; Python {platform.python_version()}"
    if markdown:
        print(f"<!-- {note} -->")
        print("| visualizer backends | training thread per logged iteration (µs) | vs local | until stored, per record (µs) |")
        print("| --- | ---: | ---: | ---: |")
        for name, caller, total in rows:
            print(f"| {name} | {caller * 1e6:.1f} | {caller / base:.2f}x | {total * 1e6:.1f} |")
    else:
        print(f"tracker cost per logged iteration ({note})")
        for name, caller, total in rows:
            print(f"  {name:<30} training thread {caller * 1e6:9.1f} us ({caller / base:5.2f}x)  "
                  f"until stored {total * 1e6:9.1f} us")


def main(argv: list[str] | None = None) -> int:
    """Run both parts and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", action="store_true", help="print markdown tables")
    parser.add_argument("--iters", type=int, default=2000, help="timed iterations per sample (part 1)")
    parser.add_argument("--repeat", type=int, default=5, help="samples per measurement")
    parser.add_argument("--histories", type=int, nargs="+", default=[1000, 1_000_000], help="history lengths (part 1)")
    parser.add_argument("--trackers", choices=["auto", "only", "off"], default="auto",
                        help="part 3 (installed tracker plugins): with the rest, alone, or not")
    parser.add_argument("--records", type=int, default=500, help="logged records per sample (part 3)")
    args = parser.parse_args(argv)
    if args.trackers == "only":
        _trackers(args.records, args.repeat, args.markdown)
        return 0
    if args.iters % INTERVAL:
        parser.error(f"--iters must be a multiple of the log interval ({INTERVAL})")

    import torch

    torch.set_num_threads(1)
    from torchkiln import _native
    from torchkiln.logging._py_log_buffer import PyLogBuffer

    rows = [(h, *_iteration_cost(h, args.iters, args.repeat)) for h in args.histories]
    base = rows[0][1]
    ops_native = _buffer_ops(_native.LogBuffer)
    ops_python = _buffer_ops(PyLogBuffer)
    buffer_rows = []
    for (name, fn_n, number), (_, fn_p, _) in zip(ops_native, ops_python):
        buffer_rows.append((name, _time(fn_n, number, args.repeat), _time(fn_p, number, args.repeat)))

    note = (f"log interval {INTERVAL}, window 10, ring capacity {CAPACITY}; {args.iters} iterations x "
            f"{args.repeat} samples; Python {platform.python_version()}, torch {torch.__version__}, 1 thread")
    if args.markdown:
        print(f"<!-- {note} -->")
        print("| history before timing (iterations) | per iteration, median (µs) | best (µs) | vs 1e3 |")
        print("| ---: | ---: | ---: | ---: |")
        for history, median, best in rows:
            print(f"| {history:,} | {median * 1e6:.2f} | {best * 1e6:.2f} | {median / base:.2f}x |")
        print()
        print("| log buffer operation (full ring of 1,000) | Rust (µs) | pure Python (µs) | Python / Rust |")
        print("| --- | ---: | ---: | ---: |")
        for name, native, python in buffer_rows:
            print(f"| {name} | {native * 1e6:.3f} | {python * 1e6:.3f} | {python / native:.1f}x |")
    else:
        print(f"per-iteration logging cost ({note})")
        for history, median, best in rows:
            print(f"  history {history:>10,}: median {median * 1e6:8.2f} us  best {best * 1e6:8.2f} us  "
                  f"({median / base:.2f}x of the first)")
        print("log buffer, full ring of 1,000 (best of samples)")
        width = max(len(r[0]) for r in buffer_rows)
        for name, native, python in buffer_rows:
            print(f"  {name.ljust(width)}  rust {native * 1e6:9.3f} us  python {python * 1e6:9.3f} us  "
                  f"python/rust {python / native:6.1f}x")
    if args.trackers == "auto":
        print()
        _trackers(args.records, args.repeat, args.markdown)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
