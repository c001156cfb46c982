"""MMEngine-style ``.py`` configs: run the file, keep its top-level plain values.

The file runs in a fresh namespace. MMEngine's ``{{_base_.a.b}}`` and ``{{$NAME:default}}``
tokens are not Python, so before running, each one outside a string literal becomes a string
holding the same text, which the loader resolves after merging (a whole-string reference
keeps the referenced value's type). Modules, functions, classes and private names (except
``_base_``) are left out; tuples become lists; a class or function nested inside a value
becomes its dotted import path, which registries accept as a ``type``.
"""

from __future__ import annotations

import io
import re
import tokenize
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torchkiln.errors import ConfigError

__all__ = ["load_python", "quote_base_tokens"]

_TOKEN = re.compile(r"\{\{\s*(?:_base_\.[A-Za-z0-9_.\[\]]+|\$[A-Za-z_][A-Za-z0-9_]*(?::[^}]*)?)\s*\}\}")


def _string_spans(source: str) -> list[tuple[int, int]]:
    """Character ranges of string literals in ``source``; empty when it does not tokenize."""
    line_starts = [0]
    for line in source.splitlines(keepends=True):
        line_starts.append(line_starts[-1] + len(line))
    spans: list[tuple[int, int]] = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.STRING:
                start = line_starts[tok.start[0] - 1] + tok.start[1]
                end = line_starts[tok.end[0] - 1] + tok.end[1]
                spans.append((start, end))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return []
    return spans


def quote_base_tokens(source: str) -> str:
    """Replace ``{{_base_.x}}`` / ``{{$NAME:default}}`` outside string literals by string literals."""
    if "{{" not in source:
        return source  # the common case: skip tokenizing
    spans = _string_spans(source)

    def inside_string(pos: int) -> bool:
        return any(start <= pos < end for start, end in spans)

    def replace(match: re.Match[str]) -> str:
        if inside_string(match.start()):
            return match.group(0)
        return repr(match.group(0).replace(" ", ""))

    return _TOKEN.sub(replace, source)


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _plain_value(value: Any, key_path: str, filename: str) -> Any:
    if type(value) in _SCALARS or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if not isinstance(k, str):
                if isinstance(k, (int, float, bool)):
                    k = str(k)
                else:
                    raise ConfigError(
                        f"config key {k!r} under {key_path!r} is not a string",
                        where=filename,
                        hint="config keys must be strings",
                    )
            out[k] = _plain_value(v, f"{key_path}.{k}", filename)
        return out
    if isinstance(value, (list, tuple)):
        return [_plain_value(v, f"{key_path}.{i}", filename) for i, v in enumerate(value)]
    if isinstance(value, (type, types.FunctionType, types.BuiltinFunctionType)):
        module = getattr(value, "__module__", None)
        qualname = getattr(value, "__qualname__", None)
        if module and qualname and "<" not in qualname and module != "__torchkiln_config__":
            return f"{module}.{qualname}"
    # numpy scalars and 0-d arrays: keep them as the plain scalar they hold
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "shape", None) == ():
        converted = item()
        if isinstance(converted, (bool, int, float, str)):
            return converted
    raise ConfigError(
        f"config value {key_path!r} is a {type(value).__name__}, which a config cannot hold",
        where=filename,
        hint="use plain values (dict, list, str, int, float, bool, None); write classes as their "
        "dotted import path, e.g. type='torch.nn.Linear'",
    )


def _is_collected(name: str, value: Any) -> bool:
    if name == "_base_":
        return True
    if name.startswith("_"):
        return False
    return not isinstance(value, (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, type))


# Compiled configs by (path, text): compiling is most of the cost of a .py config, and a
# process often loads the same bases again (bases shared by configs, tests, notebooks).
_CODE_CACHE: dict[tuple[str, str], types.CodeType] = {}
_CODE_CACHE_SIZE = 256


def _compiled(filename: str) -> types.CodeType:
    try:
        source = Path(filename).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file: {exc.strerror or exc}", where=filename) from None
    key = (filename, source)
    cached = _CODE_CACHE.get(key)
    if cached is not None:
        return cached
    if re.search(r"^\s*with\s+read_base\s*\(\s*\)\s*:", source, re.MULTILINE):
        raise ConfigError(
            "lazy-import style configs ('with read_base():') are not supported",
            where=filename,
            hint="write the bases as _base_ = [...] (MMEngine's plain .py style) or convert the config to YAML",
        )
    try:
        code = compile(quote_base_tokens(source), filename, "exec")
    except SyntaxError as exc:
        where = f"{filename}:{exc.lineno}" + (f":{exc.offset}" if exc.offset else "")
        raise ConfigError(f"invalid Python in config: {exc.msg}", where=where) from None
    if len(_CODE_CACHE) >= _CODE_CACHE_SIZE:
        _CODE_CACHE.pop(next(iter(_CODE_CACHE)))
    _CODE_CACHE[key] = code
    return code


def load_python(path: str) -> dict[str, Any]:
    """Run the ``.py`` config at ``path`` and return its top-level plain values, in order.

    :raises ConfigError: when the file does not run (with its line) or holds values that
        a config cannot (objects other than plain data).
    """
    filename = str(path)
    code = _compiled(filename)
    namespace: dict[str, Any] = {"__file__": filename, "__name__": "__torchkiln_config__", "__builtins__": __builtins__}
    try:
        exec(code, namespace)  # noqa: S102 - running the config is the point of a .py config
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure of user code is a config error
        line = _user_line(exc, filename)
        raise ConfigError(
            f"running the config failed: {type(exc).__name__}: {exc}",
            where=f"{filename}:{line}" if line else filename,
        ) from None
    out: dict[str, Any] = {}
    for name, value in namespace.items():
        if name.startswith("__"):
            continue
        if _is_collected(name, value):
            out[name] = _plain_value(value, name, filename)
    return out


def _user_line(exc: BaseException, filename: str) -> int | None:
    tb = exc.__traceback__
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
