"""Loading weights into a model with a report of what did not fit."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from torchkiln.errors import ConfigError
from torchkiln.runner.checkpoint_io import CheckpointError

__all__ = ["LoadReport", "load_model_state", "parse_load_from", "revise_state_dict"]

DEFAULT_REVISE_KEYS: tuple[tuple[str, str], ...] = ((r"^module\.", ""),)


@attrs.frozen
class LoadReport:
    """What happened when weights were loaded: keys that were missing, extra or mis-shaped."""

    missing: tuple[str, ...] = ()
    unexpected: tuple[str, ...] = ()
    shape_mismatch: tuple[tuple[str, tuple[int, ...], tuple[int, ...]], ...] = ()

    @property
    def clean(self) -> bool:
        """True when every key matched in name and shape."""
        return not (self.missing or self.unexpected or self.shape_mismatch)

    def format(self) -> str:
        """A human-readable multi-line summary."""
        lines = []
        if self.missing:
            lines.append(f"missing keys in checkpoint ({len(self.missing)}): {', '.join(self.missing)}")
        if self.unexpected:
            lines.append(f"unexpected keys in checkpoint ({len(self.unexpected)}): {', '.join(self.unexpected)}")
        for key, ckpt_shape, model_shape in self.shape_mismatch:
            lines.append(f"shape mismatch for {key}: checkpoint {list(ckpt_shape)} vs model {list(model_shape)}")
        return "\n".join(lines) if lines else "all keys matched"


def revise_state_dict(state_dict: Mapping[str, Any], revise_keys: Sequence[Sequence[str]]) -> dict[str, Any]:
    """Rename keys with ``(pattern, replacement)`` regex pairs, applied in order."""
    compiled = [(re.compile(pattern), repl) for pattern, repl in revise_keys]
    out = {}
    for key, value in state_dict.items():
        for pattern, repl in compiled:
            key = pattern.sub(repl, key)
        out[key] = value
    return out


def load_model_state(
    model: Any,
    state_dict: Mapping[str, Any],
    strict: bool = False,
    revise_keys: Sequence[Sequence[str]] = DEFAULT_REVISE_KEYS,
    source: str = "<state_dict>",
) -> LoadReport:
    """Load ``state_dict`` into ``model`` (unwrapped) and report mismatches.

    With ``strict`` any mismatch raises :class:`CheckpointError`; otherwise mis-shaped
    tensors are skipped and everything that fits is loaded.
    """
    state = revise_state_dict(state_dict, revise_keys)
    own = model.state_dict()
    mismatched = []
    for key, value in list(state.items()):
        if key in own and hasattr(value, "shape") and tuple(value.shape) != tuple(own[key].shape):
            mismatched.append((key, tuple(value.shape), tuple(own[key].shape)))
            del state[key]
    missing = tuple(k for k in own if k not in state and k not in {m[0] for m in mismatched})
    unexpected = tuple(k for k in state if k not in own)
    report = LoadReport(missing, unexpected, tuple(mismatched))
    if strict and not report.clean:
        raise CheckpointError(
            f"weights from {source} do not match {type(model).__name__}:\n{report.format()}",
            hint="set strict: false to load what fits, or revise_keys to rename keys",
        )
    model.load_state_dict(state, strict=False)
    return report


def parse_load_from(load_from: Any) -> tuple[str, bool, list[tuple[str, str]]] | None:
    """``(path, strict, revise_keys)`` from ``load_from``: a path, or ``{path, strict, revise_keys}``.

    :raises ConfigError: an unknown key or a malformed value.
    """
    if load_from is None or load_from == "":
        return None
    if isinstance(load_from, (str, os.PathLike)):
        return os.fspath(load_from), False, [tuple(pair) for pair in DEFAULT_REVISE_KEYS]
    if not isinstance(load_from, Mapping):
        raise ConfigError(
            f"load_from must be a checkpoint path or {{path, strict, revise_keys}}, got {type(load_from).__name__}",
            where="load_from",
        )
    allowed = ("path", "strict", "revise_keys")
    for key in load_from:
        if key not in allowed:
            from torchkiln.errors import did_you_mean

            raise ConfigError(
                f"load_from has no key {key!r}", where=f"load_from.{key}",
                hint=did_you_mean(str(key), allowed) or f"accepted: {', '.join(allowed)}",
            )
    path = load_from.get("path")
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise ConfigError("load_from needs a 'path'", where="load_from.path")
    strict = load_from.get("strict", False)
    if not isinstance(strict, bool):
        raise ConfigError(f"load_from.strict must be true or false, got {strict!r}", where="load_from.strict")
    revise = load_from.get("revise_keys", DEFAULT_REVISE_KEYS)
    pairs: list[tuple[str, str]] = []
    for item in revise or ():
        if not isinstance(item, (list, tuple)) or len(item) != 2 or not all(isinstance(x, str) for x in item):
            raise ConfigError(
                f"load_from.revise_keys items must be [pattern, replacement] pairs of strings, got {item!r}",
                where="load_from.revise_keys", hint="e.g. revise_keys: [['^backbone\\\\.', '']]",
            )
        pairs.append((item[0], item[1]))
    return os.fspath(path), strict, pairs
