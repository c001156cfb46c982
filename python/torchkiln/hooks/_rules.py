"""Which way a metric improves: ``'greater'`` or ``'less'``, inferred from its name.

Shared by :class:`~torchkiln.hooks.CheckpointHook` (``save_best``) and
:class:`~torchkiln.hooks.EarlyStoppingHook` (``monitor``), with MMEngine's default key lists.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from torchkiln.errors import ConfigAssertionError, ConfigError, ConfigValueError

__all__ = [
    "DEFAULT_GREATER_KEYS",
    "DEFAULT_LESS_KEYS",
    "RULES",
    "check_rule",
    "improves",
    "infer_rule",
    "normalise_keys",
]

RULES = ("greater", "less")

DEFAULT_GREATER_KEYS: tuple[str, ...] = (
    "acc",
    "top",
    "AR@",
    "auc",
    "precision",
    "mAP",
    "mDice",
    "mIoU",
    "mAcc",
    "aAcc",
)
DEFAULT_LESS_KEYS: tuple[str, ...] = ("loss",)


def normalise_keys(
    keys: str | Sequence[str] | None, default: Sequence[str], what: str
) -> Sequence[str]:
    """``None`` gives ``default``; a string gives a 1-tuple; a list or tuple of strings is
    kept as given (as MMEngine keeps it)."""
    if keys is None:
        return tuple(default)
    if isinstance(keys, str):
        return (keys,)
    if not isinstance(keys, Sequence) or not all(isinstance(k, str) for k in keys):
        raise ConfigError(f"{what} must be a string or a list of strings, got {keys!r}", where=what)
    return keys if isinstance(keys, (list, tuple)) else tuple(keys)


def infer_rule(
    key: str,
    greater_keys: Sequence[str] = DEFAULT_GREATER_KEYS,
    less_keys: Sequence[str] = DEFAULT_LESS_KEYS,
    where: str | None = None,
) -> str:
    """The rule for metric ``key``: an exact (case-insensitive) match wins, then a substring.

    Greater keys are tried before less keys at each stage, so ``val/acc_loss`` is 'greater'.
    Raises :class:`ConfigError` (also a ``ValueError``, as in MMEngine) when neither list
    matches.
    """
    low = key.lower()
    greater = [k.lower() for k in greater_keys]
    less = [k.lower() for k in less_keys]
    if low in greater:
        return "greater"
    if low in less:
        return "less"
    if any(k in low for k in greater):
        return "greater"
    if any(k in low for k in less):
        return "less"
    raise ConfigValueError(
        f"cannot tell whether a larger or a smaller {key!r} is better",
        where=where,
        hint="set rule: greater (or less), or add a part of the name to greater_keys / less_keys",
    )


def check_rule(
    rule: str | None, where: str, error: type[ConfigError] = ConfigAssertionError
) -> str | None:
    """Validate an explicit rule (``None`` means infer it).

    :param error: the class raised for a bad rule (a :class:`ConfigError`, also the
        built-in exception the caller's MMEngine counterpart raises).
    """
    if rule is not None and rule not in RULES:
        raise error(
            f"rule must be 'greater' or 'less', got {rule!r}",
            where=where,
            hint="rule: greater | less",
        )
    return rule


def improves(score: float, best: float | None, rule: str, min_delta: float = 0.0) -> bool:
    """True when ``score`` beats ``best`` under ``rule``.

    With ``min_delta`` the score must move by at least that much (``>= best + min_delta``);
    without it, strictly (an equal score is no improvement). ``best=None`` (nothing seen
    yet) is beaten by any score but NaN; NaN never improves.
    """
    if math.isnan(score):
        return False
    if best is None:
        return True
    if rule == "greater":
        return score >= best + min_delta if min_delta else score > best
    return score <= best - min_delta if min_delta else score < best
