"""The ``Config`` object: a loaded configuration with attribute access and its provenance.

``Config`` wraps one plain nested dict. Nested dicts are :class:`ConfigDict` (a ``dict``
subclass with attribute access), so runner code can pass them to registries and to
``**kwargs`` unchanged; lists and tuples keep their kind and elements, with dicts inside
them converted too.
Nothing here imports torch.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from pathlib import Path
from typing import Any

from torchkiln.errors import ConfigError, did_you_mean

__all__ = ["Config", "ConfigDict"]


def _wrap(value: Any) -> Any:
    """Turn plain dicts (also inside lists and tuples) into :class:`ConfigDict`.

    Runs once per loaded config over the whole tree, so it avoids ``ConfigDict.__setitem__``
    and builds the dicts directly (about 3x faster on a detection-sized config). A
    ``ConfigDict`` is kept as it is (a reference, as MMEngine keeps it); lists are new lists
    and tuples new tuples.
    """
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is dict or (kind is not ConfigDict and isinstance(value, Mapping)):
        out = _new_config_dict()
        for key, item in value.items():
            _dict_setitem(out, key, _wrap(item) if type(item) not in _SCALARS else item)
        return out
    if kind is list:
        return [_wrap(v) for v in value]
    if kind is tuple:
        return tuple([_wrap(v) for v in value])
    return value


def _plain(value: Any) -> Any:
    """Deep copy ``value`` into plain dicts, lists and tuples."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if isinstance(value, Mapping):
        return {k: (v if type(v) in _SCALARS else _plain(v)) for k, v in value.items()}
    if kind is tuple:
        return tuple([_plain(v) for v in value])
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return copy.deepcopy(value)


_dict_setitem = dict.__setitem__
_SCALARS = frozenset({str, int, float, bool, type(None)})


class ConfigDict(dict):
    """A ``dict`` whose keys are also attributes; nested dicts become ``ConfigDict`` too.

    Item access always works; attribute access works for keys that are valid identifiers
    and do not shadow a ``dict`` method (``items``, ``keys``, ``copy``, ...).
    """

    __slots__ = ()

    def __init__(
        self, data: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None, **kwargs: Any
    ):
        super().__init__()
        if data is not None:
            self.update(data)
        if kwargs:
            self.update(kwargs)

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, _wrap(value))

    def update(self, *args: Any, **kwargs: Any) -> None:
        """Like ``dict.update``; nested dicts are converted to ``ConfigDict``."""
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def setdefault(self, key: str, default: Any = None) -> Any:
        """Like ``dict.setdefault``; a dict default is converted to ``ConfigDict``."""
        if key not in self:
            self[key] = default
        return self[key]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            suggestion = did_you_mean(name, [str(k) for k in self])
            raise AttributeError(
                f"config has no key {name!r}" + (f"; {suggestion}" if suggestion else "")
            ) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __copy__(self) -> ConfigDict:
        return ConfigDict(dict.items(self))

    def __deepcopy__(self, memo: dict[int, Any]) -> ConfigDict:
        out = ConfigDict()
        memo[id(self)] = out
        for key, value in dict.items(self):
            dict.__setitem__(out, copy.deepcopy(key, memo), copy.deepcopy(value, memo))
        return out

    def __reduce__(self) -> tuple[Any, ...]:
        return (ConfigDict, (dict(self),))

    def to_dict(self) -> dict[str, Any]:
        """A plain deep copy (``dict``, ``list`` and ``tuple`` only)."""
        return _plain(self)

    def copy(self) -> ConfigDict:
        """A shallow copy, still a ``ConfigDict``."""
        return self.__copy__()


class Config(MutableMapping[str, Any]):
    """A loaded configuration: a mapping with attribute access, its source files and provenance.

    :param cfg_dict: the configuration data (copied into :class:`ConfigDict`).
    :param filename: the file it was loaded from, if any.
    :param provenance: ``{"dotted.key": "file:line:col" | "--cfg-options ..."}`` per leaf.
    :param referenced: dotted key paths referenced by interpolation while loading.
    :param files: every file read while loading (the file and its bases).

    Build one with :meth:`fromfile` (or :func:`torchkiln.config.load`) or from a dict.
    """

    def __init__(
        self,
        cfg_dict: Mapping[str, Any] | None = None,
        *,
        filename: str | None = None,
        provenance: Mapping[str, str] | None = None,
        referenced: Iterable[str] = (),
        files: Iterable[str] = (),
    ) -> None:
        if cfg_dict is None:
            cfg_dict = {}
        if isinstance(cfg_dict, Config):
            cfg_dict = cfg_dict._data
        if not isinstance(cfg_dict, Mapping):
            raise ConfigError(f"a config must be a mapping, got {type(cfg_dict).__name__}")
        data = _new_config_dict()
        for key, value in cfg_dict.items():
            _dict_setitem(data, key, _wrap(value))
        object.__setattr__(self, "_data", data)
        object.__setattr__(self, "_filename", None if filename is None else str(filename))
        object.__setattr__(self, "_provenance", dict(provenance or {}))
        object.__setattr__(self, "_referenced", list(referenced))
        object.__setattr__(self, "_files", [str(f) for f in files])

    # ------------------------------------------------------------------ construction
    @classmethod
    def _adopt(
        cls,
        data: ConfigDict,
        *,
        filename: str | None,
        provenance: Mapping[str, str],
        referenced: Iterable[str],
        files: Iterable[str],
    ) -> Config:
        """A config owning ``data``, a new tree already made of :class:`ConfigDict` (the
        loader builds it so; nothing else may hold it): taken as it is, not copied."""
        cfg = cls.__new__(cls)
        object.__setattr__(cfg, "_data", data)
        object.__setattr__(cfg, "_filename", filename)
        object.__setattr__(cfg, "_provenance", dict(provenance))
        object.__setattr__(cfg, "_referenced", list(referenced))
        object.__setattr__(cfg, "_files", list(files))
        return cfg

    @classmethod
    def fromfile(
        cls,
        filename: str | Path,
        cfg_options: Mapping[str, Any] | Iterable[str] | None = None,
    ) -> Config:
        """Load a YAML, JSON, TOML or MMEngine-style ``.py`` config, with its ``_base_`` chain.

        :param filename: the config file.
        :param cfg_options: overrides, either ``["a.b=1", "+c=2", "~d"]`` (the CLI syntax,
            strict about unknown keys) or ``{"a.b": 1}`` (merged like MMEngine's
            ``merge_from_dict``: missing keys are created, dicts merge).
        :raises ConfigError: with file, line and key path when the config is invalid.
        """
        from torchkiln.config.loader import load

        if cfg_options is None or isinstance(cfg_options, Mapping):
            cfg = load(filename)
            if cfg_options:
                cfg.merge_from_dict(cfg_options)
            return cfg
        if isinstance(cfg_options, str):
            cfg_options = [cfg_options]
        return load(filename, list(cfg_options))

    @classmethod
    def fromstring(cls, text: str, file_format: str = ".yaml") -> Config:
        """Load a config from text; ``file_format`` is ``.yaml``, ``.json``, ``.toml`` or ``.py``."""
        from torchkiln.config.loader import loads

        return loads(text, file_format.lstrip(".").lower())

    # ------------------------------------------------------------------ metadata
    @property
    def filename(self) -> str | None:
        """The file this config was loaded from, or None."""
        return self._filename

    @property
    def provenance(self) -> dict[str, str]:
        """Where each leaf came from: ``{"a.b": "/abs/file.yaml:3:5"}`` or the override."""
        return self._provenance

    @property
    def referenced(self) -> list[str]:
        """Dotted key paths that interpolation referenced while loading."""
        return self._referenced

    @property
    def files(self) -> list[str]:
        """Every file read while loading, the config itself and its bases."""
        return self._files

    # ------------------------------------------------------------------ mapping protocol
    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._data[key] = value

    def __delitem__(self, key: str) -> None:
        del self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._data, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            raise AttributeError(f"cannot set private attribute {name!r} on a Config")
        self._data[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self._data[name]
        except KeyError:
            raise AttributeError(name) from None

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Config):
            return self._data == other._data
        if isinstance(other, Mapping):
            return self._data == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, so unhashable

    def __repr__(self) -> str:
        where = f" from {self._filename!r}" if self._filename else ""
        return f"Config{where}: {dict(self._data)!r}"

    # ------------------------------------------------------------------ copying
    def _with_data(self, data: Mapping[str, Any]) -> Config:
        return Config(
            data,
            filename=self._filename,
            provenance=self._provenance,
            referenced=self._referenced,
            files=self._files,
        )

    def __copy__(self) -> Config:
        return self._with_data(self._data)

    def __deepcopy__(self, memo: dict[int, Any]) -> Config:
        return self._with_data(copy.deepcopy(self._data, memo))

    def __getstate__(self) -> dict[str, Any]:
        return {
            "data": self._data.to_dict(),
            "filename": self._filename,
            "provenance": self._provenance,
            "referenced": self._referenced,
            "files": self._files,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        object.__setattr__(self, "_data", ConfigDict(state["data"]))
        object.__setattr__(self, "_filename", state["filename"])
        object.__setattr__(self, "_provenance", dict(state["provenance"]))
        object.__setattr__(self, "_referenced", list(state["referenced"]))
        object.__setattr__(self, "_files", list(state["files"]))

    def copy(self) -> Config:
        """A deep copy: changing the copy never changes this config."""
        return copy.deepcopy(self)

    def to_dict(self) -> dict[str, Any]:
        """The configuration as plain nested ``dict``, ``list`` and ``tuple`` (a deep copy)."""
        return self._data.to_dict()

    # ------------------------------------------------------------------ changing
    def merge_from_dict(self, options: Mapping[str, Any], allow_list_keys: bool = True) -> None:
        """Merge ``{"a.b.c": value}`` into this config, like MMEngine's ``merge_from_dict``.

        Missing keys are created; a dict value merges into an existing dict (``_delete_:
        true`` inside it replaces instead); a numeric key segment indexes a list when
        ``allow_list_keys``. The changed leaves get the provenance ``merge_from_dict``.

        :raises ConfigError: when a path goes through a value that is neither dict nor list,
            or a list index is out of range.
        """
        for dotted, value in options.items():
            self._merge_one(str(dotted), value, allow_list_keys)

    def _merge_one(self, dotted: str, value: Any, allow_list_keys: bool) -> None:
        parts = dotted.split(".")
        node: Any = self._data
        for part in parts[:-1]:
            node = _child(node, part, dotted, allow_list_keys)
        last = parts[-1]
        if isinstance(node, list):
            index = _list_index(node, last, dotted, allow_list_keys)
            old = node[index]
            node[index] = _merged(old, value)
        elif last in node:
            node[last] = _merged(node[last], value)
        else:
            node[last] = _wrap(copy.deepcopy(value))
        for leaf in _leaf_paths(value, dotted):
            self._provenance[leaf] = "merge_from_dict"

    # ------------------------------------------------------------------ output
    def dump(self, file: str | Path | None = None) -> str:
        """The configuration as YAML text; also written to ``file`` when given.

        A ``.json`` file gets JSON instead. Loading the dumped text gives this config back:
        a literal ``${`` or ``{{`` in a string is written as ``\\${`` / ``\\{{``, so the
        loader does not take it for a reference or an MMEngine placeholder.
        """
        if file is not None and str(file).endswith(".json"):
            import json

            from torchkiln.config.loader import escape_refs

            text = json.dumps(escape_refs(self.to_dict()), indent=2) + "\n"
        else:
            from torchkiln.config.loader import dump_yaml

            text = dump_yaml(self.to_dict(), escape_refs=True)
        if file is not None:
            path = Path(file)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        return text

    @property
    def pretty_text(self) -> str:
        """The configuration as YAML text (the same as :meth:`dump`)."""
        return self.dump()

    @property
    def text(self) -> str:
        """The text of the file this config was loaded from, or the YAML dump."""
        if self._filename and Path(self._filename).is_file():
            return Path(self._filename).read_text(encoding="utf-8")
        return self.dump()


def _child(node: Any, part: str, dotted: str, allow_list_keys: bool) -> Any:
    """The container under ``node[part]``, creating an empty dict there when needed."""
    if isinstance(node, list):
        return node[_list_index(node, part, dotted, allow_list_keys)]
    if isinstance(node, MutableMapping):
        child = node.get(part)
        if not isinstance(child, (MutableMapping, list)):
            node[part] = ConfigDict()
            child = node[part]
        return child
    raise ConfigError(
        f"cannot set {dotted!r}: {part!r} is under a value that is neither dict nor list"
    )


def _leaf_paths(value: Any, prefix: str) -> list[str]:
    """Dotted paths of the leaves of ``value`` (itself when it is a scalar or empty)."""
    if isinstance(value, Mapping) and value:
        return [
            p for k, v in value.items() if k != "_delete_" for p in _leaf_paths(v, f"{prefix}.{k}")
        ]
    if isinstance(value, (list, tuple)) and value:
        return [p for i, v in enumerate(value) for p in _leaf_paths(v, f"{prefix}.{i}")]
    return [prefix]


def _list_index(node: list[Any], part: str, dotted: str, allow_list_keys: bool) -> int:
    if not allow_list_keys or not part.lstrip("-").isdigit():
        raise ConfigError(
            f"cannot set {dotted!r}: {part!r} indexes a list",
            hint="use a numeric index such as 'a.0.b'"
            if allow_list_keys
            else "allow_list_keys is off",
        )
    index = int(part)
    if not -len(node) <= index < len(node):
        raise ConfigError(
            f"cannot set {dotted!r}: index {index} is out of range for a list of {len(node)}"
        )
    return index


def _merged(old: Any, new: Any) -> Any:
    """``new`` merged into the existing value ``old``; the file merge's rules.

    As in :func:`torchkiln._native.merge` (and MMEngine): a dict meeting a dict merges into
    it unless its ``_delete_`` is true, in which case it replaces it; a dict meeting an
    existing key loses its ``_delete_``, while dicts below it and dicts set at new keys keep
    theirs.
    """
    if isinstance(new, Mapping):
        new = dict(new)
        if not new.pop("_delete_", False) and isinstance(old, Mapping):
            out = ConfigDict(old)
            for key, value in new.items():
                out[key] = _merged(out[key], value) if key in out else _wrap(copy.deepcopy(value))
            return out
    return _wrap(copy.deepcopy(new))


def _new_config_dict() -> ConfigDict:
    return ConfigDict.__new__(ConfigDict)
