"""Loading weights into a model with a report of what did not fit."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from torchkiln.config.schema import LoadFromCfg
from torchkiln.runner.checkpoint_io import CheckpointError

__all__ = ["LoadReport", "load_model_state", "revise_state_dict", "weights_to_load"]

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
            lines.append(
                f"missing keys in checkpoint ({len(self.missing)}): {', '.join(self.missing)}"
            )
        if self.unexpected:
            lines.append(
                f"unexpected keys in checkpoint ({len(self.unexpected)}): {', '.join(self.unexpected)}"
            )
        for key, ckpt_shape, model_shape in self.shape_mismatch:
            lines.append(
                f"shape mismatch for {key}: checkpoint {list(ckpt_shape)} vs model {list(model_shape)}"
            )
        return "\n".join(lines) if lines else "all keys matched"


def revise_state_dict(
    state_dict: Mapping[str, Any], revise_keys: Sequence[Sequence[str]]
) -> dict[str, Any]:
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


def weights_to_load(
    load_from: str | LoadFromCfg | None,
) -> tuple[str, bool, list[tuple[str, str]]] | None:
    """``(path, strict, revise_keys)`` from the validated ``load_from``, or None for none."""
    if load_from is None or load_from == "":
        return None
    if isinstance(load_from, str):
        return load_from, False, [(a, b) for a, b in DEFAULT_REVISE_KEYS]
    revise = DEFAULT_REVISE_KEYS if load_from.revise_keys is None else load_from.revise_keys
    return load_from.path, load_from.strict, [(a, b) for a, b in revise]
