"""The error classes hooks raise for bad arguments: each a ``ConfigError`` and the built-in
MMEngine raises at the same check, so code written for MMEngine catches them too.

``torchkiln.errors`` defines these variants; this module only re-exports them for the hooks
and defines them itself when ``torchkiln.errors`` does not (yet) have them.
"""

from __future__ import annotations

from torchkiln import errors as _errors
from torchkiln.errors import ConfigError

__all__ = [
    "ConfigAssertionError",
    "ConfigKeyError",
    "ConfigTypeError",
    "ConfigValueError",
    "MissingPackageError",
]


class _ConfigValueError(ConfigError, ValueError):
    """A :class:`ConfigError` where MMEngine raises ``ValueError``."""


class _ConfigTypeError(ConfigError, TypeError):
    """A :class:`ConfigError` where MMEngine raises ``TypeError``."""


class _ConfigKeyError(ConfigError, KeyError):
    """A :class:`ConfigError` where MMEngine raises ``KeyError``."""


class _ConfigAssertionError(ConfigError, AssertionError):
    """A :class:`ConfigError` where MMEngine checks with ``assert``."""


ConfigValueError: type[ConfigError] = getattr(_errors, "ConfigValueError", _ConfigValueError)
ConfigTypeError: type[ConfigError] = getattr(_errors, "ConfigTypeError", _ConfigTypeError)
ConfigKeyError: type[ConfigError] = getattr(_errors, "ConfigKeyError", _ConfigKeyError)
ConfigAssertionError: type[ConfigError] = getattr(
    _errors, "ConfigAssertionError", _ConfigAssertionError
)


class MissingPackageError(ConfigError, ImportError):
    """A configured component needs a package that is not installed.

    Also an ``ImportError``, which is what MMEngine raises in the same place.
    """
