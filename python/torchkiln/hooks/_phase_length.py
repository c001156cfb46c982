"""How many batches a phase runs: the length of its dataloader, when it has one."""

from __future__ import annotations

from typing import Any

__all__ = ["loader_len"]


def loader_len(runner: Any, mode: str) -> int | None:
    """Batches per epoch of ``mode`` (``train``, ``val`` or ``test``), or None when unknown."""
    loop = getattr(runner, f"{mode}_loop", None)
    loader = getattr(loop, "dataloader", None)
    if loader is None:
        loader = getattr(runner, f"{mode}_dataloader", None)
    try:
        return len(loader)  # type: ignore[arg-type]  # TypeError is handled
    except TypeError:
        return None
