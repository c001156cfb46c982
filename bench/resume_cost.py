"""Time from ``runner.train()`` to the first trained batch when resuming at iteration N.

An iteration-based run (``IterBasedTrainLoop`` with an ``InfiniteSampler`` over a 50,000
sample in-memory dataset, batch 32, a small MLP, momentum SGD and a scheduler) is resumed
from checkpoints at iterations 10, 1,000 and 10,000. The checkpoints are made cheaply: the
run trains 10 iterations for real, and copies of its checkpoint say they were taken at the
other iterations (position, counters and data order all follow ``meta``/``dataloader``).

Columns:

- ``resume -> first batch``: ``runner.train()`` until the first training iteration after the
  resume has finished (loading the checkpoint, positioning the sampler, building the data
  iterator, one step); the median of ``--repeat`` runs, after one warm-up run;
- ``replaying (estimate)``: the time to draw the N consumed batches from the same
  DataLoader, which is what an engine that skips by iterating over the data would add.

The first column must stay flat as N grows; the second grows linearly. Run
``python bench/resume_cost.py`` (``--markdown`` for a table to paste into
docs/benchmarks.md). Timings never gate tests.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TORCHKILN_DISABLE_PLUGIN_AUTOLOAD", "1")

import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import TensorDataset  # noqa: E402

from torchkiln.hooks.hook import Hook  # noqa: E402
from torchkiln.logging import MessageHub  # noqa: E402
from torchkiln.model import BaseModel  # noqa: E402
from torchkiln.runner import Runner  # noqa: E402

DATASET_SIZE = 50_000
BATCH_SIZE = 32
POSITIONS = (10, 1_000, 10_000)


class _Mlp(BaseModel):
    """32 -> 64 -> 10, cross-entropy."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, inputs: torch.Tensor, labels: torch.Tensor | None = None, mode: str = "tensor") -> Any:
        logits = self.net(inputs)
        if mode == "loss":
            return {"loss": nn.functional.cross_entropy(logits, labels)}
        return logits


class _FirstBatch(Hook):
    """Records when the first training iteration of this run has finished."""

    priority = "LOWEST"

    def __init__(self) -> None:
        self.done_at: float | None = None

    def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        if self.done_at is None:
            self.done_at = time.perf_counter()


_DATA: TensorDataset | None = None


def _dataset() -> TensorDataset:
    global _DATA
    if _DATA is None:
        g = torch.Generator().manual_seed(0)
        _DATA = TensorDataset(torch.randn(DATASET_SIZE, 32, generator=g), torch.randint(0, 10, (DATASET_SIZE,), generator=g))
    return _DATA


def _runner(work_dir: str, max_iters: int, resume: Any = False, checkpoint_every: int = -1) -> Runner:
    MessageHub.reset_instances()
    return Runner(
        model=_Mlp(),
        work_dir=work_dir,
        train_dataloader={
            "dataset": _dataset(), "batch_size": BATCH_SIZE, "num_workers": 0,
            "sampler": {"type": "InfiniteSampler", "shuffle": True},
        },
        train_cfg={"by_epoch": False, "max_iters": max_iters},
        optim_wrapper={"optimizer": {"type": "SGD", "lr": 0.01, "momentum": 0.9}},
        param_scheduler=[{"type": "CosineAnnealingLR", "by_epoch": False, "T_max": 20_000}],
        default_hooks={
            "logger": {"type": "LoggerHook", "interval": 1_000_000},
            "checkpoint": {"type": "CheckpointHook", "by_epoch": False, "interval": checkpoint_every},
        },
        randomness={"seed": 0},
        resume=resume,
        log_level="WARNING",
    )


def _make_checkpoints(folder: str) -> dict[int, str]:
    """Train 10 iterations for real; copies of that checkpoint claim the other positions."""
    base_dir = os.path.join(folder, "base")
    _runner(base_dir, max_iters=10, checkpoint_every=10).train()
    base = torch.load(os.path.join(base_dir, "iter_10.pth"), weights_only=True)
    paths = {}
    for n in POSITIONS:
        ckpt = dict(base)
        ckpt["meta"] = dict(base["meta"], iter=n, epoch_iter=n)
        ckpt["meta"].pop("checkpointer", None)
        ckpt["dataloader"] = dict(base["dataloader"], batches=n)
        path = os.path.join(folder, f"at_{n}.pth")
        torch.save(ckpt, path)
        paths[n] = path
    return paths


def _time_resume(folder: str, path: str, n: int) -> float:
    runner = _runner(os.path.join(folder, f"resume_{n}_{time.monotonic_ns()}"), max_iters=n + 1, resume=path)
    first = _FirstBatch()
    runner.register_hook(first)
    start = time.perf_counter()
    runner.train()
    assert runner.iter == n + 1 and first.done_at is not None
    return first.done_at - start


def _time_replay(n: int) -> float:
    """Draw ``n`` batches from a fresh DataLoader over the same data (what replaying costs)."""
    runner = _runner(tempfile.mkdtemp(), max_iters=1)
    loader = runner.train_dataloader
    start = time.perf_counter()
    for _ in itertools.islice(iter(loader), n):
        pass
    return time.perf_counter() - start


def measure(repeat: int = 5) -> list[dict[str, Any]]:
    """One row per resume position: median resume time and the replay estimate (seconds)."""
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as folder:
        paths = _make_checkpoints(folder)
        _time_resume(folder, paths[POSITIONS[0]], POSITIONS[0])  # warm-up
        rows = []
        for n in POSITIONS:
            times = [_time_resume(folder, paths[n], n) for _ in range(repeat)]
            rows.append({"n": n, "resume_s": statistics.median(times), "min_s": min(times), "replay_s": _time_replay(n)})
    return rows


def _table(rows: list[dict[str, Any]], markdown: bool) -> str:
    head = ["resume at iteration", "resume -> first batch (median)", "min", "replaying (estimate)"]
    body = [
        [f"{r['n']:,}", f"{r['resume_s'] * 1000:.1f} ms", f"{r['min_s'] * 1000:.1f} ms", f"{r['replay_s'] * 1000:.0f} ms"]
        for r in rows
    ]
    flat = max(r["resume_s"] for r in rows) / min(r["resume_s"] for r in rows)
    note = (
        f"slowest / fastest resume: {flat:.2f}x  (python {platform.python_version()}, torch {torch.__version__}, "
        f"{platform.machine()}, 1 thread; dataset {DATASET_SIZE:,} samples, batch {BATCH_SIZE})"
    )
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(row) + " |" for row in body]
        return "\n".join(lines) + f"\n\n{note}\n"
    widths = [max(len(h), *(len(row[i]) for row in body)) for i, h in enumerate(head)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in body]
    return "\n".join(lines) + f"\n{note}\n"


def main(argv: list[str] | None = None) -> int:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("--repeat", type=int, default=5, help="timed resumes per position (median reported)")
    args = parser.parse_args(argv)
    sys.stdout.write(_table(measure(args.repeat), args.markdown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
