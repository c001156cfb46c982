"""Time a training step of the quickstart on 1 process and on 2 (DDP, CPU, gloo).

Each case is a real ``torchkiln train configs/quickstart_iter.yaml --nproc N`` run (N = 1
trains in the process itself, N = 2 goes through torchrun and DDP). A timing hook on every
rank records, after ``--warmup`` iterations:

- ``step``: ``before_train_iter`` to ``after_train_iter`` (forward, backward with the
  gradient all-reduce, optimizer step, hooks);
- ``iter``: ``after_train_iter`` to the next one (the step plus fetching the next batch).

Cases: 1 x 32 (one process, batch 32), 2 x 16 (the same global batch split over two
processes) and 2 x 32 (twice the global batch). ``samples/s`` is the global batch divided
by the median iteration time. Times are medians. For reference, the same model trained by a
hand-written loop (plain ``DistributedDataParallel``, random batches from tensors, no data
loader) gives the ``torch DDP loop`` step time of each case. On a machine with fewer free cores than processes the 2-process
numbers measure contention, not scaling; the table says how many cores there were.

Run ``python bench/ddp_step.py`` (``--markdown`` for a table for docs/distributed.md).
Timings never gate tests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "quickstart_iter.yaml"
CASES = ((1, 32), (2, 16), (2, 32))


class StepTimer:
    """A hook (loaded by the timed runs as ``ddp_step.StepTimer``) that writes per-rank timings."""

    priority = "LOWEST"

    def __init__(self, warmup: int = 10) -> None:
        self.warmup = warmup
        self.steps: list[float] = []
        self.iters: list[float] = []
        self._start = 0.0
        self._last_end: float | None = None

    def before_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None) -> None:
        self._start = time.perf_counter()

    def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        end = time.perf_counter()
        if runner.iter >= self.warmup:
            self.steps.append(end - self._start)
            if self._last_end is not None:
                self.iters.append(end - self._last_end)
        self._last_end = end

    def after_train(self, runner: Any) -> None:
        path = os.path.join(runner.work_dir, f"timing_rank{runner.rank}.json")
        with open(path, "w", encoding="utf-8") as fh:
            json.dump({"steps": self.steps, "iters": self.iters, "world_size": runner.world_size}, fh)


def _run_case(nproc: int, batch: int, iters: int, warmup: int, work_root: str) -> dict[str, Any]:
    work_dir = os.path.join(work_root, f"n{nproc}_b{batch}")
    options = [
        f"train_cfg.max_iters={iters}",
        f"train_cfg.val_interval={iters * 10}",
        f"+train_cfg.val_begin={iters * 10}",
        f"train_dataloader.batch_size={batch}",
        "default_hooks.checkpoint=null",
        "default_hooks.logger.interval=100000",
        "randomness.deterministic=false",
        f"+custom_hooks=[{{type: ddp_step.StepTimer, warmup: {warmup}}}]",
    ]
    cmd = [sys.executable, "-m", "torchkiln", "train", str(CONFIG), "--work-dir", work_dir, "--nproc", str(nproc),
           "--cfg-options", *options]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "bench"), env.get("PYTHONPATH", "")) if p)
    env.setdefault("OMP_NUM_THREADS", "1")
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"case {nproc} x {batch} failed:\n{proc.stderr[-4000:]}")
    timings = [json.loads(Path(work_dir, f"timing_rank{r}.json").read_text()) for r in range(nproc)]
    # A DDP step ends together on every rank; the slowest rank is the step time.
    steps = [max(values) for values in zip(*(t["steps"] for t in timings))]
    iters_ = [max(values) for values in zip(*(t["iters"] for t in timings))]
    return {
        "nproc": nproc,
        "batch": batch,
        "global_batch": nproc * batch,
        "step_ms": 1000 * statistics.median(steps),
        "iter_ms": 1000 * statistics.median(iters_),
        "samples_per_s": nproc * batch / statistics.median(iters_),
        "measured": len(steps),
    }


def _raw_worker(batch: int, iters: int, warmup: int, out: str) -> None:
    """A hand-written DDP loop (torch only) on the same model and data: the reference."""
    import torch
    import torch.distributed as dist
    import torch.nn.functional as F
    from torch import nn

    from torchkiln.data import DigitsDataset

    torch.set_num_threads(1)
    distributed = "RANK" in os.environ
    if distributed:
        dist.init_process_group("gloo")
    rank = dist.get_rank() if distributed else 0
    world = dist.get_world_size() if distributed else 1
    torch.manual_seed(0)
    model: nn.Module = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))
    if distributed:
        model = nn.parallel.DistributedDataParallel(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    data = DigitsDataset(split="train")
    xs = torch.stack([torch.as_tensor(data[i][0]).float().reshape(-1) for i in range(len(data))])
    ys = torch.tensor([int(data[i][1]) for i in range(len(data))])
    gen = torch.Generator().manual_seed(rank)
    steps = []
    for step in range(iters):
        index = torch.randint(0, len(xs), (batch,), generator=gen)
        start = time.perf_counter()
        loss = F.cross_entropy(model(xs[index]), ys[index])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if step >= warmup:
            steps.append(time.perf_counter() - start)
    with open(f"{out}.rank{rank}.json", "w", encoding="utf-8") as fh:
        json.dump({"steps": steps, "world_size": world}, fh)
    if distributed:
        dist.destroy_process_group()


def _run_raw(nproc: int, batch: int, iters: int, warmup: int, work_root: str) -> dict[str, Any]:
    out = os.path.join(work_root, f"raw_n{nproc}_b{batch}")
    worker = [str(Path(__file__).resolve()), "--raw-worker", "--batch", str(batch), "--iters", str(iters),
              "--warmup", str(warmup), "--out", out]
    if nproc == 1:
        cmd = [sys.executable, *worker]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc), "--standalone", *worker]
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"raw case {nproc} x {batch} failed:\n{proc.stderr[-4000:]}")
    timings = [json.loads(Path(f"{out}.rank{r}.json").read_text()) for r in range(nproc)]
    steps = [max(values) for values in zip(*(t["steps"] for t in timings))]
    return {"nproc": nproc, "batch": batch, "step_ms": 1000 * statistics.median(steps)}


def _table(rows: list[dict[str, Any]], markdown: bool) -> str:
    base = rows[0]["samples_per_s"]
    header = ["processes x batch", "global batch", "step ms", "torch DDP loop step ms", "iter ms", "samples/s",
              "vs 1 process"]
    lines = []
    for row in rows:
        lines.append([
            f"{row['nproc']} x {row['batch']}",
            str(row["global_batch"]),
            f"{row['step_ms']:.2f}",
            f"{row['raw_step_ms']:.2f}",
            f"{row['iter_ms']:.2f}",
            f"{row['samples_per_s']:.0f}",
            f"{row['samples_per_s'] / base:.2f}x",
        ])
    if markdown:
        out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        out += ["| " + " | ".join(cells) + " |" for cells in lines]
        return "\n".join(out)
    widths = [max(len(h), *(len(c[i]) for c in lines)) for i, h in enumerate(header)]
    out = ["  ".join(h.rjust(w) for h, w in zip(header, widths))]
    out += ["  ".join(c.rjust(w) for c, w in zip(cells, widths)) for cells in lines]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """Run every case and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=120, help="training iterations per case")
    parser.add_argument("--warmup", type=int, default=20, help="iterations left out of the timings")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("--raw-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=32, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.raw_worker:
        _raw_worker(args.batch, args.iters, args.warmup, args.out)
        return 0
    if args.iters <= args.warmup + 1:
        parser.error("--iters must exceed --warmup + 1")
    with tempfile.TemporaryDirectory(prefix="kiln_ddp_bench_") as work_root:
        rows = [_run_case(n, b, args.iters, args.warmup, work_root) for n, b in CASES]
        raw = {(n, b): _run_raw(n, b, args.iters, args.warmup, work_root) for n, b in CASES}
    for row in rows:
        row["raw_step_ms"] = raw[(row["nproc"], row["batch"])]["step_ms"]
    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(
        f"quickstart (DigitsMLP 64-128-64-10), CPU, gloo, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '1')}; "
        f"torch {torch.__version__}, Python {platform.python_version()}, {cores} cores; "
        f"{args.iters - args.warmup} timed iterations after {args.warmup} warm-up"
    )
    print()
    print(_table(rows, args.markdown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
