"""Generate a small image-classification dataset of simple shapes, for examples and tests.

``python -m torchkiln_vision.shapes data/shapes`` (or ``torchkiln-vision-shapes``) writes
``train/``, ``val/`` and ``test/`` image folders with one sub-folder per shape: circles,
squares, triangles and crosses of random size, position and colour on a random background
with some noise, so colour says nothing about the class. ``--format cifar`` writes the same
images as CIFAR-10-style pickled batches instead. The same seed always gives the same files.
"""

from __future__ import annotations

import argparse
import os
import pickle
from collections.abc import Sequence

import numpy as np

__all__ = ["SHAPES", "draw_shape", "main", "make_shapes_dataset"]

SHAPES = ("circle", "cross", "square", "triangle")
SPLITS = ("train", "val", "test")


def _colour(rng: np.random.Generator, avoid: np.ndarray | None = None) -> np.ndarray:
    while True:
        colour = rng.integers(0, 256, size=3)
        if avoid is None or np.abs(colour - avoid).sum() > 200:
            return colour


def draw_shape(shape: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """One ``uint8`` ``(size, size, 3)`` image of ``shape`` at a random place, size and colour."""
    from PIL import Image, ImageDraw

    background = _colour(rng)
    foreground = _colour(rng, avoid=background)
    image = Image.new("RGB", (size, size), tuple(int(c) for c in background))
    draw = ImageDraw.Draw(image)
    extent = int(rng.integers(size * 4 // 10, size * 8 // 10))
    x0 = int(rng.integers(0, size - extent + 1))
    y0 = int(rng.integers(0, size - extent + 1))
    x1, y1 = x0 + extent - 1, y0 + extent - 1
    fill = tuple(int(c) for c in foreground)
    if shape == "circle":
        draw.ellipse((x0, y0, x1, y1), fill=fill)
    elif shape == "square":
        draw.rectangle((x0, y0, x1, y1), fill=fill)
    elif shape == "triangle":
        draw.polygon([((x0 + x1) / 2, y0), (x0, y1), (x1, y1)], fill=fill)
    elif shape == "cross":
        bar = max(2, extent // 4)
        cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
        draw.rectangle((x0, cy - bar // 2, x1, cy + bar // 2), fill=fill)
        draw.rectangle((cx - bar // 2, y0, cx + bar // 2, y1), fill=fill)
    else:
        raise ValueError(f"unknown shape {shape!r}; choose among {', '.join(SHAPES)}")
    array = np.asarray(image, dtype=np.int16) + rng.integers(-12, 13, size=(size, size, 3))
    return np.clip(array, 0, 255).astype(np.uint8)


def _split_samples(
    split: str, per_class: int, size: int, seed: int, shapes: Sequence[str]
) -> list[tuple[np.ndarray, int]]:
    rng = np.random.default_rng([seed, SPLITS.index(split)])
    return [
        (draw_shape(shape, size, rng), label)
        for label, shape in enumerate(shapes)
        for _ in range(per_class)
    ]


def make_shapes_dataset(
    out_dir: str,
    train_per_class: int = 100,
    val_per_class: int = 25,
    test_per_class: int = 25,
    size: int = 32,
    seed: int = 0,
    fmt: str = "folder",
    shapes: Sequence[str] = SHAPES,
) -> str:
    """Write the dataset under ``out_dir`` and return ``out_dir``.

    :param out_dir: the output folder (created).
    :param train_per_class: training images per class (``val``/``test`` likewise).
    :param val_per_class: validation images per class (0: no ``val`` split).
    :param test_per_class: test images per class (0: no ``test`` split).
    :param size: image side in pixels.
    :param seed: the seed of everything drawn.
    :param fmt: ``'folder'`` (PNG files in ``<split>/<class>/``) or ``'cifar'`` (CIFAR-10
        layout: ``data_batch_1`` holds the training images, ``test_batch`` the test ones,
        ``batches.meta`` the names; ``size`` must be 32).
    :param shapes: the classes, among :data:`SHAPES`.
    """
    counts = {"train": train_per_class, "val": val_per_class, "test": test_per_class}
    os.makedirs(out_dir, exist_ok=True)
    if fmt == "cifar":
        if size != 32:
            raise ValueError("the CIFAR format holds 32x32 images")
        names = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
        for split, files in names.items():
            samples = _split_samples(split, counts[split], size, seed, shapes)
            chunks = np.array_split(np.arange(len(samples)), len(files))
            for name, chunk in zip(files, chunks):
                data = (
                    np.stack([samples[i][0].transpose(2, 0, 1).reshape(-1) for i in chunk])
                    if len(chunk)
                    else (np.zeros((0, 3072), dtype=np.uint8))
                )
                batch = {
                    b"data": data,
                    b"labels": [samples[i][1] for i in chunk],
                    b"batch_label": name.encode(),
                }
                with open(os.path.join(out_dir, name), "wb") as fh:
                    pickle.dump(batch, fh, protocol=2)
        with open(os.path.join(out_dir, "batches.meta"), "wb") as fh:
            pickle.dump(
                {b"label_names": [s.encode() for s in shapes], b"num_vis": 3072}, fh, protocol=2
            )
        return out_dir
    if fmt != "folder":
        raise ValueError(f"fmt must be 'folder' or 'cifar', got {fmt!r}")
    from PIL import Image

    for split in SPLITS:
        if not counts[split]:
            continue
        for index, (array, label) in enumerate(
            _split_samples(split, counts[split], size, seed, shapes)
        ):
            folder = os.path.join(out_dir, split, shapes[label])
            os.makedirs(folder, exist_ok=True)
            Image.fromarray(array).save(os.path.join(folder, f"{index:05d}.png"))
    return out_dir


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``torchkiln-vision-shapes OUT_DIR [--train N] [--size S] ...``."""
    parser = argparse.ArgumentParser(
        prog="torchkiln-vision-shapes", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("out_dir", help="output folder")
    parser.add_argument(
        "--train", type=int, default=100, help="training images per class (default 100)"
    )
    parser.add_argument(
        "--val", type=int, default=25, help="validation images per class (default 25)"
    )
    parser.add_argument("--test", type=int, default=25, help="test images per class (default 25)")
    parser.add_argument("--size", type=int, default=32, help="image side in pixels (default 32)")
    parser.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    parser.add_argument(
        "--format", choices=("folder", "cifar"), default="folder", help="output layout"
    )
    args = parser.parse_args(argv)
    make_shapes_dataset(
        args.out_dir, args.train, args.val, args.test, args.size, args.seed, args.format
    )
    print(f"wrote {args.format} dataset of {len(SHAPES)} shapes to {args.out_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
