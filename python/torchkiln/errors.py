"""Errors a user can act on, each with an exit code of its own.

Every error torchkiln raises for bad input says what is wrong, where (file, line, key path,
plugin) and how to fix it. The CLI prints ``str(error)`` without a traceback and exits with
``error.exit_code``; anything else is an internal error (exit 1).

Code written for MMEngine catches the built-in exceptions MMEngine raises (``ValueError``,
``TypeError``, ``KeyError``, ``AssertionError``, ``NotImplementedError``). So each raise site
uses the variant of its torchkiln class that is also that built-in: ``ConfigValueError`` is a
``ConfigError`` (exit code, message with where and hint) and a ``ValueError``. The torchkiln
class comes first in each variant's bases, so ``str()`` stays the readable message (a plain
``KeyError`` would quote it) and ``exit_code`` stays the torchkiln one.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Iterable

__all__ = [
    "EXIT_CONFIG",
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_PLUGIN",
    "EXIT_TERMINATED",
    "EXIT_USER_CODE",
    "BuildError",
    "BuildKeyError",
    "BuildTypeError",
    "ConfigAssertionError",
    "ConfigError",
    "ConfigKeyError",
    "ConfigRuntimeError",
    "ConfigTypeError",
    "ConfigValueError",
    "MissingPackageError",
    "PluginError",
    "RunInterrupted",
    "TorchkilnError",
    "UsageError",
    "UsageKeyError",
    "UsageNotImplementedError",
    "UsageRuntimeError",
    "UsageTypeError",
    "UsageValueError",
    "did_you_mean",
]

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_CONFIG = 2
EXIT_PLUGIN = 3
EXIT_USER_CODE = 5  # an exception raised in the user's or a plugin's code (not a torchkiln bug)
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


def add_note(exc: BaseException, note: str) -> None:
    """``exc.add_note(note)``, also on Python 3.10 (which has ``__notes__`` but no ``add_note``)."""
    if sys.version_info >= (3, 11):
        exc.add_note(note)
    else:
        # typeshed declares __notes__ from 3.11; 3.10 keeps it as a plain attribute.
        exc.__notes__ = [*getattr(exc, "__notes__", []), note]  # type: ignore[attr-defined]


def did_you_mean(word: str, candidates: Iterable[str], n: int = 3) -> str | None:
    """Return a ``did you mean ...?`` phrase for the closest candidates, or None."""
    matches = difflib.get_close_matches(word, list(candidates), n=n, cutoff=0.6)
    if not matches:
        return None
    return "did you mean " + " or ".join(repr(m) for m in matches) + "?"


class TorchkilnError(Exception):
    """Base class of errors meant for the user: a message, where it happened, a hint.

    :param message: what is wrong, in one sentence.
    :param where: the place: ``file:line:col``, a key path, a plugin name.
    :param hint: how to fix it (a suggestion, the valid choices).
    """

    exit_code: int = EXIT_INTERNAL

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None):
        self.message = message
        self.where = where
        self.hint = hint
        super().__init__(message)

    def __str__(self) -> str:
        text = self.message
        if self.where:
            text += f"\n  at: {self.where}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class ConfigError(TorchkilnError):
    """The configuration is invalid: syntax, unknown key, wrong type, bad reference."""

    exit_code = EXIT_CONFIG


class UsageError(ConfigError):
    """The command line or an API call was used wrongly."""


class BuildError(ConfigError):
    """A component could not be built from its config dict (unknown type or argument)."""


class ConfigValueError(ConfigError, ValueError):
    """A :class:`ConfigError` where MMEngine raises ``ValueError`` (a value out of range)."""


class ConfigTypeError(ConfigError, TypeError):
    """A :class:`ConfigError` where MMEngine raises ``TypeError`` (a value of the wrong type)."""


class ConfigKeyError(ConfigError, KeyError):
    """A :class:`ConfigError` where MMEngine raises ``KeyError`` (a missing or unknown key)."""


class ConfigAssertionError(ConfigError, AssertionError):
    """A :class:`ConfigError` where MMEngine checks with ``assert``."""


class ConfigRuntimeError(ConfigError, RuntimeError):
    """A :class:`ConfigError` found while running (e.g. a monitored metric that never comes)."""


class UsageValueError(UsageError, ValueError):
    """A :class:`UsageError` where MMEngine raises ``ValueError``."""


class UsageTypeError(UsageError, TypeError):
    """A :class:`UsageError` where MMEngine raises ``TypeError``."""


class UsageKeyError(UsageError, KeyError):
    """A :class:`UsageError` where MMEngine raises ``KeyError``."""


class UsageRuntimeError(UsageError, RuntimeError):
    """A :class:`UsageError` where MMEngine raises ``RuntimeError`` (e.g. ``runner.val()``
    on a runner without validation components)."""


class UsageNotImplementedError(UsageError, NotImplementedError):
    """A :class:`UsageError` where MMEngine raises ``NotImplementedError`` (a call not offered)."""


class BuildKeyError(BuildError, KeyError):
    """A :class:`BuildError` for a type no registry has; MMEngine raises ``KeyError`` there."""


class BuildTypeError(BuildError, TypeError):
    """A :class:`BuildError` for arguments the component does not take (``TypeError`` in MMEngine)."""


class MissingPackageError(ConfigError, ImportError):
    """A configured component needs a package that is not installed (also the ``ImportError``
    MMEngine raises there)."""


class PluginError(TorchkilnError):
    """A plugin failed to load or a hook raised; names the plugin and its distribution."""

    exit_code = EXIT_PLUGIN


class RunInterrupted(TorchkilnError):
    """Training stopped on a signal after saving state; exit 130 (SIGINT) or 143."""

    def __init__(self, message: str, *, exit_code: int = EXIT_TERMINATED, **kwargs):
        super().__init__(message, **kwargs)
        self.exit_code = exit_code
