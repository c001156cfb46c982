"""Configs: load (through the Rust core), inspect, validate.

``load`` reads a YAML/JSON/TOML/``.py`` file with its ``_base_`` chain, interpolation and
overrides into a :class:`Config`; ``validate`` checks it against the typed schema and the
component registries and returns every error found. Importing this package is cheap: the
schema (attrs/cattrs) loads on first use, and torch never does.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from torchkiln.config.config import Config, ConfigDict
from torchkiln.config.loader import clear_config_cache, dump_yaml, load, loads

__all__ = [
    "Config",
    "ConfigDict",
    "ConfigValidationError",
    "ConfigWarning",
    "RunConfig",
    "clear_config_cache",
    "dump_yaml",
    "load",
    "load_and_validate",
    "loads",
    "resolve_package",
    "structure",
    "validate",
]

_LAZY = {
    "ConfigValidationError": "torchkiln.config.validation",
    "ConfigWarning": "torchkiln.config.report",
    "RunConfig": "torchkiln.config.schema",
    "load_and_validate": "torchkiln.config.validation",
    "resolve_package": "torchkiln.config.packages",
    "validate": "torchkiln.config.validation",
}


def structure(cfg: Config | dict[str, Any]) -> RunConfig:
    """The engine-owned part of ``cfg`` as the typed :class:`~torchkiln.config.schema.RunConfig`.

    Top-level user variables are left out. Call :func:`validate` first for readable errors;
    this raises the converter's error on a bad config.
    """
    from torchkiln.config.converter import structure_run_config
    from torchkiln.config.schema import top_level_keys

    data = cfg.to_dict() if isinstance(cfg, Config) else dict(cfg)
    known = set(top_level_keys())
    return structure_run_config({k: v for k, v in data.items() if k in known})


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'torchkiln.config' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:  # pragma: no cover
    from torchkiln.config.packages import resolve_package as resolve_package
    from torchkiln.config.report import ConfigWarning as ConfigWarning
    from torchkiln.config.schema import RunConfig as RunConfig
    from torchkiln.config.validation import (
        ConfigValidationError as ConfigValidationError,
        load_and_validate as load_and_validate,
        validate as validate,
    )
