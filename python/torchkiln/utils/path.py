"""Folder helpers MMEngine code imports from ``mmengine.utils``: make a folder, list files."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

__all__ = ["mkdir_or_exist", "scandir"]


def mkdir_or_exist(dir_name: str | os.PathLike[str], mode: int = 0o777) -> None:
    """Create ``dir_name`` and its parents unless it exists (``''``: nothing to do).

    :param dir_name: the folder; ``~`` is expanded.
    :param mode: permission bits of created folders (masked by the umask).
    """
    if dir_name == "":
        return
    os.makedirs(os.path.expanduser(os.fspath(dir_name)), mode=mode, exist_ok=True)


def scandir(
    dir_path: str | os.PathLike[str],
    suffix: str | tuple[str, ...] | None = None,
    recursive: bool = False,
    case_sensitive: bool = True,
) -> Iterator[str]:
    """Yield the files under ``dir_path`` (paths relative to it), hidden files excluded.

    :param suffix: only files ending with this suffix (or one of these suffixes).
    :param recursive: descend into subfolders (hidden ones excluded).
    :param case_sensitive: compare suffixes case-sensitively.
    :raises TypeError: ``dir_path`` is not a path or ``suffix`` not a str or tuple of str.
    """
    if not isinstance(dir_path, (str, Path)):
        raise TypeError(f"scandir: dir_path must be a str or Path, got {type(dir_path).__name__}")
    if suffix is not None and not isinstance(suffix, (str, tuple)):
        raise TypeError(f"scandir: suffix must be a str or a tuple of str, got {suffix!r}")
    wanted = suffix
    if wanted is not None and not case_sensitive:
        wanted = wanted.lower() if isinstance(wanted, str) else tuple(s.lower() for s in wanted)
    root = os.fspath(dir_path)

    def walk(folder: str) -> Iterator[str]:
        for entry in os.scandir(folder):
            if entry.name.startswith("."):
                continue
            if entry.is_file():
                rel = os.path.relpath(entry.path, root)
                name = rel if case_sensitive else rel.lower()
                if wanted is None or name.endswith(wanted):
                    yield rel
            elif recursive and entry.is_dir():
                yield from walk(entry.path)

    return walk(root)
