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


def torchkiln_import_seconds(repeats: int) -> float:
    """Median time ``import torchkiln`` itself takes once torch is imported, read from
    ``python -X importtime`` (the cumulative time of the top-level ``torchkiln`` entry): the
    difference of two multi-second wall times is mostly noise on a shared machine."""
    samples = []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-X", "importtime", "-c", "import torch, torchkiln"],
                             capture_output=True, text=True, check=True)
        for line in out.stderr.splitlines():
            parts = [p.strip() for p in line.removeprefix("import time:").split("|")]
            if len(parts) == 3 and parts[2] == "torchkiln":
                samples.append(int(parts[1]) / 1e6)
    return statistics.median(samples) if samples else float("nan")


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
    own = torchkiln_import_seconds(args.repeats)
    if args.markdown:
        print(f"\n`import torchkiln` after `import torch`, from `python -X importtime`: {own * 1e3:.1f} ms "
              "(median; names resolve lazily, so torchkiln's subpackages load when first used).")
    else:
        print(f"import torchkiln after torch (-X importtime): {own * 1e3:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
