"""Engine overhead per training step against a hand-written PyTorch loop.

A tiny MLP on the CPU (one thread, pre-batched data, batch 32), one epoch of 1,000 and of
4,000 steps; the per-step cost is the slope between the two, so fixed start-up costs (model
build, hook registration, the final checkpoint) cancel out. Variants: a raw loop, the
torchkiln Runner with every default hook on (logger every 50 iterations, checkpoint at the
end, a parameter scheduler, timer, sampler seed, runtime info), and, when installed,
MMEngine's Runner, Lightning's Trainer and Ignite's trainer on the same model and data.

    python bench/overhead.py [--markdown] [--rounds 7] [--steps 1000 4000] [--instructions 1000 2000]

``--instructions`` adds a count of machine instructions per step (valgrind's callgrind), which
does not depend on what else the machine is doing; wall-clock numbers on a shared machine do.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import logging
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TORCHKILN_DISABLE_PLUGIN_AUTOLOAD", "1")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

torch.set_num_threads(1)

IN, HIDDEN, OUT, BATCH = 32, 64, 10, 32


class PreBatched(list):
    """Pre-built batches, with the attributes engines look for on a DataLoader (MMEngine's
    loops read ``dataloader.dataset``; seed hooks look for ``sampler.set_epoch``)."""

    sampler = SimpleNamespace(set_epoch=lambda epoch: None)
    batch_sampler = SimpleNamespace(sampler=sampler)

    @property
    def dataset(self) -> PreBatched:
        return self


def make_batches(steps: int) -> PreBatched:
    """``steps`` pre-built (inputs, labels) batches; a few distinct tensors reused."""
    g = torch.Generator().manual_seed(0)
    pool = [(torch.randn(BATCH, IN, generator=g), torch.randint(0, OUT, (BATCH,), generator=g)) for _ in range(16)]
    return PreBatched(pool[i % len(pool)] for i in range(steps))


def make_mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(IN, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, OUT))


def run_raw(batches: list) -> None:
    model = make_mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    for x, y in batches:
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad()


_RUN_IDS = itertools.count()


def _run_mmengine_style(batches: list, base_model: type, runner_cls: type) -> None:
    """One epoch through an MMEngine-style Runner (torchkiln's or MMEngine's own)."""

    class Net(base_model):
        def __init__(self) -> None:
            super().__init__()
            self.mlp = make_mlp()

        def forward(self, inputs, labels=None, mode="tensor"):
            logits = self.mlp(inputs)
            if mode == "loss":
                return {"loss": F.cross_entropy(logits, labels)}
            return logits

    with tempfile.TemporaryDirectory() as work_dir, contextlib.redirect_stdout(io.StringIO()):
        runner = runner_cls(
            model=Net(),
            work_dir=work_dir,
            train_dataloader=batches,
            train_cfg=dict(by_epoch=True, max_epochs=1),
            optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.01)),
            param_scheduler=[dict(type="MultiStepLR", milestones=[len(batches) * 10], by_epoch=False)],
            default_hooks=dict(logger=dict(type="LoggerHook", interval=50), checkpoint=dict(type="CheckpointHook", interval=1)),
            log_level="WARNING",
            # unique per run: MMEngine reuses its visualizer (and its folder) by this name
            experiment_name=f"bench-{next(_RUN_IDS)}",
        )
        runner.train()


def run_torchkiln(batches: list) -> None:
    from torchkiln import BaseModel, Runner

    _run_mmengine_style(batches, BaseModel, Runner)


def run_mmengine(batches: list) -> None:
    from mmengine.model import BaseModel
    from mmengine.runner import Runner

    _run_mmengine_style(batches, BaseModel, Runner)


def run_lightning(batches: list) -> None:
    import lightning as L

    class Net(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.mlp = make_mlp()

        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = F.cross_entropy(self.mlp(x), y)
            self.log("loss", loss)
            return loss

        def configure_optimizers(self):
            opt = torch.optim.SGD(self.parameters(), lr=0.01)
            sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[len(batches) * 10])
            return [opt], [{"scheduler": sched, "interval": "step"}]

    with tempfile.TemporaryDirectory() as work_dir:
        trainer = L.Trainer(
            max_epochs=1, accelerator="cpu", devices=1, default_root_dir=work_dir, log_every_n_steps=50,
            enable_progress_bar=False, enable_model_summary=False, logger=False, enable_checkpointing=True,
        )
        trainer.fit(Net(), train_dataloaders=batches)


def run_ignite(batches: list) -> None:
    from ignite.engine import Events, create_supervised_trainer
    from ignite.handlers import Checkpoint, DiskSaver

    model = make_mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[len(batches) * 10])
    trainer = create_supervised_trainer(model, opt, F.cross_entropy)
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda engine: sched.step())
    trainer.add_event_handler(
        Events.ITERATION_COMPLETED(every=50), lambda engine: logging.getLogger("bench").debug("loss %s", engine.state.output)
    )
    with tempfile.TemporaryDirectory() as work_dir:
        saver = Checkpoint({"model": model, "optimizer": opt}, DiskSaver(work_dir, require_empty=False), n_saved=1)
        trainer.add_event_handler(Events.EPOCH_COMPLETED, saver)
        trainer.run(batches, max_epochs=1)


# --variants name -> (display name, runner, module that must be installed or None).
VARIANTS: dict[str, tuple[str, Callable[[list], None], str | None]] = {
    "raw": ("raw PyTorch loop", run_raw, None),
    "torchkiln": ("torchkiln Runner", run_torchkiln, None),
    "mmengine": ("MMEngine Runner", run_mmengine, "mmengine"),
    "lightning": ("Lightning Trainer", run_lightning, "lightning"),
    "ignite": ("Ignite trainer", run_ignite, "ignite"),
}


def available(module: str | None) -> bool:
    if module is None:
        return True
    import importlib.util

    return importlib.util.find_spec(module) is not None


# The clock runs measure: process CPU time by default, so time the machine gives to other
# processes does not count (the training threads are this process's: one torch thread).
CLOCKS: dict[str, Callable[[], float]] = {"cpu": time.process_time, "wall": time.perf_counter}


def timed(fn: Callable[[list], None], batches: list, clock: Callable[[], float] = time.process_time) -> float:
    t0 = clock()
    fn(batches)
    return clock() - t0


def measure(variants: dict[str, Callable[[list], None]], lo: int, hi: int, rounds: int,
            clock: Callable[[], float] = time.process_time) -> dict[str, float]:
    """µs per step of each variant: the median over ``rounds`` rounds of the slope between a
    ``lo``-step and a ``hi``-step epoch run back to back.

    Rounds interleave the variants in a rotating order, so a slow spell of a shared machine
    does not fall on one variant. Each round's slope comes from two runs made one after the
    other, and the median drops the rounds a disturbance hit (taking the fastest ``lo`` and
    the fastest ``hi`` run separately let one lucky run move the slope).
    """
    for fn in variants.values():
        fn(make_batches(50))  # warm-up: the first optimizer step imports torch._dynamo, etc.
    small, large = make_batches(lo), make_batches(hi)
    names = list(variants)
    slopes: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            fn = variants[name]
            t_lo = timed(fn, small, clock)
            t_hi = timed(fn, large, clock)
            slopes[name].append((t_hi - t_lo) / (hi - lo) * 1e6)
    return {name: statistics.median(values) for name, values in slopes.items()}


def _callgrind_child(lo: int, hi: int, names: list[str]) -> None:
    """Runs under callgrind: count instructions of each variant's ``lo``- and ``hi``-step epochs."""
    pid = str(os.getpid())

    def control(*args: str) -> None:
        subprocess.run(["callgrind_control", *args, pid], capture_output=True, check=False)

    variants = [VARIANTS[name][1] for name in names]
    for fn in variants:
        fn(make_batches(50))
    batches = {lo: make_batches(lo), hi: make_batches(hi)}
    control("-i", "on")
    for index, fn in enumerate(variants):
        for n, data in batches.items():
            control("-z")
            fn(data)
            control("-d", f"variant{index}-steps{n}")
    control("-i", "off")


def count_instructions(lo: int, hi: int, names: list[str]) -> dict[str, float] | None:
    """Instructions per step of each variant in ``names`` (``VARIANTS`` keys), counted by valgrind's callgrind
    (repeatable to a few parts in a million, whatever else the machine does).

    Both step counts should be at least the message hub's history length (1,000), so the
    final checkpoint holds the same amount of history in both runs. None without valgrind.
    """
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
               sys.executable, os.path.abspath(__file__), "--callgrind-child", "--steps", str(lo), str(hi),
               "--variants", ",".join(names)]
        subprocess.run(cmd, env=dict(os.environ, PYTHONHASHSEED="0"), capture_output=True, check=True)
        counts: dict[str, int] = {}
        for path in Path(tmp).glob("callgrind.out.*"):
            text = path.read_text(encoding="utf-8", errors="replace")
            label = re.search(r"^desc: Trigger: dump (\S+)$", text, re.M)
            total = re.search(r"^summary: (\d+)$", text, re.M)
            if label and total:
                counts[label.group(1)] = int(total.group(1))
    return {VARIANTS[name][0]: (counts[f"variant{i}-steps{hi}"] - counts[f"variant{i}-steps{lo}"]) / (hi - lo)
            for i, name in enumerate(names)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs=2, default=[1000, 4000])
    parser.add_argument("--rounds", "--repeats", type=int, default=7, help="interleaved rounds (median slope kept)")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    parser.add_argument("--instructions", type=int, nargs=2, metavar=("LO", "HI"), default=None,
                        help="also count instructions per step under valgrind between LO and HI steps")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="cpu",
                        help="cpu: this process's CPU time (robust on a shared machine); wall: elapsed time")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help=f"comma-separated variants to run, of {','.join(VARIANTS)} (peers only when installed)")
    parser.add_argument("--callgrind-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    lo, hi = args.steps
    requested = [name.strip() for name in args.variants.split(",") if name.strip()]
    unknown = [name for name in requested if name not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    requested = ["raw", *(name for name in requested if name != "raw")]  # the baseline always runs
    if args.callgrind_child:
        _callgrind_child(lo, hi, requested)
        return 0
    installed = [name for name in requested if available(VARIANTS[name][2])]
    runnable = {VARIANTS[name][0]: VARIANTS[name][1] for name in installed}
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)  # peers' INFO chatter; restored for a caller in-process
    try:
        per_step = measure(runnable, lo, hi, args.rounds, CLOCKS[args.clock])
    finally:
        logging.disable(previous)
    raw = per_step["raw PyTorch loop"]
    rows = []
    for name in (VARIANTS[short][0] for short in requested):
        if name not in per_step:
            rows.append((name, None, None, None, "not installed (pip install torchkiln[bench])"))
        else:
            rows.append((name, per_step[name], per_step[name] - raw, per_step[name] / raw, ""))
    if args.markdown:
        print("| variant | µs per step | overhead µs/step | ratio to raw |")
        print("| --- | ---: | ---: | ---: |")
        for name, step, over, ratio, note in rows:
            if step is None:
                print(f"| {name} | – | – | {note} |")
            else:
                print(f"| {name} | {step:.1f} | {over:+.1f} | {ratio:.3f}x |")
        print(f"\nMedian over {args.rounds} interleaved rounds of the slope between a {lo}- and a {hi}-step epoch.")
    else:
        for name, step, over, ratio, note in rows:
            if step is None:
                print(f"{name:20s} {note}")
            else:
                print(f"{name:20s} {step:8.1f} us/step  overhead {over:+7.1f} us  ratio {ratio:.3f}x")
    if args.instructions:
        i_lo, i_hi = args.instructions
        counts = count_instructions(i_lo, i_hi, installed)
        if counts is None:
            print("\n(instruction counts skipped: valgrind is not installed)")
        else:
            raw_count = counts["raw PyTorch loop"]
            print(f"\nInstructions per step (valgrind callgrind, slope between {i_lo} and {i_hi} steps; "
                  "independent of machine load; repeated counts differ by a few thousand per step, "
                  "garbage collection and allocator state):\n")
            if args.markdown:
                print("| variant | instructions per step | overhead per step | ratio to raw |")
                print("| --- | ---: | ---: | ---: |")
            for name, count in counts.items():
                over, ratio = (count - raw_count) / 1e3, count / raw_count
                if args.markdown:
                    print(f"| {name} | {count / 1e3:.1f}k | {over:+.1f}k | {ratio:.3f}x |")
                else:
                    print(f"{name:20s} {count / 1e3:8.1f}k instr/step  overhead {over:+7.1f}k  ratio {ratio:.3f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
