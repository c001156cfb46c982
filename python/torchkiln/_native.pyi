"""Type stubs of ``torchkiln._native``, the compiled Rust core (``rust/kiln-py``).

Config engine
-------------
``load_config`` runs, in order: read the file (YAML/JSON/TOML by extension; ``.py`` through
``python_bases``, then ``run_python`` with its merged bases), load and merge its ``_base_``
files (later bases win, the file merges on top; MMEngine ``{{_base_.x}}`` and
``{{$ENV:default}}`` placeholders are substituted here), apply ``overrides``, then
interpolate ``${...}``. Overrides come before interpolation, so ``${a}`` sees an overridden
``a``.

Merge rules (MMEngine's): maps merge key by key, anything else (lists and tuples included)
replaces, and a child map whose ``_delete_`` is true replaces its base map. ``_delete_`` is
removed where a child map meets a base map and kept elsewhere; ``_base_`` never reaches the
result. Tuples stay tuples (``!!python/tuple [1, 2]`` in YAML).

Interpolation: a string that is exactly ``${a.b.0}`` takes the referenced value with its type
(maps and lists included); inside a longer string the value is written as Python's ``str()``
writes a scalar (``True``, ``None``, ``1e-05``) or in YAML flow style for lists and maps.
``${env:NAME}`` / ``${env:NAME,default}`` read the environment (a whole-string env reference
is typed like a YAML plain scalar). ``\\${`` is a literal ``${``.

Overrides: ``a.b.c=value`` sets an existing key (list items by index), ``+a.b=value`` sets a
key and creates missing maps on the way (``+list.N=value`` with ``N == len`` appends), ``~a.b``
deletes. Values are YAML flow text (``3``, ``0.1``, ``true``, ``null``, ``[1, 2]``,
``{a: 1}``, ``abc``); a bare comma list ``1,2`` is a list; a value replaces the old one
entirely (maps are not merged).

YAML follows the 1.2 core schema (``1e-4`` is a float, ``yes`` is a string); anchors,
aliases and ``<<`` merge keys are supported, tags other than the core ones are errors.
Keys are strings (dict keys of type int/float/bool/None given from Python become ``str()``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from os import PathLike
from typing import Any, TypeVar

_D = TypeVar("_D", bound=dict[str, Any])

class ConfigLoadError(ValueError):
    """A config could not be read, merged, overridden or interpolated.

    ``str(e)`` is the full report (location, message, key path, hint); the parts are
    attributes, each None when unknown (``message`` is always set).
    """

    message: str
    file: str | None
    line: int | None
    col: int | None
    key_path: str | None
    hint: str | None

class LoadedConfig:
    """The result of :func:`load_config` / :func:`loads_config`."""

    @property
    def data(self) -> dict[str, Any]:
        """The final config: plain dict/list/tuple/str/int/float/bool/None, insertion-ordered;
        a new tree on every access."""
    def config_dicts(self, dict_type: type[_D]) -> _D:
        """The final config as a new tree whose mappings are ``dict_type`` instances (a dict
        subclass; made without calling its ``__init__``, items set as on a plain dict)."""
    @property
    def provenance(self) -> dict[str, str]:
        """Dotted leaf path (list items by index) -> ``"/abs/a.yaml:12:3"``, ``"/abs/a.py"``
        (no position for Python configs) or ``"--cfg-options a.b=3"``. Empty lists and maps
        count as leaves. A value copied by a whole-string ``${...}`` is attributed to the
        referencing line."""
    @property
    def referenced(self) -> list[str]:
        """Dotted paths referenced by ``${...}`` and ``{{_base_....}}``, sorted, unique."""
    @property
    def files(self) -> list[str]:
        """Every file read (absolute paths), in the order read, each once."""

def load_config(
    path: str | PathLike[str],
    overrides: Sequence[str] | None = None,
    *,
    resolve_package: Callable[[str], str | PathLike[str] | None] | None = None,
    python_bases: Callable[[str], tuple[Any, bool]] | None = None,
    run_python: Callable[
        [str, dict[str, Any] | None], tuple[Mapping[str, Any], Mapping[str, Any] | None]
    ]
    | None = None,
    plain_value: Callable[[Any], Any] | None = None,
) -> LoadedConfig:
    """Load a config file with its ``_base_`` chain, overrides and interpolation.

    :param path: a ``.yaml``/``.yml``, ``.json``, ``.toml`` or ``.py`` file.
    :param overrides: ``--cfg-options`` items, applied in order.
    :param resolve_package: ``pkg -> directory`` for ``pkg::path/in/package.yaml`` bases;
        returning None means "unknown package".
    :param python_bases: ``path -> (bases, reads_base)``: a ``.py`` config's ``_base_`` entry
        (None, a path or a list of paths), read without running it, and whether the file
        reads ``_base_`` as a value.
    :param run_python: ``(path, base) -> (values, base)``: run a ``.py`` config with ``base``
        (its merged bases when it reads them, else None) bound to ``_base_``; returns its
        values and the bases as it left them (None when it did not read them).
    :param plain_value: ``obj -> plain value`` for objects in a ``.py`` config's values that
        are not plain data; an exception it raises becomes the error message.
    :raises ConfigLoadError: for any config mistake.
    :raises Exception: an exception raised by a callback propagates unchanged.
    """

def loads_config(
    text: str,
    fmt: str = "yaml",
    overrides: Sequence[str] | None = None,
    *,
    base_dir: str | PathLike[str] | None = None,
    resolve_package: Callable[[str], str | PathLike[str] | None] | None = None,
    python_bases: Callable[[str], tuple[Any, bool]] | None = None,
    run_python: Callable[
        [str, dict[str, Any] | None], tuple[Mapping[str, Any], Mapping[str, Any] | None]
    ]
    | None = None,
    plain_value: Callable[[Any], Any] | None = None,
) -> LoadedConfig:
    """Like :func:`load_config` for text in ``fmt`` (``yaml``/``yml``, ``json``, ``toml``).

    Relative ``_base_`` paths start at ``base_dir`` (the current directory when None); the
    text itself is named ``<string>`` in errors and provenance and is not listed in ``files``.

    :raises ValueError: for an unknown ``fmt``.
    """

def merge(base: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    """A new dict: ``child`` merged onto ``base`` with the config rules (``_delete_`` honoured
    where a map meets a map). Tuples stay tuples.

    :raises TypeError: for values a config cannot hold.
    """

def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """A new dict: ``data`` with ``overrides`` applied in order.

    :raises ConfigLoadError: for a bad override (with ``key_path`` and a did-you-mean hint).
    """

def interpolate(data: dict[str, Any]) -> dict[str, Any]:
    """A new dict: ``data`` with every ``${...}`` resolved.

    :raises ConfigLoadError: for a missing reference or a cycle (``key_path`` names the
        referencing key).
    """

def dump_yaml(data: object, *, escape_refs: bool = False) -> str:
    """Deterministic block-style YAML (keys in insertion order, two-space indents, strings
    quoted when needed) that :func:`parse_yaml` reads back to equal data.

    With ``escape_refs`` (a config dump) string values are written through
    :func:`escape_refs`, so that :func:`loads_config` reads the text back to equal data.
    """

def escape_refs(text: str) -> str:
    """``text`` as a config file must spell it: a backslash before every ``${`` and every
    ``{{``, which interpolation and MMEngine placeholder substitution each remove once."""

def parse_yaml(text: str, filename: str = "<string>") -> Any:
    """Parse one YAML document (no ``_base_``, no interpolation); an empty document is None.

    :raises ConfigLoadError: for invalid YAML, duplicate keys or a second document.
    """

class LogBuffer:
    """Per-key scalar histories in bounded rings of f64.

    ``update`` appends a value with its ``count`` in O(1): the value is the sum of ``count``
    samples (one sample when ``count`` is 1). The ring keeps the last ``capacity`` entries.
    ``mean`` is the mean per sample ``sum(v) / sum(c)`` of the last ``window`` entries (all
    retained ones when ``window`` is None; larger windows are clamped; NaN when the counts sum
    to 0); ``min``/``max``/``median`` ignore counts (the median of an even number of values is
    the mean of the middle two). ``global_mean`` and ``count`` cover every update ever made
    (``count`` saturates at ``2**63 - 1`` instead of wrapping). A key never updated raises
    ``KeyError``; a ``window`` below 1 or a negative ``count`` raises ``ValueError`` (and
    records nothing). Instances pickle (and copy) exactly, through :meth:`state_dict`.
    """

    def __init__(self, capacity: int = 1024) -> None: ...
    @property
    def capacity(self) -> int:
        """Entries kept per key."""
    def update(self, key: str, value: float, count: int = 1) -> None: ...
    def update_many(self, values: Mapping[str, float], count: int = 1) -> None: ...
    def update_rows(
        self,
        rows: Iterable[tuple[str, Any, int]],
        convert: Callable[[list[Any]], Sequence[float]] | None = None,
    ) -> None: ...
    def current(self, key: str) -> float: ...
    def mean(self, key: str, window: int | None = None) -> float: ...
    def min(self, key: str, window: int | None = None) -> float: ...
    def max(self, key: str, window: int | None = None) -> float: ...
    def median(self, key: str, window: int | None = None) -> float: ...
    def global_mean(self, key: str) -> float: ...
    def count(self, key: str) -> int: ...
    def keys(self) -> list[str]:
        """Keys in first-update order."""
    def data(self, key: str) -> tuple[list[float], list[int]]:
        """The retained values and counts, oldest first."""
    def key_state_dict(self, key: str) -> dict[str, Any]:
        """``{"values": [...], "counts": [...], "global_sum": float, "global_count": int}``."""
    def load_key_state_dict(self, key: str, state: Mapping[str, Any]) -> None:
        """Replace one key's history (the newest ``capacity`` entries are kept)."""
    def state_dict(self) -> dict[str, Any]:
        """``{"capacity": int, "keys": {key: key_state_dict(key)}}``: bounded by capacity."""
    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Replace every key's history by a :meth:`state_dict`."""
    def clear(self) -> None:
        """Forget every key."""
    def __getnewargs__(self) -> tuple[int]: ...
    def __getstate__(self) -> dict[str, Any]: ...
    def __setstate__(self, state: Mapping[str, Any]) -> None: ...
    def __contains__(self, key: object) -> bool: ...
    def __len__(self) -> int: ...

class JsonlSink:
    """A JSON-lines file written by a background thread.

    ``write`` only queues the line in memory (it never waits on the disk); a background
    thread appends queued lines every ``flush_interval_s`` seconds, or as soon as
    ``max_buffered`` lines are queued. The file is opened for appending.
    ``flush_interval_s`` must be a positive number of seconds a duration can hold (up to
    about 1.8e19), else ``ValueError``.
    """

    def __init__(
        self, path: str | PathLike[str], flush_interval_s: float = 1.0, max_buffered: int = 1000
    ) -> None: ...
    @property
    def path(self) -> str: ...
    @property
    def closed(self) -> bool: ...
    def write(self, line: str) -> None:
        """Queue one line (one JSON object; a trailing newline is added).

        :raises ValueError: when the sink is closed or the line holds a newline.
        :raises OSError: when an earlier background write failed.
        """
    def flush(self) -> None:
        """Write every queued line to disk and return when done."""
    def close(self) -> None:
        """Flush, stop the thread and close the file; calling it again does nothing."""
    def __enter__(self) -> JsonlSink: ...
    def __exit__(self, *exc: object) -> None: ...
