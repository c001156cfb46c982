"""``load_from`` takes a path or ``{path, strict, revise_keys}``; typos in the dict are errors."""

from __future__ import annotations

from torchkiln.config import loads, validate


def _errors(text: str) -> list[str]:
    return [str(e) for e in validate(loads(text), components=False)]


def test_load_from_as_path_or_dict() -> None:
    assert _errors("load_from: /tmp/w.pth\n") == []
    assert _errors("load_from: {path: /tmp/w.pth, strict: true, revise_keys: [['^module\\\\.', '']]}\n") == []


def test_load_from_dict_typo_is_reported_with_suggestion() -> None:
    (error,) = _errors("load_from: {path: /tmp/w.pth, strickt: true}\n")
    assert "load_from.strickt" in error and "strict" in error
