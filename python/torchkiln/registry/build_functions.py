"""Build functions: a component from its config dict, with its arguments checked first."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from torchkiln.errors import BuildKeyError, BuildTypeError, add_note, did_you_mean
from torchkiln.registry.registry import Registry

__all__ = [
    "build_from_cfg",
    "build_model_from_cfg",
    "build_runner_from_cfg",
    "build_scheduler_from_cfg",
    "check_kwargs",
    "signature_params",
]


def build_from_cfg(
    cfg: Mapping[str, Any] | Any,
    registry: Registry,
    default_args: Mapping[str, Any] | None = None,
) -> Any:
    """Build ``cfg['type']`` from ``registry`` with the remaining keys as keyword arguments.

    The type is looked up in the registry of the tree whose scope is the default scope (the
    ``default_scope`` config key), falling back to ``registry``. ``_scope_`` (MMEngine's
    per-component scope) is the default scope while this component is looked up and built,
    so it picks the provider when several offer the type, and what the constructor builds
    prefers it too. ``type`` may also come from ``default_args``, or be a class.

    Unknown keyword arguments are reported before the constructor runs, with a suggestion;
    an exception inside the constructor keeps its traceback and gains a note naming the
    component.
    """
    if not isinstance(registry, Registry):
        raise TypeError(f"registry must be a torchkiln Registry, got {type(registry).__name__}")
    if not isinstance(cfg, Mapping):
        raise BuildTypeError(
            f"cannot build a {registry.name} component from {type(cfg).__name__} {cfg!r}",
            hint="give a dict with a 'type' key",
        )
    if default_args is not None and not isinstance(default_args, Mapping):
        raise TypeError(f"default_args must be a dict or None, got {type(default_args).__name__}")
    args = dict(cfg)
    if default_args:
        for key, value in default_args.items():
            args.setdefault(key, value)
    if "type" not in args:
        raise BuildKeyError(
            f"a {registry.name} config needs a 'type' key, got keys {sorted(args)}",
            hint=f"add type: <Name> (see `torchkiln plugins` for the names in {registry.name})",
        )
    scope = args.pop("_scope_", None)
    if scope is not None and not isinstance(scope, str):
        raise BuildTypeError(
            f"'_scope_' must be a scope name, got {type(scope).__name__} {scope!r}",
            hint="e.g. _scope_: mmdet",
        )
    with registry.switch_scope_and_registry(scope) as chosen:
        obj_type = args.pop("type")
        if not isinstance(obj_type, str) and not callable(obj_type):
            raise BuildTypeError(
                f"'type' of a {registry.name} config must be a name or a class, "
                f"got {type(obj_type).__name__} {obj_type!r}"
            )
        obj_cls = chosen.get(obj_type)
        type_name = getattr(obj_cls, "__name__", repr(obj_cls))
        check_kwargs(obj_cls, args, f"{registry.name}.{type_name}")
        try:
            if _is_managed(obj_cls):
                # a named, process-wide instance (MessageHub-like): fetch or create it
                return obj_cls.get_instance(**args)
            return obj_cls(**args)
        except Exception as exc:
            add_note(exc, f"while building {type_name} from registry {registry.name}")
            raise


def _is_managed(obj_cls: Any) -> bool:
    from torchkiln.utils import ManagerMixin

    return inspect.isclass(obj_cls) and issubclass(obj_cls, ManagerMixin)


def signature_params(obj: Any) -> tuple[list[str], bool, dict[str, Any]] | None:
    """What ``obj`` (a class or function) accepts by keyword, or None if it has no signature.

    :returns: ``(names, has_var_kw, defaults)``: the parameters that can be passed by
        keyword in order, whether ``**kwargs`` is accepted, and the defaults of those that
        have one.
    """
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    names: list[str] = []
    defaults: dict[str, Any] = {}
    var_kw = False
    for name, p in sig.parameters.items():
        if p.kind is p.VAR_KEYWORD:
            var_kw = True
        elif p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            names.append(name)
            if p.default is not p.empty:
                defaults[name] = p.default
    return names, var_kw, defaults


def check_kwargs(obj_cls: Any, kwargs: Mapping[str, Any], what: str) -> None:
    """Raise :class:`BuildError` if ``kwargs`` cannot bind to ``obj_cls``'s signature."""
    found = signature_params(obj_cls)
    if found is None:
        return
    accepted, var_kw, defaults = found
    if var_kw:
        return
    for key in kwargs:
        if key not in accepted:
            raise BuildTypeError(
                f"{what} got an unexpected argument {key!r}",
                hint=(did_you_mean(key, accepted) or "")
                + f" accepted: {', '.join(accepted) or 'none'}",
            )
    missing = [n for n in accepted if n not in defaults and n not in kwargs]
    if missing:
        raise BuildTypeError(f"{what} is missing required argument(s): {', '.join(missing)}")


def build_model_from_cfg(
    cfg: Mapping[str, Any] | list[Mapping[str, Any]],
    registry: Registry,
    default_args: Mapping[str, Any] | None = None,
) -> Any:
    """Build one module from a config dict, or a ``torch.nn.Sequential`` of them from a list
    of dicts (the MODELS registry's build function, as in MMEngine)."""
    if isinstance(cfg, list):
        import torch.nn

        return torch.nn.Sequential(*(build_from_cfg(c, registry, default_args) for c in cfg))
    return build_from_cfg(cfg, registry, default_args)


def build_runner_from_cfg(cfg: Mapping[str, Any], registry: Registry) -> Any:
    """A runner from a whole run config: ``registry.get(cfg.runner_type or 'Runner')``'s
    ``from_cfg(cfg)`` (the RUNNERS registry's build function, as in MMEngine).

    ``_scope_`` in ``cfg`` picks the registry tree the runner class is looked up in.
    """
    if not isinstance(cfg, Mapping):
        raise BuildTypeError(
            f"a runner is built from a config dict, got {type(cfg).__name__}",
            hint="load the config first: Config.fromfile(path)",
        )
    scope = cfg.get("_scope_")
    with registry.switch_scope_and_registry(scope) as chosen:
        runner_type = cfg.get("runner_type") or "Runner"
        runner_cls = chosen.get(runner_type) if isinstance(runner_type, str) else runner_type
        return runner_cls.from_cfg(cfg)


def build_scheduler_from_cfg(
    cfg: Mapping[str, Any],
    registry: Registry,
    default_args: Mapping[str, Any] | None = None,
) -> Any:
    """A parameter scheduler; with ``convert_to_iter_based: true`` one built in iterations
    from arguments given in epochs (``default_args`` must then give ``epoch_length``), as
    MMEngine's PARAM_SCHEDULERS build function does."""
    if not isinstance(cfg, Mapping) or not cfg.get("convert_to_iter_based", False):
        args = dict(cfg) if isinstance(cfg, Mapping) else cfg
        if isinstance(args, dict):
            args.pop("convert_to_iter_based", None)
        return build_from_cfg(args, registry, default_args)
    args = {k: v for k, v in cfg.items() if k != "convert_to_iter_based"}
    for key, value in (default_args or {}).items():
        args.setdefault(key, value)
    if "epoch_length" not in args:
        raise BuildKeyError(
            "convert_to_iter_based needs the epoch length",
            hint="pass default_args={'epoch_length': len(train_dataloader), ...}",
        )
    scope = args.pop("_scope_", None)
    with registry.switch_scope_and_registry(scope) as chosen:
        obj_type = args.pop("type")
        scheduler_cls = chosen.get(obj_type) if isinstance(obj_type, str) else obj_type
        return scheduler_cls.build_iter_from_epoch(**args)
