"""Start-up costs: ``import torchkiln`` over ``import torch``, and torch-free CLI commands.

Each command runs in a fresh interpreter several times; the median wall time is reported.

    python bench/import_time.py [--markdown] [--repeats 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = str(REPO / "configs" / "quickstart.yaml")

COMMANDS: list[tuple[str, list[str]]] = [
    ("python (empty)", [sys.executable, "-c", "pass"]),
    ("import torch", [sys.executable, "-c", "import torch"]),
    ("import torch, torchkiln", [sys.executable, "-c", "import torch, torchkiln"]),
    ("import torch; from torchkiln import Runner, BaseModel", [sys.executable, "-c", "import torch; from torchkiln import Runner, BaseModel"]),
    ("torchkiln --help", [sys.executable, "-m", "torchkiln", "--help"]),
    ("torchkiln config show quickstart", [sys.executable, "-m", "torchkiln", "config", "show", QUICKSTART]),
    ("torchkiln plugins", [sys.executable, "-m", "torchkiln", "plugins"]),
]


def median_seconds(cmd: list[str], repeats: int) -> float:
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="0")
    subprocess.run(cmd, capture_output=True, check=True, env=env)  # warm the OS file cache
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True, env=env)
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    results = [(name, median_seconds(cmd, args.repeats)) for name, cmd in COMMANDS]
    base = dict(results)
    torch_s = base["import torch"]
    if args.markdown:
        print("| command | median wall time (s) | over `import torch` (s) |")
        print("| --- | ---: | ---: |")
    for name, seconds in results:
        delta = f"{seconds - torch_s:+.3f}" if name.startswith("import torch") and "torchkiln" in name else ""
        if args.markdown:
            print(f"| `{name}` | {seconds:.3f} | {delta} |")
        else:
            print(f"{name:56s} {seconds:7.3f} s  {delta}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
