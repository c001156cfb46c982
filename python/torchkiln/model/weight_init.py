"""Weight initializers: functions, registered initializer classes, and ``initialize``.

An ``init_cfg`` is a dict (or a list of dicts) such as::

    dict(type='Kaiming', layer=['Conv2d', 'Linear'], mode='fan_in',
         override=dict(name='head', type='Normal', std=0.01))

``type`` names an initializer in ``WEIGHT_INITIALIZERS``; ``layer`` names the layer classes
it applies to (a class name matches the layer's class and every base class, so ``'_BatchNorm'``
covers ``BatchNorm1d/2d/3d``); ``override`` re-initialises named children as a whole, with its
own ``type`` or, when it gives only ``name``, with the outer initializer.
"""

from __future__ import annotations

import copy
import logging
import math
import numbers
import re
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from torchkiln.errors import (
    BuildKeyError,
    ConfigAssertionError,
    ConfigError,
    ConfigRuntimeError,
    ConfigTypeError,
    ConfigValueError,
    did_you_mean,
)
from torchkiln.registry import WEIGHT_INITIALIZERS

__all__ = [
    "BaseInit",
    "Caffe2XavierInit",
    "ConstantInit",
    "KaimingInit",
    "NormalInit",
    "PretrainedInit",
    "TruncNormalInit",
    "UniformInit",
    "XavierInit",
    "bias_init_with_prob",
    "build_initializer",
    "caffe2_xavier_init",
    "constant_init",
    "initialize",
    "kaiming_init",
    "load_pretrained_state_dict",
    "normal_init",
    "trunc_normal_init",
    "uniform_init",
    "xavier_init",
]

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------------- helpers
def _tensor_attr(module: nn.Module, name: str) -> torch.Tensor | None:
    value = getattr(module, name, None)
    return value if isinstance(value, torch.Tensor) else None


def _fill_bias(module: nn.Module, bias: float) -> None:
    b = _tensor_attr(module, "bias")
    if b is not None:
        nn.init.constant_(b, bias)


def bias_init_with_prob(prior_prob: float) -> float:
    """The bias that makes ``sigmoid(bias) == prior_prob`` (focal-loss style classifiers).

    :param prior_prob: the prior probability of the positive class, in (0, 1).
    """
    if not 0.0 < prior_prob < 1.0:
        raise ValueError(f"prior_prob must be in (0, 1), got {prior_prob}")
    return float(-math.log((1.0 - prior_prob) / prior_prob))


def constant_init(module: nn.Module, val: float, bias: float = 0) -> None:
    """Fill ``module.weight`` with ``val`` and ``module.bias`` with ``bias`` (where present).

    :param module: the layer.
    :param val: the weight value.
    :param bias: the bias value.
    """
    w = _tensor_attr(module, "weight")
    if w is not None:
        nn.init.constant_(w, val)
    _fill_bias(module, bias)


def xavier_init(
    module: nn.Module, gain: float = 1, bias: float = 0, distribution: str = "normal"
) -> None:
    """Xavier (Glorot) initialisation of ``module.weight``; constant ``bias``.

    :param module: the layer.
    :param gain: scaling factor.
    :param bias: the bias value.
    :param distribution: ``'normal'`` or ``'uniform'``.
    """
    _check_distribution(distribution)
    w = _tensor_attr(module, "weight")
    if w is not None:
        if distribution == "uniform":
            nn.init.xavier_uniform_(w, gain=gain)
        else:
            nn.init.xavier_normal_(w, gain=gain)
    _fill_bias(module, bias)


def normal_init(module: nn.Module, mean: float = 0, std: float = 1, bias: float = 0) -> None:
    """Draw ``module.weight`` from N(mean, std^2); constant ``bias``.

    :param module: the layer.
    :param mean: mean of the normal distribution.
    :param std: standard deviation.
    :param bias: the bias value.
    """
    w = _tensor_attr(module, "weight")
    if w is not None:
        nn.init.normal_(w, mean, std)
    _fill_bias(module, bias)


def trunc_normal_init(
    module: nn.Module, mean: float = 0, std: float = 1, a: float = -2, b: float = 2, bias: float = 0
) -> None:
    """Draw ``module.weight`` from N(mean, std^2) truncated to ``[a, b]``; constant ``bias``.

    :param module: the layer.
    :param mean: mean of the normal distribution.
    :param std: standard deviation.
    :param a: lower cut-off (absolute value, not in units of ``std``).
    :param b: upper cut-off.
    :param bias: the bias value.
    """
    w = _tensor_attr(module, "weight")
    if w is not None:
        nn.init.trunc_normal_(w, mean, std, a, b)
    _fill_bias(module, bias)


def uniform_init(module: nn.Module, a: float = 0, b: float = 1, bias: float = 0) -> None:
    """Draw ``module.weight`` from U(a, b); constant ``bias``.

    :param module: the layer.
    :param a: lower bound.
    :param b: upper bound.
    :param bias: the bias value.
    """
    w = _tensor_attr(module, "weight")
    if w is not None:
        nn.init.uniform_(w, a, b)
    _fill_bias(module, bias)


def kaiming_init(
    module: nn.Module,
    a: float = 0,
    mode: str = "fan_out",
    nonlinearity: str = "relu",
    bias: float = 0,
    distribution: str = "normal",
) -> None:
    """Kaiming (He) initialisation of ``module.weight``; constant ``bias``.

    :param module: the layer.
    :param a: negative slope of the rectifier that follows (``leaky_relu`` only).
    :param mode: ``'fan_in'`` or ``'fan_out'``.
    :param nonlinearity: the nonlinearity that follows, e.g. ``'relu'``.
    :param bias: the bias value.
    :param distribution: ``'normal'`` or ``'uniform'``.
    """
    _check_distribution(distribution)
    w = _tensor_attr(module, "weight")
    if w is not None:
        if distribution == "uniform":
            nn.init.kaiming_uniform_(w, a=a, mode=mode, nonlinearity=nonlinearity)  # type: ignore[arg-type]  # config strings; torch rejects unknown ones
        else:
            nn.init.kaiming_normal_(w, a=a, mode=mode, nonlinearity=nonlinearity)  # type: ignore[arg-type]  # config strings; torch rejects unknown ones
    _fill_bias(module, bias)


def caffe2_xavier_init(module: nn.Module, bias: float = 0) -> None:
    """Caffe2's "XavierFill": Kaiming uniform with ``a=1``, ``fan_in``, ``leaky_relu``.

    :param module: the layer.
    :param bias: the bias value.
    """
    kaiming_init(
        module, a=1, mode="fan_in", nonlinearity="leaky_relu", bias=bias, distribution="uniform"
    )


def _check_distribution(distribution: str) -> None:
    if distribution not in ("normal", "uniform"):
        raise ConfigAssertionError(
            f"unknown distribution {distribution!r}",
            hint="distribution is 'normal' or 'uniform'",
        )


def _class_names(module: nn.Module) -> set[str]:
    return {klass.__name__ for klass in type(module).__mro__}


# ---------------------------------------------------------------------------- initializers
class BaseInit:
    """Base of the registered initializers: which layers, and the bias.

    :param layer: class name(s) of the layers to initialise (matched against the class and its
        bases); ``None`` initialises nothing unless the initializer is applied to a whole module
        through ``override``.
    :param bias: the bias value.
    :param bias_prob: when given, the bias is ``bias_init_with_prob(bias_prob)``.
    """

    #: set by :func:`initialize` for ``override``: every layer of the module, regardless of ``layer``.
    wholemodule: bool = False
    #: fan-based initializers cannot initialise 1-D weights (e.g. norms); they skip them when
    #: applied to a whole module.
    _needs_fan: bool = False

    def __init__(
        self,
        *,
        bias: float = 0,
        bias_prob: float | None = None,
        layer: str | list[str] | None = None,
    ) -> None:
        if not isinstance(bias, numbers.Real) or isinstance(bias, bool):
            raise ConfigTypeError(f"{type(self).__name__}: bias must be a number, got {bias!r}")
        if bias_prob is not None:
            if not isinstance(bias_prob, numbers.Real) or isinstance(bias_prob, bool):
                raise ConfigTypeError(
                    f"{type(self).__name__}: bias_prob must be a float, got {bias_prob!r}"
                )
            bias = bias_init_with_prob(bias_prob)
        if layer is None:
            layers: list[str] = []
        elif isinstance(layer, str):
            layers = [layer]
        elif isinstance(layer, (list, tuple)) and all(isinstance(x, str) for x in layer):
            layers = list(layer)
        else:
            raise ConfigTypeError(
                f"{type(self).__name__}: layer must be a class name or a list of class names, got {layer!r}",
                hint="e.g. layer='Conv2d' or layer=['Conv2d', 'Linear']",
            )
        self.bias: float = bias
        self.layer: list[str] = layers

    def init_layer(self, module: nn.Module) -> None:
        """Initialise one layer (its own ``weight``/``bias``). Subclasses implement this."""
        raise NotImplementedError

    def matches(self, module: nn.Module) -> bool:
        """True when this initializer applies to ``module``."""
        if self.wholemodule:
            if self._needs_fan:
                w = _tensor_attr(module, "weight")
                return w is not None and w.dim() >= 2
            return True
        return bool(self.layer) and not _class_names(module).isdisjoint(self.layer)

    def __call__(self, module: nn.Module) -> None:
        """Initialise every matching layer in ``module`` (itself included)."""
        for m in module.modules():
            if self.matches(m):
                self.init_layer(m)

    def describe(self) -> str:
        """One line naming the initializer and its settings, for init reports."""
        fields = ", ".join(f"{k}={v}" for k, v in self._settings().items())
        return f"{self._registered_name()}: {fields}"

    def _settings(self) -> dict[str, Any]:
        return {"bias": self.bias}

    def _registered_name(self) -> str:
        name = type(self).__name__
        return name[: -len("Init")] if name.endswith("Init") else name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self._settings().items())}, layer={self.layer!r})"


@WEIGHT_INITIALIZERS.register_module(name="Constant")
class ConstantInit(BaseInit):
    """Constant weights and bias.

    :param val: the weight value.
    """

    def __init__(
        self,
        val: float,
        bias: float = 0,
        bias_prob: float | None = None,
        layer: str | list[str] | None = None,
    ) -> None:
        super().__init__(bias=bias, bias_prob=bias_prob, layer=layer)
        self.val = val

    def init_layer(self, module: nn.Module) -> None:
        """Fill one layer."""
        constant_init(module, self.val, self.bias)

    def _settings(self) -> dict[str, Any]:
        return {"val": self.val, "bias": self.bias}


@WEIGHT_INITIALIZERS.register_module(name="Xavier")
class XavierInit(BaseInit):
    """Xavier (Glorot) initialisation.

    :param gain: scaling factor.
    :param distribution: ``'normal'`` or ``'uniform'``.
    """

    _needs_fan = True

    def __init__(
        self,
        gain: float = 1,
        distribution: str = "normal",
        bias: float = 0,
        bias_prob: float | None = None,
        layer: str | list[str] | None = None,
    ) -> None:
        super().__init__(bias=bias, bias_prob=bias_prob, layer=layer)
        _check_distribution(distribution)
        self.gain = gain
        self.distribution = distribution

    def init_layer(self, module: nn.Module) -> None:
        """Initialise one layer."""
        xavier_init(module, self.gain, self.bias, self.distribution)

    def _settings(self) -> dict[str, Any]:
        return {"gain": self.gain, "distribution": self.distribution, "bias": self.bias}


@WEIGHT_INITIALIZERS.register_module(name="Normal")
class NormalInit(BaseInit):
    """Normal N(mean, std^2) weights.

    :param mean: mean.
    :param std: standard deviation.
    """

    def __init__(
        self,
        mean: float = 0,
        std: float = 1,
        bias: float = 0,
        bias_prob: float | None = None,
        layer: str | list[str] | None = None,
    ) -> None:
        super().__init__(bias=bias, bias_prob=bias_prob, layer=layer)
        self.mean = mean
        self.std = std

    def init_layer(self, module: nn.Module) -> None:
        """Initialise one layer."""
        normal_init(module, self.mean, self.std, self.bias)

    def _settings(self) -> dict[str, Any]:
        return {"mean": self.mean, "std": self.std, "bias": self.bias}


@WEIGHT_INITIALIZERS.register_module(name="TruncNormal")
class TruncNormalInit(BaseInit):
    """Truncated normal weights: N(mean, std^2) restricted to ``[a, b]``.

    :param mean: mean.
    :param std: standard deviation.
    :param a: lower cut-off.
    :param b: upper cut-off.
    """

    def __init__(
        self,
        mean: float = 0,
        std: float = 1,
        a: float = -2,
        b: float = 2,
        bias: float = 0,
        bias_prob: float | None = None,
        layer: str | list[str] | None = None,
    ) -> None:
        super().__init__(bias=bias, bias_prob=bias_prob, layer=layer)
        if a >= b:
            raise ConfigValueError(f"TruncNormal needs a < b, got a={a}, b={b}")
        self.mean = mean
        self.std = std
        self.a = a
        self.b = b

    def init_layer(self, module: nn.Module) -> None:
        """Initialise one layer."""
        trunc_normal_init(module, self.mean, self.std, self.a, self.b, self.bias)

    def _settings(self) -> dict[str, Any]:
        return {"mean": self.mean, "std": self.std, "a": self.a, "b": self.b, "bias": self.bias}


@WEIGHT_INITIALIZERS.register_module(name="Uniform")
class UniformInit(BaseInit):
    """Uniform U(a, b) weights.

    :param a: lower bound.
    :param b: upper bound.
    """

    def __init__(
        self,
        a: float = 0,
        b: float = 1,
        bias: float = 0,
        bias_prob: float | None = None,
        layer: str | list[str] | None = None,
    ) -> None:
        super().__init__(bias=bias, bias_prob=bias_prob, layer=layer)
        if a > b:
            raise ConfigValueError(f"Uniform needs a <= b, got a={a}, b={b}")
        self.a = a
        self.b = b

    def init_layer(self, module: nn.Module) -> None:
        """Initialise one layer."""
        uniform_init(module, self.a, self.b, self.bias)

    def _settings(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "bias": self.bias}


@WEIGHT_INITIALIZERS.register_module(name="Kaiming")
class KaimingInit(BaseInit):
    """Kaiming (He) initialisation.

    :param a: negative slope of the following rectifier (``leaky_relu`` only).
    :param mode: ``'fan_in'`` (keeps forward variance) or ``'fan_out'`` (backward variance).
    :param nonlinearity: the nonlinearity that follows, e.g. ``'relu'``, ``'leaky_relu'``.
    :param distribution: ``'normal'`` or ``'uniform'``.
    """

    _needs_fan = True

    def __init__(
        self,
        a: float = 0,
        mode: str = "fan_out",
        nonlinearity: str = "relu",
        distribution: str = "normal",
        bias: float = 0,
        bias_prob: float | None = None,
        layer: str | list[str] | None = None,
    ) -> None:
        super().__init__(bias=bias, bias_prob=bias_prob, layer=layer)
        _check_distribution(distribution)
        if mode not in ("fan_in", "fan_out"):
            raise ConfigValueError(
                f"Kaiming: unknown mode {mode!r}", hint="mode is 'fan_in' or 'fan_out'"
            )
        self.a = a
        self.mode = mode
        self.nonlinearity = nonlinearity
        self.distribution = distribution

    def init_layer(self, module: nn.Module) -> None:
        """Initialise one layer."""
        kaiming_init(module, self.a, self.mode, self.nonlinearity, self.bias, self.distribution)

    def _settings(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "mode": self.mode,
            "nonlinearity": self.nonlinearity,
            "distribution": self.distribution,
            "bias": self.bias,
        }


@WEIGHT_INITIALIZERS.register_module(name="Caffe2Xavier")
class Caffe2XavierInit(KaimingInit):
    """Caffe2's XavierFill: Kaiming uniform, ``a=1``, ``fan_in``, ``leaky_relu``."""

    def __init__(
        self, bias: float = 0, bias_prob: float | None = None, layer: str | list[str] | None = None
    ):
        super().__init__(
            a=1,
            mode="fan_in",
            nonlinearity="leaky_relu",
            distribution="uniform",
            bias=bias,
            bias_prob=bias_prob,
            layer=layer,
        )


def load_pretrained_state_dict(
    checkpoint: str, prefix: str | None = None, map_location: str | torch.device | None = "cpu"
) -> dict[str, torch.Tensor]:
    """Read a state dict from a checkpoint file (or an ``http(s)://`` URL), safely.

    The file is read with ``weights_only=True``. A ``state_dict`` entry is used when present
    (torchkiln and MMEngine checkpoints), a leading ``module.`` (DDP) is stripped, and with
    ``prefix`` only the keys under ``prefix.`` are kept, without it.

    :param checkpoint: path or URL.
    :param prefix: keep only this sub-module's weights, e.g. ``'backbone'``.
    :param map_location: where to load tensors.
    """
    try:
        if re.match(r"^https?://", checkpoint):
            obj = torch.hub.load_state_dict_from_url(
                checkpoint, map_location=map_location, weights_only=True
            )
        else:
            obj = torch.load(checkpoint, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise ConfigError(
            f"pretrained checkpoint {checkpoint!r} does not exist",
            where="init_cfg.checkpoint",
            hint="give the path of a saved state dict or checkpoint",
        ) from None
    except Exception as exc:
        raise ConfigError(
            f"cannot read pretrained checkpoint {checkpoint!r}: {type(exc).__name__}: {exc}",
            where="init_cfg.checkpoint",
            hint="only tensors and plain containers are loaded (weights_only=True); re-save the "
            "weights with torch.save(model.state_dict(), path)",
        ) from exc
    state = obj.get("state_dict", obj) if isinstance(obj, Mapping) else None
    if not isinstance(state, Mapping):
        raise ConfigError(
            f"pretrained checkpoint {checkpoint!r} holds no state dict (got {type(obj).__name__})"
        )
    from torchkiln.runner.model_state import DEFAULT_REVISE_KEYS, revise_state_dict

    state = revise_state_dict(state, DEFAULT_REVISE_KEYS)
    if prefix:
        head = prefix if prefix.endswith(".") else prefix + "."
        selected = {k[len(head) :]: v for k, v in state.items() if k.startswith(head)}
        if not selected:
            tops = sorted({k.split(".", 1)[0] for k in state})
            raise ConfigError(
                f"no weights under prefix {prefix!r} in pretrained checkpoint {checkpoint!r}",
                where="init_cfg.prefix",
                hint=(did_you_mean(head.rstrip("."), tops) or "")
                + " top-level prefixes: "
                + ", ".join(tops[:20]),
            )
        state = selected
    return dict(state)


@WEIGHT_INITIALIZERS.register_module(name="Pretrained")
class PretrainedInit:
    """Load weights from a checkpoint into the module (non-strict; mismatches are logged).

    Missing and unexpected keys, and tensors whose shape differs from the module's (a head
    with another number of classes), are skipped with a warning listing them; everything
    that fits is loaded.

    :param checkpoint: path or URL of a state dict or a checkpoint with ``state_dict``.
    :param prefix: load only the weights under this key prefix (e.g. ``'backbone'``) into the
        module.
    :param map_location: where to load tensors.
    """

    wholemodule: bool = False

    def __init__(
        self, checkpoint: str, prefix: str | None = None, map_location: str | None = "cpu"
    ):
        self.checkpoint = checkpoint
        self.prefix = prefix
        self.map_location = map_location

    def __call__(self, module: nn.Module) -> None:
        """Load the weights into ``module``."""
        from torchkiln.runner.model_state import load_model_state

        state = load_pretrained_state_dict(self.checkpoint, self.prefix, self.map_location)
        report = load_model_state(
            module, state, strict=False, revise_keys=(), source=self.checkpoint
        )
        if not report.clean:
            logger.warning(
                "pretrained %s into %s: %s", self.checkpoint, type(module).__name__, report.format()
            )

    def describe(self) -> str:
        """One line naming the checkpoint, for init reports."""
        where = f" (prefix {self.prefix!r})" if self.prefix else ""
        return f"Pretrained: {self.checkpoint}{where}"

    def __repr__(self) -> str:
        return f"PretrainedInit(checkpoint={self.checkpoint!r}, prefix={self.prefix!r})"


# ---------------------------------------------------------------------------- initialize
def _as_cfg_list(init_cfg: Any, what: str = "init_cfg") -> list[dict[str, Any]]:
    if isinstance(init_cfg, Mapping):
        return [dict(init_cfg)]
    if isinstance(init_cfg, (list, tuple)) and all(isinstance(c, Mapping) for c in init_cfg):
        return [dict(c) for c in init_cfg]
    raise ConfigTypeError(
        f"{what} must be a dict or a list of dicts, got {type(init_cfg).__name__}",
        hint="e.g. init_cfg=dict(type='Kaiming', layer='Conv2d')",
    )


def build_initializer(cfg: Mapping[str, Any]) -> Any:
    """Build one initializer from ``{type: Name, ...}`` through ``WEIGHT_INITIALIZERS``."""
    return WEIGHT_INITIALIZERS.build(cfg)


def _warn_unmatched_layers(module: nn.Module, init: Any, cfg: Mapping[str, Any]) -> None:
    layers = getattr(init, "layer", None)
    if not layers:
        return
    present: set[str] = set()
    for m in module.modules():
        present |= _class_names(m)
    for name in layers:
        if name not in present:
            suggestion = did_you_mean(name, sorted(present))
            if suggestion:  # likely a typo, not a generic cfg listing absent layer kinds
                warnings.warn(
                    f"init_cfg {cfg.get('type')!r}: layer {name!r} matches no layer of "
                    f"{type(module).__name__}; {suggestion}",
                    stacklevel=4,
                )


def _apply(module: nn.Module, init: Any, wholemodule: bool, record: Any) -> None:
    if wholemodule:
        init = copy.copy(init)
        init.wholemodule = True
    if record is None:
        init(module)
    else:
        record(module, init)


def initialize(
    module: nn.Module,
    init_cfg: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    _record: Any = None,
) -> None:
    """Initialise ``module`` from an ``init_cfg`` (a dict or a list of dicts).

    Each entry applies its initializer to the layers named by ``layer`` (anywhere in
    ``module``), then its ``override`` entries re-initialise the named children as a whole.

    :param module: the module to initialise.
    :param init_cfg: the initializer config(s).
    """
    for cfg in _as_cfg_list(init_cfg):
        override = cfg.pop("override", None)
        if "type" not in cfg:
            if override is not None and not {k for k in cfg if k != "layer"}:
                cfg = {}
            else:
                raise BuildKeyError(
                    f"init_cfg entry {cfg!r} needs a 'type'",
                    hint="known initializers: " + ", ".join(WEIGHT_INITIALIZERS.names()),
                )
        if cfg:
            init = build_initializer(cfg)
            if not getattr(init, "layer", True) and override is None:
                warnings.warn(
                    f"init_cfg {cfg.get('type')!r} for {type(module).__name__} has neither 'layer' nor "
                    "'override' and initialises nothing; add layer=['Conv2d', 'Linear', ...]",
                    stacklevel=3,
                )
            _warn_unmatched_layers(module, init, cfg)
            _apply(module, init, False, _record)
        if override is not None:
            base = {k: v for k, v in cfg.items() if k != "layer"}
            for ov in _as_cfg_list(override, "override"):
                name = ov.pop("name", None)
                if name is None:
                    raise ConfigValueError(
                        f"override {ov!r} needs a 'name' (the child module to initialise)"
                    )
                if not ov:
                    if not base:
                        raise ConfigValueError(
                            f"override for {name!r} gives no 'type' and the outer init_cfg has none"
                        )
                    ov = dict(base)
                elif "type" not in ov:
                    raise ConfigValueError(
                        f"override for {name!r} sets {sorted(ov)} without a 'type'",
                        hint="give the override its own type, or only a name to reuse the outer initializer",
                    )
                child = _get_child(module, name)
                _apply(child, build_initializer(ov), True, _record)


def _get_child(module: nn.Module, name: str) -> nn.Module:
    try:
        child = module.get_submodule(name)
    except AttributeError:
        child = None
    if not isinstance(child, nn.Module):
        names = [n for n, _ in module.named_modules() if n]
        raise ConfigRuntimeError(
            f"init_cfg override names {name!r}, but {type(module).__name__} has no such sub-module",
            hint=did_you_mean(name, names) or ("sub-modules: " + ", ".join(names[:20])),
        )
    return child
