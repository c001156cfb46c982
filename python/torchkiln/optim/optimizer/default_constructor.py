"""DefaultOptimWrapperConstructor: optimizer + wrapper from config, with per-parameter rules.

``paramwise_cfg`` follows MMEngine's vocabulary (``custom_keys`` with ``lr_mult`` and
``decay_mult``, ``bias_lr_mult``, ``bias_decay_mult``, ``norm_decay_mult``,
``dwconv_decay_mult``, ``flat_decay_mult``, ``dcn_offset_lr_mult``, ``bypass_duplicate``).
Rules are decided per parameter, and as in MMEngine every parameter gets a param group of
its own, in ``model.parameters()`` order: an MMEngine checkpoint's optimizer state then
loads, and code that indexes ``param_groups`` finds what it expects. ``merge_groups: true``
(torchkiln's own key) merges parameters whose settings are equal into one group, in order
of first appearance: far fewer groups, so optimizer steps and schedulers are faster.
With ``paramwise_cfg``, frozen parameters (``requires_grad=False``) are left out of the
optimizer, as MMEngine does; without it the optimizer gets ``model.parameters()``.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.instancenorm import _InstanceNorm

from torchkiln.errors import (
    ConfigAssertionError,
    ConfigKeyError,
    ConfigTypeError,
    ConfigValueError,
    did_you_mean,
)
from torchkiln.optim.optimizer._model import unwrap_model
from torchkiln.optim.optimizer.optim_wrapper import OptimWrapper
from torchkiln.registry import (
    OPTIM_WRAPPER_CONSTRUCTORS,
    OPTIM_WRAPPERS,
    OPTIMIZERS,
    signature_params,
)

__all__ = ["DefaultOptimWrapperConstructor", "merge_param_groups"]

PARAMWISE_KEYS: tuple[str, ...] = (
    "custom_keys",
    "bias_lr_mult",
    "bias_decay_mult",
    "norm_decay_mult",
    "dwconv_decay_mult",
    "flat_decay_mult",
    "dcn_offset_lr_mult",
    "bypass_duplicate",
    "merge_groups",
)
_DECAY_KEYS = ("bias_decay_mult", "norm_decay_mult", "dwconv_decay_mult", "flat_decay_mult")
_MULT_KEYS = ("lr_mult", "decay_mult")
_NORM_TYPES: tuple[type, ...] = (_BatchNorm, _InstanceNorm, nn.GroupNorm, nn.LayerNorm) + (
    (nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ()
)
# Deformable convolutions (mmcv, torchvision), recognised by name so neither is imported.
_DCN_NAMES = frozenset(
    {"DeformConv2d", "ModulatedDeformConv2d", "DeformConv2dPack", "ModulatedDeformConv2dPack"}
)
WHERE = "optim_wrapper"


def _is_dcn(module: nn.Module) -> bool:
    """Whether ``module`` is a deformable convolution (any class in its MRO has a DCN name)."""
    return any(klass.__name__ in _DCN_NAMES for klass in type(module).__mro__)


def _is_optimizer(obj: Any) -> bool:
    return hasattr(obj, "param_groups") and hasattr(obj, "step")


def _optimizer_signature_defaults(optimizer_type: Any) -> dict[str, Any]:
    """Keyword arguments of an optimizer class and their defaults (``_empty`` if none)."""
    if not isinstance(optimizer_type, (str, type)):  # no type given: nothing to look up
        return {}
    found = signature_params(OPTIMIZERS.get(optimizer_type))
    if found is None:
        return {}
    names, _, defaults = found
    return {name: defaults.get(name, inspect.Parameter.empty) for name in names if name != "params"}


def _first_argument(optimizer_type: Any) -> str:
    """The name of the optimizer's first argument, which takes the parameters: ``params`` for
    torch's, ``model_params`` for some others (colossalai's HybridAdam, say)."""
    optimizer_cls = optimizer_type
    if isinstance(optimizer_type, str):
        with OPTIMIZERS.switch_scope_and_registry(None) as registry:  # the default scope's
            optimizer_cls = registry.get(optimizer_type)
    try:
        names = list(inspect.signature(optimizer_cls).parameters)
    except (TypeError, ValueError):  # no signature to read: torch's name
        return "params"
    return names[0] if names and names[0] not in ("args", "kwargs") else "params"


def merge_param_groups(
    groups: list[dict[str, Any]], defaults: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Merge param groups whose settings are equal once ``defaults`` fill the missing ones.

    Order is kept: merged groups appear where their first member appeared, and parameters
    keep their order inside a group.

    :param groups: dicts with ``params`` (a list) and optional settings.
    :param defaults: the optimizer-level settings a group without a key would get.
    """
    merged: dict[tuple[tuple[str, str], ...], dict[str, Any]] = {}
    for group in groups:
        settings = {k: v for k, v in group.items() if k != "params"}
        resolved = {**defaults, **settings}
        key = tuple(sorted((k, repr(v)) for k, v in resolved.items()))
        target = merged.get(key)
        if target is None:
            merged[key] = {"params": list(group["params"]), **settings}
        else:
            target["params"].extend(group["params"])
            for k, v in settings.items():
                target.setdefault(k, v)
    return list(merged.values())


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class DefaultOptimWrapperConstructor:
    """Build an :class:`OptimWrapper` for a model from the ``optim_wrapper`` config.

    :param optim_wrapper_cfg: ``{optimizer: {type: SGD, lr: ...} | Optimizer, type:
        OptimWrapper, accumulative_counts, clip_grad, ...}``; keys other than ``optimizer``
        go to the wrapper.
    :param paramwise_cfg: per-parameter rules (see the module docstring). A parameter
        whose name contains a ``custom_keys`` key takes that key's ``lr_mult`` and
        ``decay_mult`` (the longest matching key wins, ties by alphabetical order) and no
        other rule; other keys of a ``custom_keys`` entry that the optimizer accepts (e.g.
        ``momentum``) are set as they are. ``bias_lr_mult`` applies to biases except in
        norm layers and DCN offsets; the decay rules apply in this order: norm layers,
        biases, depth-wise convolutions, other 1-D parameters. ``bypass_duplicate`` keeps a
        shared parameter once instead of failing. ``merge_groups`` puts parameters with
        equal settings in one param group instead of one group each.

    A subclass that reads keys of its own from ``paramwise_cfg`` declares them in
    :attr:`paramwise_keys`; one that overrides ``__call__`` or ``add_params`` without
    declaring them accepts any key, since it interprets the config itself.
    """

    #: The keys ``paramwise_cfg`` may hold; others are errors. ``None`` accepts any key.
    #: Extend it in a subclass: ``paramwise_keys = (*PARAMWISE_KEYS, "conv1_lr_mult")``.
    paramwise_keys: ClassVar[tuple[str, ...] | None] = PARAMWISE_KEYS

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        overrides = any(name in cls.__dict__ for name in ("__call__", "add_params"))
        if overrides and "paramwise_keys" not in cls.__dict__:
            cls.paramwise_keys = None

    def __init__(
        self, optim_wrapper_cfg: Mapping[str, Any], paramwise_cfg: Mapping[str, Any] | None = None
    ) -> None:
        if not isinstance(optim_wrapper_cfg, Mapping):
            raise ConfigTypeError(
                f"optim_wrapper must be a dict, got {type(optim_wrapper_cfg).__name__}",
                where=WHERE,
                hint="e.g. optim_wrapper: {optimizer: {type: SGD, lr: 0.01}}",
            )
        cfg = dict(optim_wrapper_cfg)
        inline_paramwise = cfg.pop("paramwise_cfg", None)
        if paramwise_cfg is None:
            paramwise_cfg = inline_paramwise
        if "optimizer" not in cfg:
            raise ConfigAssertionError(
                "`optim_wrapper_cfg` must contain an 'optimizer' entry, e.g. optimizer: "
                "{type: SGD, lr: 0.01}",
                where=WHERE,
                hint="for several optimizers use constructor: MultiOptimWrapperConstructor with one section each",
            )
        #: The optimizer's config (or a built optimizer).
        self.optimizer_cfg = cfg.pop("optimizer")
        #: The wrapper's config, without ``optimizer`` (as in MMEngine, so a subclass builds
        #: the wrapper with ``OPTIM_WRAPPERS.build(cfg, default_args={'optimizer': ...})``).
        self.optim_wrapper_cfg = cfg
        if paramwise_cfg is not None and not isinstance(paramwise_cfg, Mapping):
            raise ConfigTypeError(
                f"paramwise_cfg must be a dict, got {type(paramwise_cfg).__name__}",
                where=f"{WHERE}.paramwise_cfg",
            )
        self.paramwise_cfg: dict[str, Any] = dict(paramwise_cfg or {})
        if isinstance(self.optimizer_cfg, Mapping):
            self.base_lr = self.optimizer_cfg.get("lr")
            self.base_wd = self.optimizer_cfg.get("weight_decay")
        else:
            self.base_lr = self.base_wd = None
        self._validate()

    # ------------------------------------------------------------------ validation
    def _validate(self) -> None:
        pw = self.paramwise_cfg
        if not pw:
            return
        if not isinstance(self.optimizer_cfg, Mapping):
            raise ConfigTypeError(
                "paramwise_cfg needs the optimizer as a config dict, not a built optimizer",
                where=f"{WHERE}.paramwise_cfg",
                hint="give optimizer: {type: ..., lr: ...} so the constructor can make the param groups",
            )
        accepted = self.paramwise_keys
        unknown = [key for key in pw if accepted is not None and key not in accepted]
        if accepted is not None and unknown:
            raise ConfigKeyError(
                f"unknown paramwise_cfg key {unknown[0]!r} for {type(self).__name__}",
                where=f"{WHERE}.paramwise_cfg.{unknown[0]}",
                hint=(did_you_mean(unknown[0], accepted) or "")
                + f" known: {', '.join(accepted)}; a constructor subclass declares keys"
                " of its own in its paramwise_keys attribute",
            )
        custom_keys = pw.get("custom_keys", {})
        if not isinstance(custom_keys, Mapping):
            raise ConfigTypeError(
                f"paramwise_cfg.custom_keys must be a dict, got {type(custom_keys).__name__}",
                where=f"{WHERE}.paramwise_cfg.custom_keys",
                hint="e.g. custom_keys: {backbone: {lr_mult: 0.1}}",
            )
        optimizer_args: dict[str, Any] | None = None
        for name, rule in custom_keys.items():
            where = f"{WHERE}.paramwise_cfg.custom_keys.{name}"
            if not isinstance(rule, Mapping):
                raise ConfigTypeError(
                    f"custom_keys entry {name!r} must be a dict",
                    where=where,
                    hint="e.g. {lr_mult: 0.1, decay_mult: 0.0}",
                )
            extras = [k for k in rule if k not in _MULT_KEYS]
            if extras:
                if optimizer_args is None:
                    optimizer_args = _optimizer_signature_defaults(self.optimizer_cfg.get("type"))
                for extra in extras:
                    if extra not in optimizer_args or extra in ("lr", "weight_decay"):
                        choices = [
                            *_MULT_KEYS,
                            *(a for a in optimizer_args if a not in ("lr", "weight_decay")),
                        ]
                        raise ConfigKeyError(
                            f"custom_keys entry {name!r} has an unknown setting {extra!r}",
                            where=f"{where}.{extra}",
                            hint=(did_you_mean(extra, choices) or "")
                            + f" accepted: {', '.join(choices)}",
                        )
        decay_users = [f"paramwise_cfg.{key}" for key in _DECAY_KEYS if key in pw]
        decay_users += [
            f"paramwise_cfg.custom_keys.{name}.decay_mult"
            for name, rule in custom_keys.items()
            if "decay_mult" in rule
        ]
        if decay_users and self.base_wd is None:
            # like lr below: a weight_decay left out of the config is the optimizer's default
            # (AdamW's 0.01); a default of 0 (SGD, Adam) would make the multiplier a silent
            # no-op, so that fails as in MMEngine
            default = _optimizer_signature_defaults(self.optimizer_cfg.get("type")).get(
                "weight_decay"
            )
            if not isinstance(default, (int, float)) or isinstance(default, bool) or not default:
                raise ConfigValueError(
                    f"{decay_users[0]} needs the optimizer's weight_decay (base_wd should not "
                    f"be None), and {self.optimizer_cfg.get('type')!r} has "
                    + (
                        "a default weight_decay of 0" if default == 0 else "no default weight_decay"
                    ),
                    where=f"{WHERE}.{decay_users[0]}",
                    hint="set optimizer.weight_decay",
                )
            self.base_wd = default
        uses_lr = (
            "bias_lr_mult" in pw
            or "dcn_offset_lr_mult" in pw
            or any("lr_mult" in r for r in custom_keys.values())
        )
        if uses_lr and self.base_lr is None:
            default = _optimizer_signature_defaults(self.optimizer_cfg.get("type")).get(
                "lr", inspect.Parameter.empty
            )
            if default is inspect.Parameter.empty or not isinstance(default, (int, float)):
                raise ConfigValueError(
                    "lr multipliers need the optimizer's lr",
                    where=f"{WHERE}.optimizer",
                    hint="set optimizer.lr",
                )
            self.base_lr = default

    # ------------------------------------------------------------------ building
    def __call__(self, model: nn.Module) -> OptimWrapper:
        """Build the optimizer for ``model``'s parameters and wrap it."""
        model = unwrap_model(model)
        cfg = dict(self.optim_wrapper_cfg)
        optimizer_cfg = self.optimizer_cfg
        cfg.setdefault("type", "OptimWrapper")
        if _is_optimizer(optimizer_cfg):
            optimizer = optimizer_cfg
        elif isinstance(optimizer_cfg, Mapping):
            opt_cfg = dict(optimizer_cfg)
            if "type" not in opt_cfg:
                raise ConfigKeyError(
                    "optim_wrapper.optimizer needs a 'type'",
                    where=f"{WHERE}.optimizer",
                    hint="e.g. optimizer: {type: SGD, lr: 0.01} (any torch.optim class, or a registered one)",
                )
            params = self.param_groups(model) if self.paramwise_cfg else model.parameters()
            opt_cfg[_first_argument(opt_cfg["type"])] = params
            optimizer = OPTIMIZERS.build(opt_cfg)
        else:
            raise ConfigTypeError(
                f"optim_wrapper.optimizer must be a dict or an optimizer, got {type(optimizer_cfg).__name__}",
                where=f"{WHERE}.optimizer",
                hint="e.g. optimizer: {type: SGD, lr: 0.01}",
            )
        return OPTIM_WRAPPERS.build(cfg, default_args={"optimizer": optimizer})

    def param_groups(self, model: nn.Module) -> list[dict[str, Any]]:
        """The param groups ``paramwise_cfg`` gives for ``model``: one per parameter, or
        with ``merge_groups`` one per distinct setting."""
        self._seen: dict[int, str] = {}
        self._skipped: dict[str, list[str]] = {"frozen": [], "duplicate": []}
        groups: list[dict[str, Any]] = []
        self.add_params(groups, model)
        self._log_skipped()
        if not self.paramwise_cfg.get("merge_groups", False):
            return groups
        defaults = {k: v for k, v in self.optimizer_cfg.items() if k != "type"}
        for key, value in (("lr", self.base_lr), ("weight_decay", self.base_wd)):
            if value is not None:
                defaults.setdefault(key, value)
        return merge_param_groups(groups, defaults)

    def add_params(
        self,
        params: list[dict[str, Any]],
        module: nn.Module,
        prefix: str = "",
        is_dcn_module: bool | None = None,
    ) -> None:
        """Append one group per trainable parameter of ``module`` (recursively) to ``params``.

        :param params: the list of param groups being built.
        :param module: the module whose parameters are added.
        :param prefix: the module's dotted name in the model ("" for the model itself).
        :param is_dcn_module: whether ``module`` sits inside a deformable convolution.
        """
        seen: dict[int, str] = self.__dict__.setdefault("_seen", {})
        skipped: dict[str, list[str]] = self.__dict__.setdefault(
            "_skipped", {"frozen": [], "duplicate": []}
        )
        pw = self.paramwise_cfg
        custom_keys: Mapping[str, Mapping[str, Any]] = pw.get("custom_keys", {})
        # Longest key first; equal lengths in alphabetical order.
        sorted_keys = sorted(sorted(custom_keys), key=len, reverse=True)
        bypass_duplicate = bool(pw.get("bypass_duplicate", False))
        # Like MMEngine, "inside a DCN" means the parent module is one (its offset convolution).
        is_dcn = bool(is_dcn_module)
        is_norm = isinstance(module, _NORM_TYPES)
        is_dwconv = isinstance(module, nn.Conv2d) and module.in_channels == module.groups

        for name, param in module.named_parameters(recurse=False):
            full_name = f"{prefix}.{name}" if prefix else name
            if not param.requires_grad:  # skipped, so a frozen shared one is no duplicate
                skipped["frozen"].append(full_name)
                continue
            first = seen.get(id(param))
            if first is not None:
                if bypass_duplicate:
                    skipped["duplicate"].append(full_name)
                    continue
                raise ConfigValueError(
                    f"parameter {full_name!r} is the same tensor as {first!r}: "
                    "some parameters appear in more than one parameter group",
                    where=f"{WHERE}.paramwise_cfg",
                    hint="set paramwise_cfg.bypass_duplicate: true to keep shared parameters once",
                )
            seen[id(param)] = full_name
            group: dict[str, Any] = {"params": [param]}
            group.update(
                self._settings_for(
                    name,
                    param,
                    f"{prefix}.{name}",
                    sorted_keys,
                    is_norm=is_norm,
                    is_dwconv=is_dwconv,
                    is_dcn=is_dcn,
                    module=module,
                    prefix=prefix,
                )
            )
            params.append(group)

        children_in_dcn = _is_dcn(module)
        for child_name, child in module.named_children():
            child_prefix = f"{prefix}.{child_name}" if prefix else child_name
            self.add_params(params, child, prefix=child_prefix, is_dcn_module=children_in_dcn)

    def _log_skipped(self) -> None:
        """One warning each for the frozen and the shared parameters left out."""
        from torchkiln.logging import print_log

        skipped = self.__dict__.get("_skipped", {})
        reasons = {
            "frozen": "requires_grad=False",
            "duplicate": "shared with another parameter, and bypass_duplicate=True",
        }
        for kind, names in skipped.items():
            if names:
                shown = ", ".join(names[:8]) + (
                    f", ... ({len(names)} in all)" if len(names) > 8 else ""
                )
                print_log(
                    f"{len(names)} parameter(s) left out of the optimizer ({reasons[kind]}): {shown}",
                    logger="current",
                    level="WARNING",
                )

    def _settings_for(
        self,
        name: str,
        param: torch.Tensor,
        match_name: str,
        sorted_keys: list[str],
        *,
        is_norm: bool,
        is_dwconv: bool,
        is_dcn: bool,
        module: nn.Module,
        prefix: str,
    ) -> dict[str, Any]:
        pw = self.paramwise_cfg
        custom_keys = pw.get("custom_keys", {})
        for key in sorted_keys:
            if key in match_name:
                rule = custom_keys[key]
                settings: dict[str, Any] = {}
                if self.base_lr is not None:
                    settings["lr"] = self.base_lr * rule.get("lr_mult", 1.0)
                if self.base_wd is not None:
                    settings["weight_decay"] = self.base_wd * rule.get("decay_mult", 1.0)
                settings.update({k: v for k, v in rule.items() if k not in _MULT_KEYS})
                return settings

        settings = {}
        bias_lr_mult = pw.get("bias_lr_mult")
        if name == "bias" and not (is_norm or is_dcn) and bias_lr_mult is not None:
            settings["lr"] = self.base_lr * bias_lr_mult
        dcn_offset_lr_mult = pw.get("dcn_offset_lr_mult")
        if (
            is_dcn
            and "conv_offset" in prefix
            and isinstance(module, nn.Conv2d)
            and dcn_offset_lr_mult is not None
        ):
            settings["lr"] = self.base_lr * dcn_offset_lr_mult
        if self.base_wd is not None:
            mult = None
            if is_norm and pw.get("norm_decay_mult") is not None:
                mult = pw["norm_decay_mult"]
            elif name == "bias" and not is_dcn and pw.get("bias_decay_mult") is not None:
                mult = pw["bias_decay_mult"]
            elif is_dwconv and pw.get("dwconv_decay_mult") is not None:
                mult = pw["dwconv_decay_mult"]
            elif param.ndim == 1 and not is_dcn and pw.get("flat_decay_mult") is not None:
                mult = pw["flat_decay_mult"]
            if mult is not None:
                settings["weight_decay"] = self.base_wd * mult
        return settings
