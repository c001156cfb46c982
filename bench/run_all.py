"""Run every benchmark and rewrite docs/benchmarks.md with the numbers, machine and commands.

    python bench/run_all.py            # all benchmarks (several minutes)
    python bench/run_all.py --only overhead config_load   # the other sections keep their numbers

Each benchmark is a script in bench/ with a ``--markdown`` flag; this file only runs them in
fresh interpreters and assembles their tables.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "benchmarks.md"

# (key, script, extra args, title, what it measures)
BENCHMARKS: list[tuple[str, str, list[str], str, str]] = [
    ("config_load", "config_load.py", [], "Config loading",
     "load + merge + 3 overrides of a 5-file detection-style config set (configs/bench); target < 1 ms; "
     "then every config of the OpenMMLab corpus (shared/openmmlab-configs/mmpretrain) against MMEngine: "
     "equal / differ / fail and per-file medians, wall and process CPU time: cold (in-memory caches emptied; "
     "the on-disk compiled-config cache in place, like .pyc files), cold with every cache off, and warm "
     "(the same file again); targets 20x cold, 50x warm"),
    ("overhead", "overhead.py", ["--instructions", "1000", "2000"], "Engine overhead per step",
     "tiny MLP, CPU, 1 thread, batch 32, pre-batched data; process CPU time, median over 7 rounds of the slope between 1,000 and 4,000 steps; "
     "MMEngine, Lightning and Ignite when the `bench` extra is installed (`make bench-peers`); "
     "instruction counts under valgrind when it is installed"),
    ("logging_cost", "logging_cost.py", [], "Logging cost",
     "per-iteration logging cost at history length 1e3 and 1e6; Rust buffer against pure Python"),
    ("resume_cost", "resume_cost.py", [], "Resume cost",
     "time from start to first trained batch when resuming at iteration 10, 1,000 and 10,000"),
    ("ddp_step", "ddp_step.py", [], "Distributed step time",
     "per-step time of 1 vs 2 processes (CPU, gloo) on the quickstart"),
    ("vision_pipeline", "vision_pipeline.py", [], "Vision input pipeline",
     "images/s of torchkiln-vision's ImageFolder + pipeline + ClsDataPreprocessor against a hand-written "
     "torchvision ImageFolder/DataLoader loop on the same generated PNGs; target >= 0.98x"),
    ("import_time", "import_time.py", [], "Start-up time",
     "median wall time of fresh interpreters; the CLI's config and plugin commands never import torch"),
    ("gpu_check", "gpu_check.py", ["--out", "work_dirs/gpu_check"], "GPU check",
     "ResNet-50 training on synthetic on-device data, raw PyTorch loop against the Runner with default hooks, "
     "in fp32, AMP bfloat16 and AMP float16 (target: at least 0.99x); host-device synchronisations between two "
     "log intervals under `torch.cuda.set_sync_debug_mode` (target: none caused by torchkiln); a tiny-model step "
     "rate; AMP float16 overflow and scaler-resume checks. The first two need CUDA and are skipped without it; "
     "its iteration counts are sized to finish in under 8 minutes on one H200 (`--batch`, `--iters`, `--rounds`, "
     "`--precisions` change them; `--quick` is a seconds-long smoke run). JSON and markdown results land in "
     "`work_dirs/gpu_check`; the exit code is 1 when a check that ran failed"),
]

# Scripts that check targets as well as measure: exit code 1 means a check failed, and the
# report they printed is still the result.
CHECKS = {"gpu_check.py"}


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores; Python {platform.python_version()}; torch {torch.__version__}; "
        f"{platform.system()} {platform.release()}"
    )


def run(script: str, extra: list[str]) -> str:
    path = REPO / "bench" / script
    if not path.is_file():
        return "_(benchmark script not present)_\n"
    cmd = [sys.executable, str(path), "--markdown", *extra]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    if out.returncode == 1 and script in CHECKS and out.stdout.strip():  # the report says what failed
        return out.stdout.rstrip() + "\n\n_(exit code 1: some checks failed)_\n"
    if out.returncode != 0:
        return f"_(failed with exit code {out.returncode}: {out.stderr.strip().splitlines()[-1] if out.stderr.strip() else ''})_\n"
    # Benchmarks that build a Runner also print its log lines; keep only the report.
    log_line = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} - ")
    return "\n".join(line for line in out.stdout.splitlines() if not log_line.match(line)) + "\n"


def _sections(doc: Path) -> dict[str, list[str]]:
    """The ``## title`` sections of an existing benchmarks file, each as its lines."""
    if not doc.is_file():
        return {}
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in doc.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            current = sections.setdefault(line[3:].strip(), [])
        if current is not None:
            current.append(line)
    return sections


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="run only these benchmarks (keys: " + ", ".join(b[0] for b in BENCHMARKS) + ")")
    parser.add_argument("--out", default=str(DOC))
    args = parser.parse_args(argv)
    chosen = [b for b in BENCHMARKS if not args.only or b[0] in args.only]
    lines = [
        "# Benchmarks",
        "",
        "Measured by `make bench` (`python bench/run_all.py`), which rewrites this file. Speed is",
        "always reported as a ratio against a plain PyTorch loop or a pure-Python path measured in",
        "the same run; absolute numbers depend on the machine.",
        "",
        f"- machine: {machine()}",
        f"- date: {dt.date.today().isoformat()}",
        "",
    ]
    sections = _sections(Path(args.out)) if args.only else {}
    for key, script, extra, title, what in BENCHMARKS:
        if (key, script, extra, title, what) in chosen:
            print(f"running {script} ...", file=sys.stderr, flush=True)
            command = " ".join(["python", f"bench/{script}", "--markdown", *extra])
            body = [f"## {title}", "", what + ".", "", f"Command: `{command}`", "", run(script, extra).rstrip(), ""]
        elif title in sections:  # --only: the other sections keep their last numbers
            body = sections[title]
        else:
            continue
        lines += body
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
