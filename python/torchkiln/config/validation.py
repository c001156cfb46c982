"""Validating a loaded config: every problem found at once, each with file, line and key path.

Four passes, all reporting into one :class:`~torchkiln.config.report.Reporter`:

1. top-level keys: engine keys, user variables (referenced by interpolation or under
   ``vars:``), and typos (with a suggestion); in ``.py`` configs unused values only warn;
2. the typed schema (:mod:`torchkiln.config.schema` through the strict converter);
3. rules across keys (a loop's ``type`` xor ``by_epoch``, all-or-none train/val/test sets);
4. component dicts against their registries (imports component modules).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable, Mapping
from typing import Any

from torchkiln.config.config import Config
from torchkiln.config.report import ConfigWarning, Reporter, dotted, lookup_provenance
from torchkiln.config.schema import RunConfig, top_level_keys
from torchkiln.errors import EXIT_CONFIG, ConfigError, TorchkilnError, did_you_mean

__all__ = [
    "ConfigValidationError",
    "ConfigWarning",
    "check",
    "check_arguments",
    "check_top_level",
    "load_and_validate",
    "validate",
]

_SETS = {
    "train": ("train_dataloader", "train_cfg", "optim_wrapper"),
    "val": ("val_dataloader", "val_cfg", "val_evaluator"),
    "test": ("test_dataloader", "test_cfg", "test_evaluator"),
}


class ConfigValidationError(ConfigError, ValueError):
    """Several config errors at once; ``errors`` holds each one.

    A ``ValueError`` too, as MMEngine's Runner raises for arguments that do not fit
    together. The exit code is the most severe of them (a plugin error outranks a config error).
    """

    def __init__(self, errors: Iterable[TorchkilnError]) -> None:
        self.errors = list(errors)
        count = len(self.errors)
        super().__init__(f"{count} error{'s' if count != 1 else ''} in the config")
        self.exit_code = max((e.exit_code for e in self.errors), default=EXIT_CONFIG)

    def __str__(self) -> str:
        return "\n".join(f"{e}" for e in self.errors)


def _from_python(cfg: Config, key: str) -> bool:
    """Whether top-level ``key`` was set by a ``.py`` config (or by Python code)."""
    if not cfg.provenance:
        return cfg.filename is None or cfg.filename.endswith(".py")
    location = lookup_provenance(cfg.provenance, (key,))
    if location is None:  # set by code after loading, or the config was made in Python
        return cfg.filename is None or cfg.filename.endswith(".py")
    if location == "merge_from_dict":
        return True
    return re.sub(r"(:\d+){1,2}$", "", location).endswith(".py")


def check_top_level(cfg: Config, reporter: Reporter) -> dict[str, Any]:
    """Report unknown top-level keys; return the engine-owned part of the config."""
    known = top_level_keys()
    referenced = set()
    for ref in cfg.referenced:
        ref = ref.removeprefix("_base_.")
        referenced.add(ref.split(".", 1)[0].split("[", 1)[0])
    owned: dict[str, Any] = {}
    for key, value in cfg.to_dict().items():
        if key in known:
            owned[key] = value
        elif key in referenced:
            continue
        elif _from_python(cfg, key):
            reporter.warn(
                (key,),
                f"top-level value {key!r} is not a runner setting and is not used by the engine",
            )
        else:
            suggestion = did_you_mean(key, known)
            hint = (suggestion + " " if suggestion else "") + (
                "a user variable must be referenced with ${"
                + key
                + "} somewhere, or placed under 'vars:'"
            )
            reporter.error((key,), f"unknown top-level key {key!r}", hint=hint)
    return owned


def _check_schema(owned: Mapping[str, Any], reporter: Reporter) -> RunConfig | None:
    """Structure ``owned`` into the typed :class:`RunConfig`; report every problem."""
    from torchkiln.config.converter import structure_issues

    typed, issues = structure_issues(owned)
    for issue in issues:
        if issue.unknown_key:
            reporter.error(issue.path, f"unknown key {dotted(issue.path)!r}", hint=issue.hint)
        else:
            reporter.error(
                issue.path,
                f"invalid value for {dotted(issue.path)!r}: {issue.message}",
                hint=issue.hint,
            )
    return typed


def _check_train_cfg(value: Any, reporter: Reporter) -> None:
    if not isinstance(value, Mapping):
        return
    path = ("train_cfg",)
    if "type" in value:
        if "by_epoch" in value:
            type_at = reporter.location((*path, "type"))
            by_epoch_at = reporter.location((*path, "by_epoch"))
            hint = "use 'type' for a custom loop, or 'by_epoch' (with max_epochs or max_iters) for the built-in loops, not both"
            if type_at and by_epoch_at and type_at.split(":")[0] != by_epoch_at.split(":")[0]:
                hint += f"; by_epoch comes from {by_epoch_at}: add '_delete_: true' to this train_cfg to replace the base's"
            reporter.error((*path, "type"), "train_cfg has both 'type' and 'by_epoch'", hint=hint)
        return
    by_epoch = value.get("by_epoch", True)  # the runner's default: an epoch-based loop
    said = "by_epoch: true" if "by_epoch" in value else "by_epoch left out (true)"
    has_epochs = value.get("max_epochs") is not None
    has_iters = value.get("max_iters") is not None
    if by_epoch is True and has_iters:
        reporter.error(
            (*path, "max_iters"),
            f"train_cfg has {said} with max_iters",
            hint="an epoch-based loop takes max_epochs; set by_epoch: false to run max_iters iterations",
        )
    elif by_epoch is False and has_epochs:
        reporter.error(
            (*path, "max_epochs"),
            "train_cfg has by_epoch: false with max_epochs",
            hint="an iteration-based loop takes max_iters; use by_epoch: true for max_epochs",
        )
    elif by_epoch is True and not has_epochs:
        reporter.error(
            path,
            f"train_cfg with {said} needs max_epochs",
            hint="e.g. train_cfg: {by_epoch: true, max_epochs: 12}, or a custom loop with 'type'",
        )
    elif by_epoch is False and not has_iters:
        reporter.error(
            path,
            "train_cfg with by_epoch: false needs max_iters",
            hint="e.g. train_cfg: {by_epoch: false, max_iters: 10000}",
        )


def _check_sets(data: Mapping[str, Any], reporter: Reporter) -> None:
    for split, keys in _SETS.items():
        present = [k for k in keys if data.get(k) is not None]
        if present and len(present) != len(keys):
            missing = [k for k in keys if k not in present]
            reporter.error(
                (present[0],),
                f"{', '.join(present)} given without {', '.join(missing)}"
                f" ({', '.join(keys)} should be either all None or not None)",
                hint=f"to {split}, set all of {', '.join(keys)}; otherwise remove (or set to null) all of them",
            )
    if data.get("param_scheduler") is not None and data.get("optim_wrapper") is None:
        reporter.error(
            ("param_scheduler",),
            "param_scheduler given without optim_wrapper (param_scheduler should be None when"
            " optim_wrapper is None)",
            hint="schedulers change an optimizer's values: set optim_wrapper, or remove param_scheduler",
        )


def _custom_imports(data: Mapping[str, Any], reporter: Reporter) -> None:
    value = data.get("custom_imports")
    if not isinstance(value, Mapping):
        return
    imports = value.get("imports", [])
    if isinstance(imports, str):
        imports = [imports]
    if not isinstance(imports, list):
        return
    allow_failed = value.get("allow_failed_imports") is True
    for i, name in enumerate(imports):
        if not isinstance(name, str):
            continue
        try:
            importlib.import_module(name)
        except Exception as exc:  # a failing import is reported, not raised
            path = ("custom_imports", "imports", i)
            if allow_failed:
                reporter.warn(path, f"custom import {name!r} failed: {type(exc).__name__}: {exc}")
            else:
                reporter.error(
                    path,
                    f"custom import {name!r} failed: {type(exc).__name__}: {exc}",
                    hint="install the module, fix the name, or set allow_failed_imports: true",
                )


def _run_checks(
    cfg: Config | Mapping[str, Any], components: bool
) -> tuple[RunConfig | None, list[TorchkilnError]]:
    """The one validation pass: top-level keys, typed schema, rules across keys, components."""
    if not isinstance(cfg, Config):
        cfg = Config(cfg)
    reporter = Reporter(cfg.provenance)
    owned = check_top_level(cfg, reporter)
    typed = _check_schema(owned, reporter)
    _check_train_cfg(owned.get("train_cfg"), reporter)
    _check_sets(owned, reporter)
    if components:
        from torchkiln.config.components import ComponentChecker
        from torchkiln.registry import _index

        _custom_imports(owned, reporter)
        _check_default_scope(owned.get("default_scope"), reporter)
        scope = owned.get("default_scope")
        previous = _index.default_scope()
        if isinstance(scope, str):
            _index.set_default_scope(scope)
        try:
            ComponentChecker(reporter).check(owned)
        finally:
            _index.set_default_scope(previous)
    return typed, reporter.errors


def _check_default_scope(scope: Any, reporter: Reporter) -> None:
    """``default_scope`` naming no installed provider of components is a warning: names then
    resolve from every provider, which may not be what the config's author meant."""
    if not isinstance(scope, str) or not scope:
        return
    from torchkiln.registry import ALL_REGISTRIES, _index, scope_key
    from torchkiln.registry._keys import import_scope_registry

    installed = {_index.BUILTIN_SCOPE, *(_index.normalise_dist(d) for d in _index.distributions())}
    if scope_key(scope) in installed:
        return
    # a package declaring child registries (``mmdet``) is a scope too, once its
    # ``<scope>.registry`` module, if it has one, is imported
    import_scope_registry(scope)
    if any(root._search_child(scope) is not None for root in ALL_REGISTRIES.values()):
        return
    suggestion = did_you_mean(_index.normalise_dist(scope), sorted(installed))
    reporter.warn(
        ("default_scope",),
        f"default_scope {scope!r} names no installed package that provides components, so it "
        f"prefers nothing; installed: {', '.join(sorted(installed))}"
        + (f"; {suggestion}" if suggestion else ""),
    )


def validate(cfg: Config | Mapping[str, Any], *, components: bool = True) -> list[TorchkilnError]:
    """Every problem of ``cfg``, as a list of errors (empty when the config is valid).

    Warnings (unused values of ``.py`` configs, failed optional imports) are emitted as
    :class:`ConfigWarning`.

    :param cfg: a loaded :class:`Config` (with provenance) or a plain mapping.
    :param components: also look up component types and check their arguments (imports
        the component modules, and ``custom_imports`` first).
    """
    return _run_checks(cfg, components)[1]


def check(cfg: Config | Mapping[str, Any], *, components: bool = True) -> RunConfig:
    """Validate ``cfg`` (the same pass as :func:`validate`) and return the typed run config.

    ``torchkiln config validate``, ``torchkiln train`` and :meth:`Runner.from_cfg
    <torchkiln.runner.Runner.from_cfg>` all go through here; the Runner builds from the result.

    :raises ConfigValidationError: with every error found.
    """
    typed, errors = _run_checks(cfg, components)
    if errors:
        raise ConfigValidationError(errors)
    assert typed is not None  # no schema error means the structuring succeeded
    return typed


def check_arguments(arguments: Mapping[str, Any]) -> RunConfig:
    """The Runner's constructor arguments through the same pass (schema and rules).

    Built objects (a DataLoader, a loop, an OptimWrapper) count as present for the
    train/val/test sets but are not structured; config dicts and plain values are.

    :raises ConfigValidationError: with every error found.
    """
    data: dict[str, Any] = {}
    presence: dict[str, Any] = {}
    for key, value in arguments.items():
        if value is None:
            continue
        presence[key] = True
        if _is_config_data(value):
            data[key] = value
    reporter = Reporter(None)
    typed = _check_schema(data, reporter)
    _check_train_cfg(data.get("train_cfg"), reporter)
    _check_sets(presence, reporter)
    if reporter.errors:
        raise ConfigValidationError(reporter.errors)
    assert typed is not None
    return typed


def _is_config_data(value: Any) -> bool:
    """Plain config data (nested dicts, lists, scalars), not a built object."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return True
    if isinstance(value, Mapping):
        return all(_is_config_data(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(_is_config_data(v) for v in value)
    return False


def load_and_validate(path: str, overrides: Iterable[str] = ()) -> Config:
    """Load ``path`` with ``overrides`` and validate it.

    :raises ConfigError: the load error, or :class:`ConfigValidationError` with every
        validation error.
    """
    from torchkiln.config.loader import load

    cfg = load(path, overrides)
    errors = validate(cfg)
    if errors:
        raise ConfigValidationError(errors)
    return cfg
