"""MMEngine-style ``.py`` configs: read their ``_base_`` list, then run them with the bases.

A ``.py`` config loads in two steps, both called by the Rust core:

1. :func:`python_bases` reads the file's ``_base_ = ...`` entry without running the file (the
   first top-level assignment, evaluated on its own, as MMEngine does);
2. after the core has loaded and merged those bases, :func:`run_python` runs the file with
   ``_base_`` bound to the merged bases as a :class:`~torchkiln.config.config.ConfigDict`.
   The file reads them (``_base_.model``, ``_base_['x']``) and may change them in place
   (``_base_.train_dataloader.dataset.pipeline = ...``); what it changed is what it inherits.
   Values taken from ``_base_`` are references, not copies, exactly like in MMEngine.

The file's top-level names are its values, in the order they were first assigned; names
starting with ``__``, modules, functions and classes are left out. Tuples stay tuples.
MMEngine's text tokens work too: ``{{_base_.a.b}}`` and ``{{$NAME:default}}`` outside string
literals become strings the core resolves after merging, and ``{{fileDirname}}``,
``{{fileBasename}}``, ``{{fileBasenameNoExtension}}`` and ``{{fileExtname}}`` are replaced
by the file's own name. New-style configs (``with read_base():``, relative imports) are
rejected with a message saying what to write instead.
"""

from __future__ import annotations

import io
import opcode
import os
import re
import tokenize
import types
from collections.abc import Mapping
from typing import Any, NamedTuple

from torchkiln.config import codecache, filestamp
from torchkiln.config.config import ConfigDict, _new_config_dict, _wrap
from torchkiln.config.filestamp import Stamp
from torchkiln.errors import ConfigError

__all__ = [
    "ENV_TOKEN",
    "PreparedConfig",
    "clear_memory",
    "plain_value",
    "prepare_python",
    "python_bases",
    "quote_base_tokens",
    "run_prepared",
    "run_python",
]

_TOKEN = re.compile(
    r"\{\{\s*(?:_base_\.[A-Za-z0-9_.\[\]]+|\$[A-Za-z_][A-Za-z0-9_]*(?::[^}]*)?)\s*\}\}"
)
_PREDEFINED = re.compile(
    r"\{\{\s*(fileDirname|fileBasename|fileBasenameNoExtension|fileExtname)\s*\}\}"
)
_BASE_ASSIGN = re.compile(r"^([ \t]*)_base_[ \t]*=(?!=)", re.MULTILINE)
_BASE_USE = re.compile(r"\b_base_\b")
_NEW_STYLE = re.compile(r"^[ \t]*(?:with[ \t]+read_base[ \t]*\(|from[ \t]+\.)", re.MULTILINE)


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


def _predefined(source: str, filename: str) -> str:
    """``{{fileDirname}}`` and the other file-name tokens replaced by their text."""
    if "{{" not in source:
        return source
    base = os.path.basename(filename)
    values = {
        "fileDirname": os.path.dirname(filename),
        "fileBasename": base,
        "fileBasenameNoExtension": os.path.splitext(base)[0],
        "fileExtname": os.path.splitext(base)[1],
    }
    return _PREDEFINED.sub(lambda m: values[m.group(1)], source)


class PreparedConfig(NamedTuple):
    """A ``.py`` config ready to run: its code (``_base_`` statements removed), its
    ``_base_`` entry, whether it reads ``_base_`` as a value, and whether running it can
    only depend on its bases: it imports nothing but ``copy`` and ``math``, calls no builtin
    with effects (``open``, ``print``, ``eval``, ...) and reads no environment variable."""

    code: types.CodeType
    bases: Any
    reads_base: bool
    deterministic: bool


# Prepared configs by path (with the file's stamp and digest): compiling is most of the cost
# of a .py config, and a process often loads the same bases again (bases shared by configs,
# tests, notebooks). Compiled code also lives on disk (codecache), like Python's .pyc files.
_CACHE: dict[str, codecache.Stored] = {}
_CACHE_SIZE = 512

# Text that makes a config read the environment: {{$NAME}} and ${env:NAME}.
ENV_TOKEN = re.compile(r"\{\{\s*\$|env:")
_EFFECTFUL_NAMES = frozenset(
    {
        "__import__", "open", "eval", "exec", "compile", "input", "print", "globals", "locals",
        "vars", "breakpoint", "exit", "quit", "help", "id", "hash", "getattr", "setattr",
        "delattr", "__builtins__", "__loader__", "__spec__",
    }
)  # fmt: skip
_PURE_MODULES = frozenset({"copy", "math"})


def _code_objects(code: types.CodeType) -> list[types.CodeType]:
    found = [code]
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            found.extend(_code_objects(const))
    return found


def _is_deterministic(code: types.CodeType, source: str) -> bool:
    """Whether running ``code`` can only depend on its bases (see :class:`PreparedConfig`)."""
    if ENV_TOKEN.search(source):
        return False
    import_op = opcode.opmap["IMPORT_NAME"]
    for co in _code_objects(code):
        if not _EFFECTFUL_NAMES.isdisjoint(co.co_names):
            return False
        if import_op in co.co_code[::2]:
            import dis

            for ins in dis.get_instructions(co):
                if (
                    ins.opname == "IMPORT_NAME"
                    and str(ins.argval).split(".")[0] not in _PURE_MODULES
                ):
                    return False
    return True


def _read_bytes(filename: str) -> bytes:
    try:
        return codecache.read_bytes(filename)
    except OSError as exc:
        raise ConfigError(
            f"cannot read config file: {exc.strerror or exc}", where=filename
        ) from None


def _decode(data: bytes, filename: str) -> str:
    nul = data.find(b"\0")
    if nul >= 0:
        raise ConfigError(
            f"the config file holds binary data (a NUL byte at offset {nul}), not Python text",
            where=filename,
            hint="check that the path names a config file",
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"the config file is not UTF-8 text (invalid byte at offset {exc.start})",
            where=filename,
            hint="save the config as UTF-8, or check that the path names a config file",
        ) from None


def _statement_end(lines: list[str], first: int, expr_start: str) -> tuple[int, str]:
    """The index after the last line of the assignment starting on ``lines[first]`` and its
    value expression (``expr_start`` is the text after ``=`` on that line)."""
    text = expr_start
    for last in range(first, len(lines)):
        if last > first:
            text += lines[last]
        try:
            compile(text.strip() or "None", "<_base_>", "eval")
        except SyntaxError:
            continue
        return last + 1, text
    return first + 1, expr_start


def _prepare_entry(filename: str, folder: str | None) -> codecache.Stored:
    """The prepared config at ``filename`` with the file's stamp (``None`` when too fresh to
    trust) and digest: from memory, from the disk cache in ``folder`` (``None``: no disk
    cache), or compiled.

    A kept one is used while the file's stamp is the one recorded (when it was old enough
    to trust), else while its bytes have the recorded digest.
    """
    try:
        current = filestamp.stamp(filename)
    except OSError:
        current = None  # reading it reports the problem
    trusted = current is not None and current[0] < filestamp.racy_after()
    kept = _CACHE.get(filename)
    if kept is not None and trusted and kept.stamp == current:
        return kept
    stored = codecache.read(folder, filename) if kept is None and folder else None
    if stored is not None and trusted and stored.stamp == current and _valid(stored.value):
        entry = codecache.Stored(stored.stamp, stored.source_digest, PreparedConfig(*stored.value))
        _keep(filename, entry)
        return entry
    data = _read_bytes(filename)
    source_digest = codecache.digest(data)
    for candidate in (kept, stored):
        if (
            candidate is not None
            and candidate.source_digest == source_digest
            and _valid(candidate.value)
        ):
            prepared = PreparedConfig(*candidate.value)
            break
    else:
        prepared = _compile(_decode(data, filename), filename)
    entry = codecache.Stored(current if trusted else None, source_digest, prepared)
    known = kept or stored  # what the disk holds, as far as this process knows
    changed = known is None or known.stamp != entry.stamp or known.source_digest != source_digest
    if folder and changed:
        codecache.write(folder, filename, entry._replace(value=tuple(prepared)))
    _keep(filename, entry)
    return entry


def _prepare(filename: str, folder: str | None) -> PreparedConfig:
    prepared: PreparedConfig = _prepare_entry(filename, folder).value
    return prepared


def clear_memory() -> None:
    """Forget the prepared configs kept in memory (the disk cache stays)."""
    _CACHE.clear()


def _valid(value: Any) -> bool:
    return isinstance(value, tuple) and len(value) == 4 and isinstance(value[0], types.CodeType)


def _keep(filename: str, entry: codecache.Stored) -> None:
    _CACHE.pop(filename, None)
    if len(_CACHE) >= _CACHE_SIZE:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[filename] = entry


def _compile(text: str, filename: str) -> PreparedConfig:
    source = text
    if "read_base" in source or "from ." in source or "from\t." in source:
        found = _NEW_STYLE.search(source)
        if found:
            line = source.count("\n", 0, found.start()) + 1
            raise ConfigError(
                "MMEngine's new-style (pure Python) configs are not supported: "
                "'with read_base():' and relative imports load bases as Python modules",
                where=f"{filename}:{line}",
                hint="write the bases as _base_ = ['../_base_/x.py', ...] and classes as import paths, "
                "e.g. type='torch.optim.SGD' (see docs/migration.md), or convert the config to YAML",
            )
    source = quote_base_tokens(_predefined(source, filename))
    bases: Any = None
    reads_base = False
    if "_base_" in source:
        lines = source.splitlines(keepends=True)
        line_starts = [0]
        for text in lines:
            line_starts.append(line_starts[-1] + len(text))
        blanked: dict[int, str] = {}
        for match in _BASE_ASSIGN.finditer(source):
            first = source.count("\n", 0, match.start())
            offset = match.end() - line_starts[first]
            end, expr = _statement_end(lines, first, lines[first][offset:])
            if bases is None and not match.group(1):
                bases = _eval_bases(expr, filename, first + 1)
            # MMEngine drops every `_base_ = ...` statement; `pass` keeps blocks and line numbers.
            blanked[first] = match.group(1) + "pass\n"
            for i in range(first + 1, end):
                blanked[i] = "\n"
        rest = "".join(blanked.get(i, line) for i, line in enumerate(lines))
        reads_base = _BASE_USE.search(re.sub(r"'\{\{_base_\.[^']*\}\}'", "", rest)) is not None
        source = rest
    try:
        code = compile(source, filename, "exec")
    except SyntaxError as exc:
        where = f"{filename}:{exc.lineno}" + (f":{exc.offset}" if exc.offset else "")
        raise ConfigError(f"invalid Python in config: {exc.msg}", where=where) from None
    return PreparedConfig(code, bases, reads_base, _is_deterministic(code, text))


def _eval_bases(expr: str, filename: str, line: int) -> Any:
    try:
        return eval(compile(expr.strip(), filename, "eval"), {})  # as MMEngine reads _base_
    except Exception as exc:  # any failure is the config's
        raise ConfigError(
            f"cannot read _base_: {type(exc).__name__}: {exc}",
            where=f"{filename}:{line}",
            hint="_base_ must be a path or a list of paths written out, e.g. _base_ = ['../_base_/x.py']",
        ) from None


def prepare_python(path: str, cache_folder: str | None) -> tuple[PreparedConfig, Stamp | None]:
    """The ``.py`` config at ``path`` compiled and ready to run (:func:`run_prepared`), with
    the file's stamp taken before it was read (``None`` when it was modified too recently to
    trust); ``cache_folder`` is :func:`~torchkiln.config.codecache.active_folder`, looked up
    once per load.

    :raises ConfigError: when the file cannot be read or is not valid Python.
    """
    entry = _prepare_entry(str(path), cache_folder)
    return entry.value, entry.stamp


def python_bases(path: str) -> tuple[Any, bool]:
    """The ``_base_`` entry of the ``.py`` config at ``path`` (``None`` when it has none) and
    whether the file reads ``_base_`` as a value; the file is not run.

    :raises ConfigError: when the file cannot be read or is not valid Python.
    """
    prepared = _prepare(str(path), codecache.active_folder())
    return prepared.bases, prepared.reads_base


def _is_collected(value: Any) -> bool:
    return not isinstance(
        value,
        (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType, type),
    )


def run_python(
    path: str, base: Mapping[str, Any] | None
) -> tuple[dict[str, Any], ConfigDict | None]:
    """Run the ``.py`` config at ``path`` with ``_base_`` bound to ``base`` (its merged bases).

    :returns: the file's top-level values in first-assignment order, and the bases as the
        file left them when it read ``_base_`` (``None`` otherwise).
    :raises ConfigError: when the file does not run (with its line).
    """
    return run_prepared(str(path), base, _prepare(str(path), codecache.active_folder()))


def run_prepared(
    filename: str, base: Mapping[str, Any] | None, prepared: PreparedConfig
) -> tuple[dict[str, Any], ConfigDict | None]:
    """:func:`run_python` with the file already prepared by :func:`prepare_python`."""
    bound = _wrap(base) if base is not None else _new_config_dict()
    namespace: dict[str, Any] = {
        "__file__": filename,
        "__name__": "__torchkiln_config__",
        "_base_": bound,
    }
    try:
        exec(prepared.code, namespace)  # running the config is the point of a .py config
    except ConfigError:
        raise
    except Exception as exc:  # any failure of user code is a config error
        line = _user_line(exc, filename)
        raise ConfigError(
            f"running the config failed: {type(exc).__name__}: {exc}",
            where=f"{filename}:{line}" if line else filename,
        ) from None
    values = {
        name: value
        for name, value in namespace.items()
        if not name.startswith("__") and name != "_base_" and _is_collected(value)
    }
    values.pop("_deprecation_", None)
    return values, (bound if prepared.reads_base and base is not None else None)


def plain_value(value: Any) -> Any:
    """A plain stand-in for a config value that is not plain data.

    Classes and functions become their dotted import path (registries accept it as a
    ``type``); numpy scalars and 0-d arrays become the number they hold.

    :raises TypeError: for anything else, naming what it is and what to write instead.
    """
    if isinstance(value, (type, types.FunctionType, types.BuiltinFunctionType)):
        module = getattr(value, "__module__", None)
        qualname = getattr(value, "__qualname__", None)
        if module and qualname and "<" not in qualname and module != "__torchkiln_config__":
            return f"{module}.{qualname}"
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "shape", None) == ():
        converted = item()
        if isinstance(converted, (bool, int, float, str)):
            return converted
    raise TypeError(
        f"a {type(value).__name__} cannot be stored in a config; use plain values (dict, list, tuple, "
        "str, int, float, bool, None) and write classes as their dotted import path, e.g. "
        "type='torch.nn.Linear'"
    )


def _user_line(exc: BaseException, filename: str) -> int | None:
    tb = exc.__traceback__
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
