"""Loading configs through the Rust core, with errors turned into :class:`ConfigError`.

The compiled ``torchkiln._native`` reads YAML/JSON/TOML, follows ``_base_`` chains, merges,
interpolates and applies overrides. This module gives it the two things only Python can do
(finding ``pkg::`` folders and running ``.py`` configs) and wraps the result in a
:class:`~torchkiln.config.config.Config`.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping
from types import ModuleType
from typing import Any

from torchkiln.config import codecache, filestamp, loadcache
from torchkiln.config.codecache import active_folder
from torchkiln.config.config import Config, ConfigDict
from torchkiln.config.filestamp import Stamp
from torchkiln.config.packages import resolve_package
from torchkiln.config.pyconfig import (
    ENV_TOKEN,
    PreparedConfig,
    clear_memory,
    plain_value,
    prepare_python,
    python_bases,
    run_prepared,
    run_python,
)
from torchkiln.errors import ConfigError, TorchkilnError

__all__ = [
    "clear_config_cache",
    "display_path",
    "dump_yaml",
    "escape_refs",
    "load",
    "loads",
    "native",
    "parse_yaml",
]

_SUFFIX_FORMATS = {".yaml": "yaml", ".yml": "yaml", ".json": "json", ".toml": "toml", ".py": "py"}


def native() -> ModuleType:
    """The compiled extension; a clear error when it has not been built."""
    try:
        from torchkiln import _native
    except ImportError as exc:
        raise TorchkilnError(
            f"the compiled extension torchkiln._native is missing ({exc})",
            hint="build it with `maturin develop --release` (or run `make test`, which does)",
        ) from None
    return _native


def display_path(path: str) -> str:
    """``path`` relative to the working directory when it lies below it, else unchanged."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


def _where_of(exc: BaseException) -> str | None:
    file = getattr(exc, "file", None)
    line = getattr(exc, "line", None)
    col = getattr(exc, "col", None)
    key_path = getattr(exc, "key_path", None)
    parts = []
    if file:
        place = display_path(str(file))
        if line:
            place += f":{line}"
            if col:
                place += f":{col}"
        parts.append(place)
    if key_path:
        parts.append(f"key {key_path}")
    return ", ".join(parts) or None


def _convert(exc: BaseException) -> TorchkilnError:
    """A ``_native.ConfigLoadError`` (or an error raised by a callback) as a TorchkilnError."""
    if isinstance(exc, TorchkilnError):
        return exc
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, TorchkilnError):
        return cause
    message = getattr(exc, "message", None) or str(exc)
    return ConfigError(message, where=_where_of(exc), hint=getattr(exc, "hint", None))


def _callbacks() -> dict[str, Any]:
    return {
        "resolve_package": resolve_package,
        "python_bases": python_bases,
        "run_python": run_python,
        "plain_value": plain_value,
    }


class _LoadRecorder:
    """The callbacks of one load, noting what the in-memory cache needs to know about it:
    the config packages it resolved and whether its ``.py`` files are deterministic. A
    ``.py`` file is read and compiled once per load: its bases are asked for first, then it
    runs."""

    __slots__ = ("cache_folder", "deterministic", "packages", "pending", "stamps")

    def __init__(self, cache_folder: str | None) -> None:
        self.cache_folder = cache_folder
        self.deterministic = True
        self.packages: dict[str, str] = {}
        self.pending: dict[str, PreparedConfig] = {}
        self.stamps: dict[str, Stamp | None] = {}

    def resolve_package(self, package: str) -> Any:
        folder = resolve_package(package)
        self.packages[package] = str(folder)
        return folder

    def python_bases(self, path: str) -> tuple[Any, bool]:
        prepared, stamp = prepare_python(path, self.cache_folder)
        self.deterministic = self.deterministic and prepared.deterministic
        self.pending[str(path)] = prepared
        self.stamps.setdefault(str(path), stamp)  # the first read is the one to check
        return prepared.bases, prepared.reads_base

    def run_python(self, path: str, base: Any) -> tuple[dict[str, Any], Any]:
        prepared = self.pending.pop(str(path), None)
        if prepared is None:
            return run_python(path, base)
        return run_prepared(str(path), base, prepared)

    def callbacks(self) -> dict[str, Any]:
        return {
            "resolve_package": self.resolve_package,
            "python_bases": self.python_bases,
            "run_python": self.run_python,
            "plain_value": plain_value,
        }


def _reads_environment(files: Iterable[str], overrides: Iterable[str]) -> bool:
    """Whether the overrides or a non-``.py`` file may read environment variables (``.py``
    files are checked when they are compiled)."""
    if any(ENV_TOKEN.search(text) for text in overrides):
        return True
    for name in files:
        if name.endswith(".py"):
            continue
        try:
            with open(name, encoding="utf-8", errors="replace") as fh:
                if ENV_TOKEN.search(fh.read()):
                    return True
        except OSError:
            return True
    return False


def _wrap(loaded: Any, filename: str | None) -> Config:
    # The native result builds a new ConfigDict tree on each call: the Config may own it.
    return Config._adopt(
        loaded.config_dicts(ConfigDict),
        filename=filename,
        provenance=loaded.provenance,
        referenced=loaded.referenced,
        files=loaded.files,
    )


def _engine_key_to_add(message: str, overrides: list[str]) -> list[str] | None:
    """When ``key=value`` failed because the config does not set ``key`` and the run schema
    defines it, the overrides with that one as ``+key=value`` (the engine's keys have
    defaults, so MMEngine lets them be set whether the config wrote them or not); else None.
    Only then: an override of a key the config has keeps its own text in the provenance.
    """
    from torchkiln.config.schema import is_engine_key

    for index, override in enumerate(overrides):
        if override.startswith(("+", "~")) or "=" not in override:
            continue
        if f"override '{override.strip()}'" not in message or "does not exist" not in message:
            continue
        key = override.split("=", 1)[0].strip()
        if key and is_engine_key(key.split(".")):
            return [*overrides[:index], f"+{override}", *overrides[index + 1 :]]
    return None


def load(path: str | os.PathLike[str], overrides: Iterable[str] = ()) -> Config:
    """Load a config file with its ``_base_`` chain, interpolation and overrides.

    :param path: a ``.yaml``/``.yml``, ``.json``, ``.toml`` or ``.py`` file.
    :param overrides: ``a.b=value`` (an existing key, or any key of the run schema such as
        ``load_from`` or ``val_cfg.fp16``, set or not), ``+a.b=value`` (a new key),
        ``~a.b`` (delete).
    :raises ConfigError: with file, line, column and key path when anything is wrong.
    """
    return _load(str(path), [str(o) for o in overrides], cached=True)


def _load(filename: str, overrides: list[str], *, cached: bool) -> Config:
    """:func:`load`; ``cached=False`` for a one-off file (neither kept nor written to disk)."""
    suffix = os.path.splitext(filename)[1].lower()
    if suffix not in _SUFFIX_FORMATS:
        raise ConfigError(
            f"unsupported config file type {suffix or '(none)'!r}",
            where=display_path(filename),
            hint="use .yaml, .yml, .json, .toml or .py",
        )
    if not os.path.isfile(filename):
        raise ConfigError(
            "config file not found", where=display_path(filename), hint="check the path"
        )
    absolute = os.path.abspath(filename)
    key = tuple(overrides)
    cache_folder = active_folder() if cached else None
    use_cache = cache_folder is not None
    if use_cache:
        kept = loadcache.lookup(absolute, key, resolve_package)
        if kept is not None:
            return _wrap(kept, absolute)
    racy_after = filestamp.racy_after()
    mod = native()
    while True:
        recorder = _LoadRecorder(cache_folder)
        try:
            loaded = mod.load_config(absolute, overrides, **recorder.callbacks())
        except (mod.ConfigLoadError, TorchkilnError) as exc:
            retry = _engine_key_to_add(str(exc), overrides)
            if retry is None:
                raise _convert(exc) from None
            overrides = retry
            continue
        if use_cache and recorder.deterministic and not _reads_environment(loaded.files, overrides):
            loadcache.store(absolute, key, loaded, recorder.packages, racy_after, recorder.stamps)
        return _wrap(loaded, absolute)


def clear_config_cache(*, disk: bool = False) -> None:
    """Forget the configs kept in memory: whole loads and compiled ``.py`` configs.

    :param disk: also delete the compiled ``.py`` configs stored on disk (under
        :func:`torchkiln.config.codecache.cache_dir`).
    """
    loadcache.clear()
    clear_memory()
    if disk:
        codecache.clear()


def loads(
    text: str,
    fmt: str = "yaml",
    overrides: Iterable[str] = (),
    *,
    base_dir: str | os.PathLike[str] | None = None,
) -> Config:
    """Load a config from text; relative ``_base_`` paths are taken from ``base_dir``.

    :param fmt: ``yaml``, ``json``, ``toml`` or ``py``.
    """
    fmt = {"yml": "yaml"}.get(fmt, fmt)
    overrides = [str(o) for o in overrides]
    if fmt == "py":
        # A .py config must be a file to run; put it where its relative bases resolve.
        folder = str(base_dir) if base_dir is not None else None
        fd, tmp = tempfile.mkstemp(suffix=".py", dir=folder, text=True)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            cfg = _load(tmp, overrides, cached=False)  # a new name each time: not worth keeping
        finally:
            os.unlink(tmp)
        object.__setattr__(cfg, "_filename", None)
        return cfg
    if fmt not in ("yaml", "json", "toml"):
        raise ConfigError(f"unsupported config format {fmt!r}", hint="use yaml, json, toml or py")
    mod = native()
    try:
        loaded = mod.loads_config(
            text,
            fmt,
            overrides,
            base_dir=None if base_dir is None else os.path.abspath(base_dir),
            **_callbacks(),
        )
    except (mod.ConfigLoadError, TorchkilnError) as exc:
        raise _convert(exc) from None
    return _wrap(loaded, None)


def dump_yaml(data: Mapping[str, Any], *, escape_refs: bool = False) -> str:
    """``data`` as YAML text that parses back to the same data.

    :param escape_refs: write a literal ``${`` or ``{{`` in a string value as ``\\${`` /
        ``\\{{``, so that *loading the text as a config* (which interpolates) gives the same
        data back; use it for config dumps.
    """
    return native().dump_yaml(data, escape_refs=escape_refs)


def escape_refs(value: Any) -> Any:
    """A copy of ``value`` with every string spelled as a config file must spell it.

    Strings get a backslash before each ``${`` and ``{{`` (the loader removes one); keys
    are kept (the loader never interpolates them). For dumps that are not YAML (JSON).
    """
    if isinstance(value, str):
        return native().escape_refs(value) if ("${" in value or "{{" in value) else value
    if isinstance(value, Mapping):
        return {key: escape_refs(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [escape_refs(item) for item in value]
    return value


def parse_yaml(text: str, filename: str = "<string>") -> Any:
    """Parse one YAML document (no ``_base_``, no interpolation)."""
    mod = native()
    try:
        return mod.parse_yaml(text, filename)
    except mod.ConfigLoadError as exc:
        raise _convert(exc) from None
