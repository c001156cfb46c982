"""``torchkiln plot``: training curves from ``scalars.jsonl``, drawn with matplotlib.

``plot_scalars(path, keys, out)`` finds the scalars file (``path`` may be the file, a run
folder ``work_dir/<timestamp>`` or a work dir, whose latest run folder with training
records is used), reads its records (``{"step", "epoch", "mode", **values}``) and draws one subplot
per key against ``step``, one line per mode the key appears in (``time`` has a train and a
val line; ``accuracy/top1`` only a val one). A key may name its mode: ``val/time``.
matplotlib runs headless (the Agg canvas; pyplot is not imported).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable, Sequence
from typing import Any

from torchkiln.errors import UsageError, did_you_mean

__all__ = [
    "DEFAULT_OUT",
    "SCALARS_FILE",
    "available_keys",
    "find_scalars_file",
    "load_scalars",
    "plot_scalars",
]

SCALARS_FILE = "scalars.jsonl"
DEFAULT_OUT = "curves.png"
_HEAD = ("step", "epoch", "mode")
_SKIPPED_BY_DEFAULT = ("time", "data_time", "memory")
_MODES = ("train", "val", "test")
_TIMESTAMP = re.compile(r"^\d{8}_\d{6}$")
_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def find_scalars_file(path: str | os.PathLike[str]) -> str:
    """The scalars file for ``path``: the file itself, ``path/scalars.jsonl``, or that of
    the latest run folder in ``path`` with training records (else the latest at all);
    timestamp names sort by time, other folders by the file's mtime, before them.

    :raises UsageError: when there is none.
    """
    path = os.fspath(path)
    if os.path.isfile(path):
        return path
    if not os.path.isdir(path):
        raise UsageError(
            f"no such file or folder: {path}",
            where="torchkiln plot",
            hint="give a work_dir, a run folder work_dir/<timestamp> or a scalars.jsonl file",
        )
    direct = os.path.join(path, SCALARS_FILE)
    if os.path.isfile(direct):
        return direct
    runs = [
        entry.name
        for entry in os.scandir(path)
        if entry.is_dir() and os.path.isfile(os.path.join(entry.path, SCALARS_FILE))
    ]
    if not runs:
        raise UsageError(
            f"no {SCALARS_FILE} in {path} or its run folders",
            where=path,
            hint="scalars.jsonl is written by LoggerHook into work_dir/<timestamp>/ during training; "
            "train first, or give the run folder",
        )

    def order(name: str) -> tuple[int, float, str]:
        stamped = bool(_TIMESTAMP.match(name))
        mtime = 0.0 if stamped else os.path.getmtime(os.path.join(path, name, SCALARS_FILE))
        return (int(stamped), mtime, name)

    runs.sort(key=order, reverse=True)
    # `torchkiln val/test` runs get folders of their own: prefer the latest training run
    for name in runs:
        if _has_training(os.path.join(path, name, SCALARS_FILE)):
            return os.path.join(path, name, SCALARS_FILE)
    return os.path.join(path, runs[0], SCALARS_FILE)


def _has_training(scalars_file: str) -> bool:
    with open(scalars_file, encoding="utf-8") as fh:
        return any('"mode": "train"' in line for line in fh)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and value in _NON_FINITE:
        return _NON_FINITE[value]
    return None


def load_scalars(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The records of a scalars file; lines that are not JSON objects (a line cut short by a
    crash) are skipped."""
    records = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict):
                records.append(record)
    return records


def available_keys(records: Iterable[dict[str, Any]]) -> list[str]:
    """Numeric keys in first-appearance order (``step``, ``epoch``, ``mode`` excluded)."""
    seen: dict[str, None] = {}
    for record in records:
        for key, value in record.items():
            if key not in _HEAD and key not in seen and _number(value) is not None:
                seen[key] = None
    return list(seen)


def _resolve(key: str, keys: Sequence[str], where: str) -> tuple[str, str | None]:
    """``(key, mode)`` for a requested key; ``mode`` None means every mode."""
    if key in keys:
        return key, None
    mode, _, rest = key.partition("/")
    if mode in _MODES and rest in keys:
        return rest, mode
    hint = did_you_mean(key, keys)
    listed = "available: " + ", ".join(keys) if keys else "the file has no numeric values"
    raise UsageError(
        f"no scalar {key!r} in {where}", where=where, hint=f"{hint} {listed}" if hint else listed
    )


def _series(
    records: Sequence[dict[str, Any]], key: str, mode: str | None
) -> dict[str, tuple[list[float], list[float]]]:
    out: dict[str, tuple[list[float], list[float]]] = {}
    for record in records:
        record_mode = str(record.get("mode", ""))
        if mode is not None and record_mode != mode:
            continue
        value = _number(record.get(key))
        step = _number(record.get("step"))
        if value is None or step is None:
            continue
        xs, ys = out.setdefault(record_mode, ([], []))
        xs.append(step)
        ys.append(value)
    return out


def plot_scalars(
    path: str | os.PathLike[str],
    keys: Sequence[str] | str | None = None,
    out: str | os.PathLike[str] | None = None,
    dpi: int = 100,
) -> str:
    """Draw the curves of ``keys`` from a run's scalars and save the figure.

    :param path: a scalars file, a run folder or a work dir (see :func:`find_scalars_file`).
    :param keys: keys to draw (a list or ``"loss,lr"``); default every numeric key but
        ``time``, ``data_time`` and ``memory``.
    :param out: the image file (its extension picks the format); default
        ``curves.png`` beside the scalars file.
    :param dpi: resolution.
    :returns: the path written.
    :raises UsageError: no scalars file, an unknown key, an unsupported image format.
    """
    source = find_scalars_file(path)
    records = load_scalars(source)
    known = available_keys(records)
    if not known:
        raise UsageError(
            f"{source} holds no scalar records yet",
            where=source,
            hint="records are written every LoggerHook interval; wait for the first one",
        )
    if isinstance(keys, str):
        keys = [k.strip() for k in keys.split(",")]
    if keys:
        wanted = [k for k in keys if k]
    else:
        wanted = [k for k in known if k not in _SKIPPED_BY_DEFAULT] or known
    if not wanted:
        raise UsageError(
            "--keys is empty", where="torchkiln plot", hint="e.g. --keys loss,lr,accuracy/top1"
        )
    resolved = [_resolve(k, known, source) for k in wanted]
    out = os.fspath(out) if out is not None else os.path.join(os.path.dirname(source), DEFAULT_OUT)

    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise UsageError(
            "torchkiln plot draws with matplotlib, which is not installed",
            where="torchkiln plot",
            hint="pip install 'torchkiln[plot]' (or pip install matplotlib)",
        ) from None

    fig = Figure(figsize=(8.0, 2.4 * len(resolved) + 0.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(resolved), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (key, mode), label in zip(axes, resolved, wanted):
        series = _series(records, key, mode)
        for series_mode, (xs, ys) in series.items():
            ax.plot(
                xs,
                ys,
                marker="o" if len(xs) < 30 else None,
                markersize=3,
                linewidth=1.2,
                label=series_mode or "?",
            )
        modes = list(series)
        title = (
            f"{label} ({modes[0]})"
            if len(modes) == 1 and modes[0] not in ("train", "") and mode is None
            else label
        )
        ax.set_title(title, loc="left", fontsize=10)
        ax.grid(True, alpha=0.3)
        if len(series) > 1:
            ax.legend(fontsize=8, loc="best")
    axes[-1].set_xlabel("step (training iterations)")
    shown = os.path.relpath(source)
    fig.suptitle(shown if not shown.startswith("..") else os.path.abspath(source), fontsize=9)
    folder = os.path.dirname(os.path.abspath(out))
    os.makedirs(folder, exist_ok=True)
    try:
        fig.savefig(out, dpi=dpi)
    except ValueError as exc:  # unknown format
        raise UsageError(
            f"cannot write {out}: {exc}", where="--out", hint="use a .png, .pdf or .svg file"
        ) from None
    return out
