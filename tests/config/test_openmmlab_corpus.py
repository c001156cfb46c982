"""Real OpenMMLab configs load exactly as MMEngine loads them (tuples included).

The corpus is ``shared/openmmlab-configs/mmpretrain`` (unmodified configs of a real project)
in the repository or a folder above it; MMEngine comes with the ``dev`` extra. The default
run checks a fixed sample: every entry config that reads or changes ``_base_`` as a value,
and every 12th of the rest; ``python bench/config_load.py --corpus-only`` checks them all.
Configs MMEngine itself cannot load are skipped.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import pytest
from torchkiln.config import load

ROOT = Path(__file__).resolve().parents[2]
CORPUS = next(
    (
        folder / "shared" / "openmmlab-configs" / "mmpretrain"
        for folder in (ROOT, *ROOT.parents)
        if (folder / "shared" / "openmmlab-configs" / "mmpretrain").is_dir()
    ),
    None,
)
# `_base_.x` or `_base_[...]` in code; not `{{_base_.x}}` and not a `.../_base_/...` path
_READS_BASE = re.compile(r"(?<![{\w])_base_\s*[.\[]")


def _sample() -> list[Path]:
    if CORPUS is None:
        return []
    entries = sorted(p for p in CORPUS.rglob("*.py") if "_base_" not in p.relative_to(CORPUS).parts)
    uses_base = [p for p in entries if _READS_BASE.search(p.read_text(encoding="utf-8"))]
    rest = [p for p in entries if p not in uses_base]
    return uses_base + rest[::12]


def differences(ours: Any, theirs: Any, path: str = "") -> list[str]:
    """Readable lines for every place where ``ours`` and ``theirs`` differ (type included)."""
    where = path or "(top level)"
    if type(ours) is not type(theirs) and not (isinstance(ours, dict) and isinstance(theirs, dict)):
        return [
            f"{where}: torchkiln {ours!r} ({type(ours).__name__}) != mmengine {theirs!r} ({type(theirs).__name__})"
        ]
    if isinstance(ours, dict):
        out = []
        for key in list(theirs) + [k for k in ours if k not in theirs]:
            sub = f"{path}.{key}" if path else str(key)
            if key not in ours:
                out.append(f"{sub}: missing in torchkiln (mmengine {theirs[key]!r})")
            elif key not in theirs:
                out.append(f"{sub}: only in torchkiln ({ours[key]!r})")
            else:
                out.extend(differences(ours[key], theirs[key], sub))
        return out
    if isinstance(ours, (list, tuple)):
        if len(ours) != len(theirs):
            return [
                f"{where}: torchkiln has {len(ours)} items, mmengine {len(theirs)}: {ours!r} != {theirs!r}"
            ]
        return [
            line
            for i, (a, b) in enumerate(zip(ours, theirs))
            for line in differences(a, b, f"{path}.{i}")
        ]
    return [] if ours == theirs else [f"{where}: torchkiln {ours!r} != mmengine {theirs!r}"]


def test_differences_are_readable() -> None:
    ours = {"model": {"scale": [1, 2], "n": 1, "extra": 0}}
    theirs = {"model": {"scale": (1, 2), "n": 2}}
    assert differences(ours, theirs) == [
        "model.scale: torchkiln [1, 2] (list) != mmengine (1, 2) (tuple)",
        "model.n: torchkiln 1 != mmengine 2",
        "model.extra: only in torchkiln (0)",
    ]


@pytest.mark.skipif(CORPUS is None, reason="the OpenMMLab config corpus is not here")
@pytest.mark.parametrize(
    "path", _sample(), ids=lambda p: str(p.relative_to(CORPUS)) if CORPUS else str(p)
)
def test_corpus_config_loads_as_in_mmengine(path: Path) -> None:
    mmengine_config = pytest.importorskip("mmengine.config")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            theirs = mmengine_config.Config.fromfile(
                str(path), import_custom_modules=False
            ).to_dict()
        except Exception as exc:  # noqa: BLE001 - MMEngine's own failures are not ours to match
            pytest.skip(f"MMEngine cannot load it: {type(exc).__name__}: {exc}")
    ours = load(path).to_dict()
    diff = differences(ours, theirs)
    assert not diff, "\n".join(diff)
