"""Time loading a realistic multi-file config: torchkiln vs pure Python vs MMEngine.

The set is ``configs/bench/``: a detection-style child inheriting four bases (a model with
backbone, neck and nested heads; a dataset with train/test pipelines and interpolated user
variables; a schedule; a runtime), overriding some keys. Each call loads the child with its
bases, merges, interpolates and applies three overrides:

- ``torchkiln``: ``torchkiln.config.load`` (the Rust core, wrapped in a ``Config``) with its
  in-memory caches emptied before each call, so that every call reads, merges and
  interpolates again; the same on the ``.py`` set (each file run by Python, merged by the
  Rust core); the ``.py`` set again without emptying the caches (an unchanged load kept in
  memory); and the bare ``torchkiln._native.load_config`` without the ``Config`` wrapper;
- ``pure Python``: ``yaml`` (its C loader when available) with a recursive dict merge,
  ``_delete_``, ``${...}`` interpolation and the same overrides, written plainly here;
- ``mmengine``: ``mmengine.Config.fromfile`` on the same set written as ``.py`` files
  (``configs/bench/py/``) and ``merge_from_dict`` with the same overrides, when installed.

A second table covers a real corpus of OpenMMLab configs (``--corpus``, by default
``shared/openmmlab-configs/mmpretrain`` next to or above the repository) when MMEngine is
installed: every entry config (each ``.py`` outside ``_base_`` folders) is loaded by
``mmengine.Config.fromfile(path, import_custom_modules=False)`` and by
``torchkiln.config.load``, the two ``to_dict()`` results are compared (tuples included), and
the per-file median times are reported:

- *cold*: the first load in a fresh process state: torchkiln's in-memory caches (kept loads
  and compiled configs) are emptied before each load. The on-disk cache of compiled ``.py``
  configs is in place, as Python's own ``.pyc`` files are for modules (one load of every
  entry before timing fills it);
- *cold, no code cache*: the same with every cache off (``TORCHKILN_CONFIG_CACHE=0``), so
  every file of the chain is compiled from source: a config's first load ever;
- *warm*: loading the same file again in the same process (the load kept in memory, checked
  against the stamps of its files).

Files MMEngine itself cannot load are counted apart; each torchkiln result (cold, warm and
without cache) must equal MMEngine's.

Run ``python bench/config_load.py`` (``--markdown`` for a table to paste into
docs/benchmarks.md). Timings never gate tests.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import sys
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))

CHILD = ROOT / "configs" / "bench" / "faster_rcnn_r50_fpn_1x_coco.yaml"
CHILD_PY = ROOT / "configs" / "bench" / "py" / "faster_rcnn_r50_fpn_1x_coco.py"
OVERRIDES = [
    "train_cfg.max_epochs=24",
    "optim_wrapper.optimizer.lr=0.04",
    "param_scheduler.1.milestones=[16,22]",
]
OVERRIDES_DICT: dict[str, Any] = {
    "train_cfg.max_epochs": 24,
    "optim_wrapper.optimizer.lr": 0.04,
    "param_scheduler.1.milestones": [16, 22],
}


# ---------------------------------------------------------------------- the pure-Python path
def _pure_python_loader() -> Callable[[], dict[str, Any]]:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    ref = re.compile(r"\$\{([^}]+)\}")

    def read(path: Path) -> dict[str, Any]:
        with open(path, encoding="utf-8") as fh:
            data = yaml.load(fh, Loader=loader) or {}
        bases = data.pop("_base_", [])
        if isinstance(bases, str):
            bases = [bases]
        merged: dict[str, Any] = {}
        for base in bases:
            merged = merge(merged, read(path.parent / base))
        return merge(merged, data)

    def merge(base: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
        out = dict(base)
        for key, value in child.items():
            if isinstance(value, dict):
                value = dict(value)
                if value.pop("_delete_", False) or not isinstance(out.get(key), dict):
                    out[key] = merge({}, value)
                else:
                    out[key] = merge(out[key], value)
            else:
                out[key] = value
        return out

    def lookup(root: dict[str, Any], dotted: str) -> Any:
        if dotted.startswith("env:"):
            name, _, default = dotted[4:].partition(",")
            return os.environ.get(name, default)
        node: Any = root
        for part in dotted.split("."):
            node = node[int(part)] if isinstance(node, list) else node[part]
        return node

    def interpolate(node: Any, root: dict[str, Any]) -> Any:
        if isinstance(node, dict):
            return {k: interpolate(v, root) for k, v in node.items()}
        if isinstance(node, list):
            return [interpolate(v, root) for v in node]
        if isinstance(node, str) and "${" in node:
            whole = ref.fullmatch(node)
            if whole:
                return interpolate(lookup(root, whole.group(1)), root)
            return ref.sub(lambda m: str(interpolate(lookup(root, m.group(1)), root)), node)
        return node

    def override(root: dict[str, Any], text: str) -> None:
        dotted, _, raw = text.partition("=")
        value = yaml.load(raw, Loader=loader)
        *parents, last = dotted.split(".")
        node: Any = root
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            if last not in node:
                raise KeyError(dotted)
            node[last] = value

    def load() -> dict[str, Any]:
        data = read(CHILD)
        for text in OVERRIDES:
            override(data, text)
        return interpolate(data, data)

    return load


# ---------------------------------------------------------------------- the contenders
def contenders() -> tuple[list[tuple[str, Callable[[], Any]]], list[str]]:
    """``[(label, call)]`` for every path available here, and notes on those skipped."""
    out: list[tuple[str, Callable[[], Any]]] = []
    skipped: list[str] = []
    try:
        from torchkiln import _native
        from torchkiln.config import clear_config_cache, load
        from torchkiln.config.loader import _callbacks

        def fresh(path: Path) -> Callable[[], Any]:
            def call() -> Any:
                clear_config_cache()
                return load(path, OVERRIDES)

            return call

        out.append(("torchkiln.config.load", fresh(CHILD)))
        out.append(("torchkiln.config.load (.py set)", fresh(CHILD_PY)))
        out.append(("torchkiln.config.load (.py set, kept)", lambda: load(CHILD_PY, OVERRIDES)))
        child = str(CHILD)
        callbacks = _callbacks()
        out.append(("torchkiln._native.load_config", lambda: _native.load_config(child, OVERRIDES, **callbacks)))
    except ImportError as exc:
        skipped.append(f"torchkiln: {exc} (build the extension first)")
    try:
        import yaml

        reader = "PyYAML CSafeLoader" if hasattr(yaml, "CSafeLoader") else "PyYAML SafeLoader"
        out.append((f"pure Python ({reader} + dict merge)", _pure_python_loader()))
    except ImportError:
        skipped.append("pure Python: PyYAML is not installed")
    try:
        from mmengine.config import Config as MMConfig

        def mmengine_load() -> Any:
            cfg = MMConfig.fromfile(str(CHILD_PY))
            cfg.merge_from_dict(OVERRIDES_DICT)
            return cfg

        out.append(("mmengine.Config.fromfile (.py set)", mmengine_load))
    except ImportError:
        skipped.append("mmengine: not installed (pip install 'torchkiln[bench]')")
    return out, skipped


def check_agreement() -> str:
    """Whether torchkiln and the pure-Python path produce the same data."""
    try:
        from torchkiln.config import load

        ours = load(CHILD, OVERRIDES).to_dict()
        theirs = _pure_python_loader()()
    except Exception as exc:  # noqa: BLE001 - the table still prints
        return f"not checked ({type(exc).__name__})"
    return "yes" if ours == theirs else "NO"


def _ratio(value: float) -> str:
    return f"{value:.1f}x" if value >= 0.95 else f"{value:.2f}x"


def measure(call: Callable[[], Any], number: int, repeat: int) -> list[float]:
    """Per-call times in milliseconds, one per repeat (each the mean of ``number`` calls)."""
    call()  # warm caches (imports, entry points)
    times = timeit.repeat(call, number=number, repeat=repeat)
    return [t / number * 1000.0 for t in times]


# ---------------------------------------------------------------------- the OpenMMLab corpus
def default_corpus() -> Path | None:
    """``shared/openmmlab-configs/mmpretrain`` in the repository or a folder above it."""
    for folder in (ROOT, *ROOT.parents):
        candidate = folder / "shared" / "openmmlab-configs" / "mmpretrain"
        if candidate.is_dir():
            return candidate
    return None


def corpus_entries(corpus: Path) -> list[Path]:
    """Every entry config of ``corpus``: the ``.py`` files outside ``_base_`` folders."""
    return sorted(p for p in corpus.rglob("*.py") if "_base_" not in p.relative_to(corpus).parts)


def _timed(call: Callable[[], Any]) -> tuple[tuple[float, float], Any]:
    """``((wall ms, process CPU ms), result)`` of one call."""
    cpu, start = time.process_time(), time.perf_counter()
    out = call()
    wall = (time.perf_counter() - start) * 1000.0
    return (wall, (time.process_time() - cpu) * 1000.0), out


def run_corpus(corpus: Path, limit: int | None = None) -> dict[str, Any] | None:
    """Load every entry of ``corpus`` with both loaders; counts and per-file median times."""
    import warnings

    try:
        from mmengine.config import Config as MMConfig
    except ImportError:
        return None
    from torchkiln.config import clear_config_cache, load

    entries = corpus_entries(corpus)[:limit]
    counts = {"equal": 0, "differ": 0, "fail": 0, "mmengine_fails": 0}
    differing: list[str] = []
    times: dict[str, list[tuple[float, float]]] = {"mm": [], "cold": [], "nocache": [], "warm": []}
    warnings.simplefilter("ignore")
    for path in entries:  # imports, first-use set-up and the on-disk code cache
        try:
            load(path)
        except Exception:  # noqa: BLE001 - reported below
            pass
    saved = os.environ.get("TORCHKILN_CONFIG_CACHE")
    for path in entries:
        try:
            mm_ms, mm_cfg = _timed(lambda p=path: MMConfig.fromfile(str(p), import_custom_modules=False))
            theirs = mm_cfg.to_dict()
        except Exception:  # noqa: BLE001 - MMEngine's own failures are not ours to match
            counts["mmengine_fails"] += 1
            continue
        try:
            clear_config_cache()
            os.environ["TORCHKILN_CONFIG_CACHE"] = "0"
            try:
                nocache_ms, uncached = _timed(lambda p=path: load(p))
            finally:
                if saved is None:
                    del os.environ["TORCHKILN_CONFIG_CACHE"]
                else:
                    os.environ["TORCHKILN_CONFIG_CACHE"] = saved
            clear_config_cache()
            cold_ms, cfg = _timed(lambda p=path: load(p))
            warm_ms, again = _timed(lambda p=path: load(p))
        except Exception:  # noqa: BLE001 - counted, listed
            counts["fail"] += 1
            differing.append(f"{path.relative_to(corpus)} (fails)")
            continue
        if cfg.to_dict() == theirs and again.to_dict() == theirs and uncached.to_dict() == theirs:
            counts["equal"] += 1
        else:
            counts["differ"] += 1
            differing.append(str(path.relative_to(corpus)))
        times["mm"].append(mm_ms)
        times["cold"].append(cold_ms)
        times["nocache"].append(nocache_ms)
        times["warm"].append(warm_ms)
    nan = float("nan")
    medians = {k: statistics.median(w for w, _ in v) if v else nan for k, v in times.items()}
    cpu = {k: statistics.median(c for _, c in v) if v else nan for k, v in times.items()}
    return {
        "entries": len(entries),
        "counts": counts,
        "differing": differing,
        "medians": medians,
        "cpu": cpu,
    }


def print_corpus(result: dict[str, Any], corpus: Path, markdown: bool) -> None:
    """The corpus table: agreement counts, per-file medians and the speed ratios."""
    c, m, cpu = result["counts"], result["medians"], result["cpu"]
    compared = c["equal"] + c["differ"] + c["fail"]
    title = (
        f"OpenMMLab corpus {corpus.name}: {result['entries']} entry configs, {compared} loadable by MMEngine "
        f"({c['mmengine_fails']} fail inside MMEngine); equal {c['equal']}, differ {c['differ']}, fail {c['fail']}"
    )
    rows = [
        ("mmengine.Config.fromfile", "mm"),
        ("torchkiln.config.load, cold", "cold"),
        ("torchkiln.config.load, cold, no code cache", "nocache"),
        ("torchkiln.config.load, warm", "warm"),
    ]
    if markdown:
        print(f"<!-- {title} -->")
        print(f"{title}.")
        print()
        print("| path | median wall per file (ms) | MMEngine / this | median CPU per file (ms) | MMEngine / this |")
        print("| --- | ---: | ---: | ---: | ---: |")
        for label, key in rows:
            print(
                f"| {label} | {m[key]:.3f} | {m['mm'] / m[key]:.1f}x | {cpu[key]:.3f} | {cpu['mm'] / cpu[key]:.1f}x |"
            )
        print()
        print(
            "Wall time is what a user waits; process CPU time (same loads) depends less on the "
            "machine's load, which slows MMEngine's many file-system calls more than torchkiln."
        )
    else:
        print(title)
        print(f"{'':44}  {'wall ms':>9}  {'ratio':>7}  {'CPU ms':>9}  {'ratio':>7}")
        for label, key in rows:
            print(
                f"{label.ljust(44)}  {m[key]:9.3f}  {m['mm'] / m[key]:6.1f}x  {cpu[key]:9.3f}  {cpu['mm'] / cpu[key]:6.1f}x"
            )
    for name in result["differing"][:20]:
        print(f"- not equal: {name}" if markdown else f"not equal: {name}")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=20, help="calls per timing sample")
    parser.add_argument("--repeat", type=int, default=30, help="timing samples per contender")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    parser.add_argument("--corpus", type=Path, default=default_corpus(), help="OpenMMLab config folder")
    parser.add_argument("--corpus-only", action="store_true", help="only the corpus comparison")
    parser.add_argument("--limit", type=int, default=None, help="first N corpus entries only")
    args = parser.parse_args(argv)
    if args.corpus_only:
        return corpus_section(args)

    rows = []
    found, skipped = contenders()
    for label, call in found:
        number = max(1, args.number // 10) if label.startswith("mmengine") else args.number
        samples = measure(call, number, args.repeat)
        rows.append((label, statistics.fmean(samples), statistics.median(samples), min(samples)))
    if not rows:
        print("nothing to measure: " + "; ".join(skipped))
        return 1
    base = rows[0][2]  # the first row's median (torchkiln.config.load when built)
    files = 1 + sum(1 for _ in (CHILD.parent / "_base_").rglob("*.yaml"))
    title = (
        f"config load + merge + {len(OVERRIDES)} overrides: {CHILD.relative_to(ROOT)} ({files} files); "
        f"{args.repeat} samples x {args.number} calls; Python {platform.python_version()}, {platform.machine()}"
    )
    agree = check_agreement()
    if args.markdown:
        print(f"<!-- {title} -->")
        print("| path | mean (ms) | median (ms) | min (ms) | median vs torchkiln |")
        print("| --- | ---: | ---: | ---: | ---: |")
        for label, mean, median, best in rows:
            print(f"| {label} | {mean:.3f} | {median:.3f} | {best:.3f} | {_ratio(median / base)} |")
        print()
        print(f"Same result from torchkiln and the pure-Python path: {agree}.")
    else:
        print(title)
        width = max(len(r[0]) for r in rows)
        print(f"{'path'.ljust(width)}  {'mean ms':>9}  {'median ms':>9}  {'min ms':>9}  {'vs torchkiln':>12}")
        for label, mean, median, best in rows:
            print(f"{label.ljust(width)}  {mean:9.3f}  {median:9.3f}  {best:9.3f}  {_ratio(median / base):>12}")
        print(f"same result from torchkiln and pure Python: {agree}")
    for note in skipped:
        print(f"- skipped: {note}" if args.markdown else f"skipped: {note}")
    print()
    corpus_section(args)
    return 0


def corpus_section(args: argparse.Namespace) -> int:
    """Print the corpus comparison, or why it was skipped."""
    if args.corpus is None or not Path(args.corpus).is_dir():
        print("corpus: no OpenMMLab config folder found (pass --corpus)")
        return 1
    result = run_corpus(Path(args.corpus), args.limit)
    if result is None:
        print("corpus: skipped, mmengine is not installed (pip install 'torchkiln[dev]')")
        return 1
    print_corpus(result, Path(args.corpus), args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
