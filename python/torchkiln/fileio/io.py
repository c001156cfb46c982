"""File helpers that pick the storage backend by path: ``get``, ``put``, ``exists``, ...,
and ``load``/``dump`` for JSON, YAML and pickle files (chosen by the file suffix)."""

from __future__ import annotations

import importlib
import io
import json
import pickle
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from torchkiln.fileio.registry import get_file_backend

__all__ = [
    "copyfile",
    "copytree",
    "dict_from_file",
    "dump",
    "exists",
    "get",
    "get_local_path",
    "get_text",
    "isdir",
    "isfile",
    "join_path",
    "list_dir_or_file",
    "list_from_file",
    "load",
    "put",
    "put_text",
    "remove",
    "rmtree",
]

_FORMATS = {"json": "json", "yaml": "yaml", "yml": "yaml", "pkl": "pickle", "pickle": "pickle"}


def _yaml() -> Any:
    try:
        return importlib.import_module("yaml")
    except ImportError:
        raise ImportError(
            "reading and writing YAML with load/dump needs PyYAML: pip install pyyaml"
        ) from None


def _backend(path: str | Path, backend_args: dict[str, Any] | None) -> Any:
    return get_file_backend(path, backend_args=backend_args)


def get(filepath: str | Path, backend_args: dict[str, Any] | None = None) -> bytes:
    """The bytes of ``filepath``."""
    return _backend(filepath, backend_args).get(filepath)


def get_text(
    filepath: str | Path, encoding: str = "utf-8", backend_args: dict[str, Any] | None = None
) -> str:
    """The text of ``filepath``."""
    return _backend(filepath, backend_args).get_text(filepath, encoding)


def put(obj: bytes, filepath: str | Path, backend_args: dict[str, Any] | None = None) -> None:
    """Write bytes to ``filepath``."""
    _backend(filepath, backend_args).put(obj, filepath)


def put_text(obj: str, filepath: str | Path, backend_args: dict[str, Any] | None = None) -> None:
    """Write text to ``filepath``."""
    _backend(filepath, backend_args).put_text(obj, filepath)


def exists(filepath: str | Path, backend_args: dict[str, Any] | None = None) -> bool:
    """Whether ``filepath`` exists."""
    return bool(_backend(filepath, backend_args).exists(filepath))


def isdir(filepath: str | Path, backend_args: dict[str, Any] | None = None) -> bool:
    """Whether ``filepath`` is a folder."""
    return bool(_backend(filepath, backend_args).isdir(filepath))


def isfile(filepath: str | Path, backend_args: dict[str, Any] | None = None) -> bool:
    """Whether ``filepath`` is a file."""
    return bool(_backend(filepath, backend_args).isfile(filepath))


def join_path(
    filepath: str | Path, *filepaths: str | Path, backend_args: dict[str, Any] | None = None
) -> str:
    """The parts joined the backend's way."""
    return str(_backend(filepath, backend_args).join_path(filepath, *filepaths))


@contextmanager
def get_local_path(
    filepath: str | Path, backend_args: dict[str, Any] | None = None
) -> Generator[str | Path, None, None]:
    """A local path with ``filepath``'s content, for the ``with`` block."""
    with _backend(filepath, backend_args).get_local_path(filepath) as path:
        yield path


def remove(filepath: str | Path, backend_args: dict[str, Any] | None = None) -> None:
    """Delete the file ``filepath``."""
    _backend(filepath, backend_args).remove(filepath)


def rmtree(dir_path: str | Path, backend_args: dict[str, Any] | None = None) -> None:
    """Delete the folder ``dir_path`` and its content."""
    _backend(dir_path, backend_args).rmtree(dir_path)


def copyfile(src: str | Path, dst: str | Path, backend_args: dict[str, Any] | None = None) -> str:
    """Copy a file; return the destination path."""
    return str(_backend(src, backend_args).copyfile(src, dst))


def copytree(src: str | Path, dst: str | Path, backend_args: dict[str, Any] | None = None) -> str:
    """Copy a folder; return the destination path."""
    return str(_backend(src, backend_args).copytree(src, dst))


def list_dir_or_file(
    dir_path: str | Path,
    list_dir: bool = True,
    list_file: bool = True,
    suffix: str | tuple[str, ...] | None = None,
    recursive: bool = False,
    backend_args: dict[str, Any] | None = None,
) -> Iterator[str]:
    """Relative paths of the folders and/or files under ``dir_path``."""
    return _backend(dir_path, backend_args).list_dir_or_file(
        dir_path, list_dir, list_file, suffix, recursive
    )


def _format_of(file: Any, file_format: str | None) -> str:
    if file_format is None and isinstance(file, (str, Path)):
        file_format = str(file).rsplit(".", 1)[-1]
    fmt = _FORMATS.get((file_format or "").lower())
    if fmt is None:
        raise TypeError(
            f"unsupported file format {file_format!r} for {file!r}: use json, yaml/yml or "
            "pkl/pickle (or pass file_format=)"
        )
    return fmt


def load(
    file: str | Path | Any,
    file_format: str | None = None,
    backend_args: dict[str, Any] | None = None,
    **kwargs: Any,
) -> Any:
    """Load a JSON, YAML or pickle file (a path, or an open file object with ``file_format``).

    :raises TypeError: an unknown format.
    """
    fmt = _format_of(file, file_format)
    if isinstance(file, (str, Path)):
        data = get(file, backend_args)
        stream: Any = io.BytesIO(data) if fmt == "pickle" else io.StringIO(data.decode("utf-8"))
    else:
        stream = file
    if fmt == "json":
        return json.load(stream, **kwargs)
    if fmt == "yaml":
        return _yaml().safe_load(stream)
    return pickle.load(stream, **kwargs)


def dump(
    obj: Any,
    file: str | Path | Any = None,
    file_format: str | None = None,
    backend_args: dict[str, Any] | None = None,
    **kwargs: Any,
) -> Any:
    """Write ``obj`` as JSON, YAML or pickle to ``file``; without ``file``, return the
    serialised ``str`` (bytes for pickle).

    :raises TypeError: an unknown format (or neither ``file`` nor ``file_format``).
    """
    if file is None and file_format is None:
        raise TypeError("dump needs a file or a file_format (json, yaml or pickle)")
    fmt = _format_of(file, file_format)
    if fmt == "json":
        text: Any = json.dumps(obj, **kwargs)
    elif fmt == "yaml":
        text = _yaml().safe_dump(obj, **kwargs)
    else:
        text = pickle.dumps(obj, **kwargs)
    if file is None:
        return text
    if isinstance(file, (str, Path)):
        payload = text if isinstance(text, bytes) else text.encode("utf-8")
        put(payload, file, backend_args)
    else:
        file.write(text)
    return None


def list_from_file(
    filename: str | Path,
    prefix: str = "",
    offset: int = 0,
    max_num: int = 0,
    encoding: str = "utf-8",
    backend_args: dict[str, Any] | None = None,
) -> list[str]:
    """The lines of a text file, each with ``prefix`` added, skipping the first ``offset``
    and keeping at most ``max_num`` (0: all)."""
    lines = get_text(filename, encoding, backend_args).splitlines()[offset:]
    if max_num > 0:
        lines = lines[:max_num]
    return [prefix + line.rstrip("\n\r") for line in lines]


def dict_from_file(
    filename: str | Path,
    key_type: type = str,
    encoding: str = "utf-8",
    backend_args: dict[str, Any] | None = None,
) -> dict[Any, Any]:
    """A dict from a text file of ``key value [value ...]`` lines (several values: a list)."""
    mapping: dict[Any, Any] = {}
    for line in get_text(filename, encoding, backend_args).splitlines():
        items = line.strip().split()
        if not items:
            continue
        key = key_type(items[0])
        mapping[key] = items[1:] if len(items) > 2 else items[1]
    return mapping
