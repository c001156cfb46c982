"""Stopping DataLoader worker processes when a phase ends, normally or by an error.

Workers ignore the stop signals (see :mod:`torchkiln.data.builder`), so they cannot be left
for interpreter exit: ``multiprocessing`` would send them SIGTERM and wait for them forever.
A phase that ends by an error keeps its iterator alive through the traceback, and persistent
workers live as long as their DataLoader; both are shut down here instead.
"""

from __future__ import annotations

from typing import Any

__all__ = ["shutdown_workers"]


def shutdown_workers(obj: Any) -> None:
    """Stop the worker processes behind a DataLoader iterator, or behind a DataLoader's
    persistent iterator (the loader then starts fresh workers if it is iterated again)."""
    if obj is None:
        return
    # torch's own clean-up (it is what the iterator's __del__ calls); private, but public
    # API offers no way to end workers while a reference to the iterator remains.
    stop = getattr(obj, "_shutdown_workers", None)
    if callable(stop):
        stop()
        return
    iterator = getattr(obj, "__dict__", {}).get("_iterator")
    stop = getattr(iterator, "_shutdown_workers", None)
    if callable(stop):
        stop()
        obj._iterator = None
