"""Images per second of torchkiln-vision's input pipeline against a hand-written torchvision loop.

Both read the same generated image folder (PNG files of shapes, ``--size`` pixels) with the
same augmentations (``RandomCrop`` with padding, ``RandomHorizontalFlip``), the same batch
size, worker count and DataLoader settings, and end with normalised float batches on the
device (CUDA when present):

- ``torchkiln-vision``: ``ImageFolder`` built by name with a ``pipeline:`` list, the
  DataLoader from torchkiln's ``build_dataloader`` with the plugin configs' defaults
  (persistent workers, prefetch 4, pinned memory on CUDA), and ``ClsDataPreprocessor``
  (uint8 to the device without blocking, conversion and normalisation there);
- ``torchvision loop``: ``torchvision.datasets.ImageFolder`` with a ``transforms.v2.Compose``
  that also converts and normalises in the workers, a plain ``DataLoader``, and
  ``.to(device, non_blocking=True)``.

Each round iterates one full epoch of each (after a warm-up epoch), alternating their order;
the table gives the median images/s and the ratio torchkiln-vision / torchvision loop (the
target is >= 0.98). ``python bench/vision_pipeline.py [--markdown]``. Timings never gate tests.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))
os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

MEAN = [123.675, 116.28, 103.53]
STD = [58.395, 57.12, 57.375]


def torchkiln_epochs(root: str, args: argparse.Namespace, device: torch.device) -> Iterator[Callable[[], int]]:
    """Build the torchkiln-vision pipeline once; yield a function that runs one epoch."""
    from torchkiln.data.builder import build_dataloader
    from torchkiln_vision.preprocessor import ClsDataPreprocessor

    cfg: dict[str, Any] = {
        "batch_size": args.batch_size,
        "num_workers": args.workers,
        "persistent_workers": args.workers > 0,
        "prefetch_factor": 4 if args.workers > 0 else None,
        "pin_memory": device.type == "cuda",
        "dataset": {
            "type": "ImageFolder",
            "data_root": root,
            "pipeline": [
                {"type": "RandomCrop", "size": args.size, "padding": 2, "padding_mode": "edge"},
                {"type": "RandomHorizontalFlip", "p": 0.5},
            ],
        },
        "sampler": {"type": "DefaultSampler", "shuffle": True},
    }
    if cfg["prefetch_factor"] is None:
        del cfg["prefetch_factor"]
    loader = build_dataloader(cfg, seed=0, name="train_dataloader")
    pre = ClsDataPreprocessor(mean=MEAN, std=STD).to(device)

    def epoch() -> int:
        seen = 0
        for batch in loader:
            out = pre(batch, training=True)
            seen += out["inputs"].shape[0]
        if device.type == "cuda":
            torch.cuda.synchronize()
        return seen

    while True:
        yield epoch


def torchvision_epochs(root: str, args: argparse.Namespace, device: torch.device) -> Iterator[Callable[[], int]]:
    """The hand-written loop: torchvision's ImageFolder, a v2 Compose, a plain DataLoader."""
    import torchvision
    from torchvision.transforms import v2

    transform = v2.Compose([
        v2.ToImage(),
        v2.RandomCrop(args.size, padding=2, padding_mode="edge"),
        v2.RandomHorizontalFlip(),
        v2.ToDtype(torch.float32, scale=False),
        v2.Normalize(MEAN, STD),
    ])
    dataset = torchvision.datasets.ImageFolder(root, transform=transform)
    kwargs: dict[str, Any] = {}
    if args.workers > 0:
        kwargs = {"persistent_workers": True, "prefetch_factor": 4}
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=args.batch_size,
        shuffle=True,
        num_workers=args.workers,
        pin_memory=device.type == "cuda",
        **kwargs,
    )

    def epoch() -> int:
        seen = 0
        for images, labels in loader:
            images = images.to(device, non_blocking=True)
            labels = labels.to(device, non_blocking=True)
            seen += images.shape[0]
        if device.type == "cuda":
            torch.cuda.synchronize()
        return seen

    while True:
        yield epoch


def measure(args: argparse.Namespace) -> dict[str, float]:
    """Median images/s of each pipeline over ``args.rounds`` alternating rounds."""
    from torchkiln_vision.shapes import make_shapes_dataset

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    with tempfile.TemporaryDirectory() as tmp:
        make_shapes_dataset(tmp, args.images_per_class, 0, 0, size=args.size, seed=0)
        root = os.path.join(tmp, "train")
        runners = {
            "torchkiln-vision": next(torchkiln_epochs(root, args, device)),
            "torchvision loop": next(torchvision_epochs(root, args, device)),
        }
        for run in runners.values():  # warm-up: workers started, files in the page cache
            run()
        rates: dict[str, list[float]] = {name: [] for name in runners}
        names = list(runners)
        for r in range(args.rounds):
            for name in names if r % 2 == 0 else reversed(names):
                start = time.perf_counter()
                seen = runners[name]()
                rates[name].append(seen / (time.perf_counter() - start))
    return {name: statistics.median(values) for name, values in rates.items()}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a table (markdown with ``--markdown``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images-per-class", type=int, default=500, help="images per class (4 classes)")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    rates = measure(args)
    ratio = rates["torchkiln-vision"] / rates["torchvision loop"]
    device = "CUDA" if torch.cuda.is_available() else "CPU"
    setting = (
        f"{4 * args.images_per_class} PNG images of {args.size}x{args.size}, batch {args.batch_size}, "
        f"{args.workers} workers, {device}, median of {args.rounds} epochs each"
    )
    if args.markdown:
        print(f"{setting}.\n")
        print("| pipeline | images/s |\n| --- | ---: |")
        for name, rate in rates.items():
            print(f"| {name} | {rate:,.0f} |")
        print(f"\nratio torchkiln-vision / torchvision loop: **{ratio:.3f}x** (target >= 0.98x)")
    else:
        print(setting)
        for name, rate in rates.items():
            print(f"{name:>18}: {rate:10,.0f} images/s")
        print(f"ratio: {ratio:.3f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
