"""The strict cattrs converter that turns config dicts into the schema's attrs classes.

Made by one factory (:func:`make_converter`): unknown keys are errors (``forbid_extra_keys``),
scalars are never coerced (``3`` is not a string, ``"two"`` and ``3.5`` are not integers,
``true`` is not a number), containers must have the right kind, and unions pick their arm by
the value's kind (a mapping with ``type`` is a component dict). Every failure is collected
(``detailed_validation``) and flattened by ``cattrs.transform_error`` into
:class:`Issue` records that carry the key path.
"""

from __future__ import annotations

import ast
import re
import types
from collections.abc import Mapping
from typing import Any, Literal, Union, get_args, get_origin

import attrs
import cattrs
from cattrs.errors import ForbiddenExtraKeysError, IterableValidationError, IterableValidationNote
from cattrs.gen import make_dict_structure_fn

from torchkiln.config.schema import FieldValueError, RunConfig
from torchkiln.errors import add_note, did_you_mean

__all__ = ["Issue", "make_converter", "structure_issues", "structure_run_config"]

NoneType = type(None)


class TypeMismatch(TypeError):
    """A value of the wrong kind for its field."""

    def __init__(self, expected: Any, value: Any):
        self.expected = expected
        self.value = value
        super().__init__(f"expected {describe_type(expected)}, got {describe_value(value)}")


class ChoiceError(ValueError):
    """A value outside a field's fixed set of choices."""

    def __init__(self, choices: tuple[Any, ...], value: Any):
        self.choices = choices
        self.value = value
        super().__init__(
            f"must be one of {', '.join(repr(c) for c in choices)}; got {describe_value(value)}"
        )


@attrs.frozen
class Issue:
    """One schema problem: the key path, what is wrong and how to fix it."""

    path: tuple[str | int, ...]
    message: str
    hint: str | None = None
    unknown_key: bool = False


# ---------------------------------------------------------------------- describing
def describe_type(t: Any) -> str:
    """Human words for a type annotation: ``an integer``, ``a mapping or null``."""
    if t is NoneType or t is None:
        return "null"
    if t is bool:
        return "a boolean (true/false)"
    if t is int:
        return "an integer"
    if t is float:
        return "a number"
    if t is str:
        return "a string"
    if t is Any:
        return "any value"
    if attrs.has(t):
        return "a mapping"
    origin = get_origin(t)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(t))
    if _is_union(t):
        arms = [a for a in get_args(t) if not (a is int and float in get_args(t))]
        return " or ".join(dict.fromkeys(describe_type(a) for a in arms))
    if origin is tuple and get_args(t) and Ellipsis not in get_args(t):
        return (
            f"a list of {len(get_args(t))} items ("
            + ", ".join(describe_type(a) for a in get_args(t))
            + ")"
        )
    if origin in (dict, Mapping) or t in (dict, Mapping):
        return "a mapping"
    if origin in (list, tuple) or t in (list, tuple):
        return "a list"
    return getattr(t, "__name__", repr(t))


def describe_value(value: Any) -> str:
    """Human words for a value: ``'two' (a string)``, ``3.5 (a number)``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, int):
        return f"{value} (an integer)"
    if isinstance(value, float):
        return f"{value} (a number)"
    if isinstance(value, str):
        return f"{value!r} (a string)"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return f"a {type(value).__name__}"


# ---------------------------------------------------------------------- hooks
def _is_union(t: Any) -> bool:
    return get_origin(t) is Union or isinstance(t, types.UnionType)


def _kind_matches(value: Any, arm: Any) -> bool:
    if arm is Any:
        return True
    if arm is NoneType:
        return value is None
    if arm is bool:
        return type(value) is bool
    if arm is int:
        # 1e6, Python configs' usual "never" (val_interval=1e6), is a whole number
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            type(value) is float and value.is_integer()
        )
    if arm is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if arm is str:
        return isinstance(value, str)
    origin = get_origin(arm)
    if origin is Literal:
        return any(value == a and type(value) is type(a) for a in get_args(arm))
    if attrs.has(arm) or origin in (dict, Mapping) or arm in (dict, Mapping):
        return isinstance(value, Mapping)
    if origin in (list, tuple) or arm in (list, tuple):
        return isinstance(value, (list, tuple))
    return False


def _is_mapping_arm(arm: Any) -> bool:
    return get_origin(arm) in (dict, Mapping) or arm in (dict, Mapping)


def _strict_scalar(kind: type) -> Any:
    def hook(value: Any, _: Any) -> Any:
        if not _kind_matches(value, kind):
            raise TypeMismatch(kind, value)
        if kind is float:
            return float(value)
        return int(value) if kind is int else value

    return hook


def make_converter() -> cattrs.Converter:
    """The converter for the schema: strict scalars, strict containers, unknown keys forbidden."""
    conv = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    for kind in (str, int, float, bool):
        conv.register_structure_hook(kind, _strict_scalar(kind))

    def literal_factory(t: Any) -> Any:
        choices = get_args(t)

        def hook(value: Any, _: Any) -> Any:
            if not _kind_matches(value, t):
                raise ChoiceError(choices, value)
            return value

        return hook

    def union_factory(t: Any) -> Any:
        arms = get_args(t)

        def hook(value: Any, _: Any) -> Any:
            matching = [a for a in arms if _kind_matches(value, a)]
            if not matching:
                literals = [a for a in arms if get_origin(a) is Literal]
                if literals and isinstance(value, str):
                    raise ChoiceError(tuple(c for lit in literals for c in get_args(lit)), value)
                raise TypeMismatch(t, value)
            if value is None:
                return None
            chosen = matching[0]
            if isinstance(value, Mapping) and len(matching) > 1:
                # a component dict (with 'type') goes to the plain-dict arm, else to the class
                classes = [a for a in matching if attrs.has(a)]
                mappings = [a for a in matching if _is_mapping_arm(a)]
                if "type" in value and mappings:
                    chosen = mappings[0]
                elif classes:
                    chosen = classes[0]
            return conv.structure(value, chosen)

        return hook

    def attrs_factory(cl: Any) -> Any:
        inner = make_dict_structure_fn(cl, conv, _cattrs_forbid_extra_keys=True)

        def hook(value: Any, _: Any) -> Any:
            if not isinstance(value, Mapping):
                raise TypeMismatch(cl, value)
            return inner(value, cl)

        return hook

    def list_factory(t: Any) -> Any:
        args = get_args(t)
        elem = args[0] if args else Any

        def hook(value: Any, _: Any) -> Any:
            if not isinstance(value, (list, tuple)):
                raise TypeMismatch(t, value)
            out, errors = [], []
            for i, item in enumerate(value):
                try:
                    out.append(conv.structure(item, elem))
                except Exception as exc:  # collected and reported together
                    add_note(exc, IterableValidationNote(f"@ index {i}", i, elem))
                    errors.append(exc)
            if errors:
                raise IterableValidationError("while structuring a list", errors, t)
            return out

        return hook

    def tuple_factory(t: Any) -> Any:
        args = get_args(t)

        def hook(value: Any, _: Any) -> Any:
            if not isinstance(value, (list, tuple)) or len(value) != len(args):
                raise TypeMismatch(t, value)
            out, errors = [], []
            for i, (item, elem) in enumerate(zip(value, args)):
                try:
                    out.append(conv.structure(item, elem))
                except Exception as exc:
                    add_note(exc, IterableValidationNote(f"@ index {i}", i, elem))
                    errors.append(exc)
            if errors:
                raise IterableValidationError("while structuring a tuple", errors, t)
            return tuple(out)

        return hook

    def dict_factory(t: Any) -> Any:
        args = get_args(t)
        val_t = args[1] if len(args) == 2 else Any

        def hook(value: Any, _: Any) -> Any:
            if not isinstance(value, Mapping):
                raise TypeMismatch(t, value)
            out, errors = {}, []
            for key, item in value.items():
                try:
                    if not isinstance(key, str):
                        raise TypeMismatch(str, key)
                    out[key] = conv.structure(item, val_t)
                except Exception as exc:
                    add_note(exc, IterableValidationNote(f"@ key {key!r}", key, val_t))
                    errors.append(exc)
            if errors:
                raise IterableValidationError("while structuring a mapping", errors, t)
            return out

        return hook

    conv.register_structure_hook_factory(lambda t: get_origin(t) is Literal, literal_factory)
    conv.register_structure_hook_factory(_is_union, union_factory)
    conv.register_structure_hook_factory(attrs.has, attrs_factory)
    conv.register_structure_hook_factory(lambda t: get_origin(t) is list or t is list, list_factory)
    conv.register_structure_hook_factory(
        lambda t: get_origin(t) is tuple and Ellipsis not in get_args(t) and bool(get_args(t)),
        tuple_factory,
    )
    conv.register_structure_hook_factory(
        lambda t: get_origin(t) in (dict, Mapping) or t is dict, dict_factory
    )
    return conv


_CONVERTER: cattrs.Converter | None = None


def converter() -> cattrs.Converter:
    """The shared converter (built on first use)."""
    global _CONVERTER
    if _CONVERTER is None:
        attrs.resolve_types(RunConfig)
        _CONVERTER = make_converter()
    return _CONVERTER


# ---------------------------------------------------------------------- errors
_SEGMENT = re.compile(
    r"\.([A-Za-z_][A-Za-z0-9_]*)|\[('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|-?\d+)\]"
)


def _parse_path(text: str) -> tuple[str | int, ...]:
    """``$.a.b[0]['k']`` as ``("a", "b", 0, "k")``."""
    assert text.startswith("$")
    out: list[str | int] = []
    for match in _SEGMENT.finditer(text, 1):
        name, bracket = match.groups()
        out.append(name if name is not None else ast.literal_eval(bracket))
    return tuple(out)


def _issues_from(exc: BaseException) -> list[Issue]:
    """Flatten a cattrs validation error with ``transform_error``, keeping the exceptions."""
    seen: list[tuple[BaseException, Any]] = []

    def record(err: BaseException, t: Any) -> str:
        seen.append((err, t))
        return str(len(seen) - 1)

    issues: list[Issue] = []
    for line in cattrs.transform_error(exc, path="$", format_exception=record):
        index, _, path_text = line.partition(" @ ")
        err, t = seen[int(index)]
        issues.extend(_issue(err, t, _parse_path(path_text)))
    return issues


def _issue(err: BaseException, t: Any, path: tuple[str | int, ...]) -> list[Issue]:
    if isinstance(err, ForbiddenExtraKeysError):
        valid = [a.name for a in attrs.fields(err.cl)] if attrs.has(err.cl) else []
        out = []
        for key in sorted(err.extra_fields):
            suggestion = did_you_mean(key, valid)
            hint = (suggestion + " " if suggestion else "") + "valid keys: " + ", ".join(valid)
            out.append(Issue((*path, key), "unknown key", hint, unknown_key=True))
        return out
    if isinstance(err, FieldValueError):
        return [Issue((*path, err.field), err.message)]
    if isinstance(err, (TypeMismatch, ChoiceError)):
        return [Issue(path, str(err))]
    if isinstance(err, KeyError):
        return [
            Issue(
                path,
                "required key is missing" + (f" ({describe_type(t)})" if t is not None else ""),
            )
        ]
    return [Issue(path, f"{type(err).__name__}: {err}")]


def structure_run_config(data: Mapping[str, Any]) -> RunConfig:
    """Structure the engine-owned top-level keys of ``data`` into a :class:`RunConfig`.

    :raises cattrs.BaseValidationError: on any problem (see :func:`structure_issues`).
    """
    return converter().structure(dict(data), RunConfig)


def structure_issues(data: Mapping[str, Any]) -> tuple[RunConfig | None, list[Issue]]:
    """Structure ``data`` and return the result (or None) with every problem found."""
    try:
        return structure_run_config(data), []
    except Exception as exc:  # every problem becomes an Issue
        return None, _issues_from(exc)
