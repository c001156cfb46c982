"""Optimizer wrapper constructors: paramwise_cfg, group merging, duplicates, several optimizers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from torchkiln.errors import BuildError, ConfigError
from torchkiln.optim import (
    AmpOptimWrapper,
    DefaultOptimWrapperConstructor,
    OptimWrapper,
    OptimWrapperDict,
    build_optim_wrapper,
)
from torchkiln.registry._index import builtin_components
from torchkiln.registry import OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS, OPTIMIZERS, build_from_cfg

LR, WD = 0.01, 1e-4


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.scale = nn.Parameter(torch.ones(2))
        self.backbone = nn.Sequential(
            nn.Conv2d(3, 4, 3),  # plain conv
            nn.BatchNorm2d(4),  # norm
            nn.Conv2d(4, 4, 3, groups=4),  # depth-wise
        )
        self.neck = nn.Linear(4, 4)
        self.head = nn.Linear(4, 2)
        self.ln = nn.LayerNorm(2)
        self.frozen = nn.Linear(2, 2)
        self.frozen.requires_grad_(False)


def settings_by_name(model, optimizer):
    """{parameter name: (lr, weight_decay, group index)} for the parameters in the optimizer."""
    where = {}
    for index, group in enumerate(optimizer.param_groups):
        for param in group["params"]:
            where[id(param)] = (group["lr"], group["weight_decay"], index)
    return {name: where[id(param)] for name, param in model.named_parameters() if id(param) in where}


PARAMWISE = {
    "bias_lr_mult": 2.0,
    "bias_decay_mult": 0.5,
    "norm_decay_mult": 0.0,
    "dwconv_decay_mult": 0.1,
    "flat_decay_mult": 0.3,
    "custom_keys": {"head": {"lr_mult": 0.1, "decay_mult": 0.2}, "head.bias": {"lr_mult": 5.0}},
}


def test_paramwise_settings_per_parameter():
    model = Net()
    wrapper = build_optim_wrapper(
        model,
        {"optimizer": {"type": "SGD", "lr": LR, "momentum": 0.9, "weight_decay": WD}, "paramwise_cfg": PARAMWISE},
    )
    got = {name: (lr, wd) for name, (lr, wd, _) in settings_by_name(model, wrapper.optimizer).items()}
    expected = {
        "scale": (LR, WD * 0.3),  # a 1-D parameter: flat_decay_mult
        "backbone.0.weight": (LR, WD),
        "backbone.0.bias": (LR * 2, WD * 0.5),  # bias_lr_mult, bias_decay_mult
        "backbone.1.weight": (LR, 0.0),  # norm: norm_decay_mult, no bias_lr_mult
        "backbone.1.bias": (LR, 0.0),
        "backbone.2.weight": (LR, WD * 0.1),  # depth-wise: dwconv_decay_mult
        "backbone.2.bias": (LR * 2, WD * 0.5),  # the bias rule comes before the depth-wise one
        "neck.weight": (LR, WD),
        "neck.bias": (LR * 2, WD * 0.5),
        "head.weight": (LR * 0.1, WD * 0.2),  # custom key 'head'
        "head.bias": (LR * 5, WD),  # the longer custom key 'head.bias', decay_mult defaults to 1
        "ln.weight": (LR, 0.0),
        "ln.bias": (LR, 0.0),
    }  # frozen.weight and frozen.bias (requires_grad=False) are not in the optimizer
    assert got.keys() == expected.keys()
    for name, (lr, wd) in expected.items():
        assert got[name] == (pytest.approx(lr), pytest.approx(wd)), name


def test_one_group_per_trainable_parameter_in_model_order():
    model = Net()
    wrapper = build_optim_wrapper(
        model, {"optimizer": {"type": "SGD", "lr": LR, "weight_decay": WD}, "paramwise_cfg": PARAMWISE}
    )
    trainable = [p for p in model.parameters() if p.requires_grad]
    groups = wrapper.optimizer.param_groups
    assert [g["params"] for g in groups] == [[p] for p in trainable]
    assert "lr" not in groups[1] or groups[1]["lr"] == LR  # backbone.0.weight: no rule


def test_identical_settings_share_a_group_in_first_appearance_order():
    model = Net()
    wrapper = build_optim_wrapper(
        model,
        {"optimizer": {"type": "SGD", "lr": LR, "weight_decay": WD},
         "paramwise_cfg": {**PARAMWISE, "merge_groups": True}},
    )
    groups = {name: index for name, (_, _, index) in settings_by_name(model, wrapper.optimizer).items()}
    assert len(wrapper.optimizer.param_groups) == 7
    # 'scale' (the model's own parameter) comes first, then the children in order
    assert groups["scale"] == 0
    assert groups["backbone.0.weight"] == groups["neck.weight"] == 1
    assert groups["backbone.0.bias"] == groups["backbone.2.bias"] == groups["neck.bias"] == 2
    assert groups["backbone.1.weight"] == groups["backbone.1.bias"] == groups["ln.weight"] == groups["ln.bias"] == 3
    assert [groups[n] for n in ("backbone.2.weight", "head.weight", "head.bias")] == [4, 5, 6]
    # parameters keep model order inside a group
    default_group = wrapper.optimizer.param_groups[1]["params"]
    assert default_group[0] is model.backbone[0].weight and default_group[-1] is model.neck.weight


def test_neutral_custom_key_merges_with_the_default_group():
    model = Net()
    wrapper = build_optim_wrapper(
        model,
        {"optimizer": {"type": "SGD", "lr": LR, "weight_decay": WD},
         "paramwise_cfg": {"custom_keys": {"neck": {"lr_mult": 1.0, "decay_mult": 1.0}}, "merge_groups": True}},
    )
    assert len(wrapper.optimizer.param_groups) == 1
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert len(wrapper.optimizer.param_groups[0]["params"]) == len(trainable)


def test_custom_keys_ties_break_alphabetically_and_extra_settings():
    model = Net()
    constructor = DefaultOptimWrapperConstructor(
        {"optimizer": {"type": "SGD", "lr": LR, "momentum": 0.9}},
        {"custom_keys": {"neck": {"lr_mult": 3.0}, "ne": {"lr_mult": 7.0}, "eck": {"lr_mult": 5.0},
                         "head": {"momentum": 0.5}}},
    )
    optimizer = constructor(model).optimizer
    by_param = {id(p): g for g in optimizer.param_groups for p in g["params"]}
    # 'neck' (4 chars) beats 'eck' and 'ne'; among equal lengths the alphabetically first wins
    assert by_param[id(model.neck.weight)]["lr"] == pytest.approx(LR * 3)
    assert by_param[id(model.head.weight)]["momentum"] == 0.5
    assert by_param[id(model.head.weight)]["lr"] == pytest.approx(LR)
    tie = DefaultOptimWrapperConstructor(
        {"optimizer": {"type": "SGD", "lr": LR}}, {"custom_keys": {"eck": {"lr_mult": 5.0}, "nec": {"lr_mult": 7.0}}}
    )(tied := Net()).optimizer
    tie_lr = {id(p): g["lr"] for g in tie.param_groups for p in g["params"]}
    assert tie_lr[id(tied.neck.weight)] == pytest.approx(LR * 5)


def test_lr_multiplier_uses_the_optimizer_default_lr():
    model = Net()
    optimizer = build_optim_wrapper(
        model, {"optimizer": {"type": "Adam"}, "paramwise_cfg": {"bias_lr_mult": 2.0}}
    ).optimizer
    lrs = sorted({g["lr"] for g in optimizer.param_groups})
    assert lrs == [pytest.approx(1e-3), pytest.approx(2e-3)]


# ---------------------------------------------------------------------------- duplicates
class Shared(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(5, 2)
        self.decode = nn.Linear(2, 5, bias=False)
        self.decode.weight = self.embed.weight  # tied weights
        self.extra = nn.Linear(2, 2)


def test_shared_parameters_fail_without_bypass_duplicate():
    with pytest.raises(ConfigError, match="'decode.weight' is the same tensor as 'embed.weight'") as info:
        build_optim_wrapper(Shared(), {"optimizer": {"type": "SGD", "lr": LR}, "paramwise_cfg": {"bias_lr_mult": 2.0}})
    assert "bypass_duplicate" in info.value.hint


def test_bypass_duplicate_keeps_shared_parameters_once():
    model = Shared()
    optimizer = build_optim_wrapper(
        model, {"optimizer": {"type": "SGD", "lr": LR}, "paramwise_cfg": {"bias_lr_mult": 2.0, "bypass_duplicate": True}}
    ).optimizer
    params = [p for g in optimizer.param_groups for p in g["params"]]
    assert len(params) == len({id(p) for p in params}) == 3


def test_without_paramwise_cfg_one_group():
    model = Shared()
    optimizer = build_optim_wrapper(model, {"optimizer": {"type": "SGD", "lr": LR}}).optimizer
    assert len(optimizer.param_groups) == 1 and len(optimizer.param_groups[0]["params"]) == 3


# ---------------------------------------------------------------------------- the wrapper part
def test_wrapper_type_and_arguments():
    model = Net()
    wrapper = build_optim_wrapper(
        model,
        {"type": "AmpOptimWrapper", "dtype": "bfloat16", "accumulative_counts": 2, "clip_grad": {"max_norm": 1.0},
         "optimizer": {"type": "AdamW", "lr": 1e-3}},
    )
    assert isinstance(wrapper, AmpOptimWrapper)
    assert isinstance(wrapper.optimizer, torch.optim.AdamW)
    assert wrapper.accumulative_counts == 2 and wrapper.clip_grad_kwargs == {"max_norm": 1.0}


def test_built_optimizer_and_built_wrapper():
    model = Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    wrapper = build_optim_wrapper(model, {"optimizer": optimizer, "accumulative_counts": 4})
    assert type(wrapper) is OptimWrapper and wrapper.optimizer is optimizer and wrapper.accumulative_counts == 4
    assert build_optim_wrapper(model, wrapper) is wrapper
    wrappers = build_optim_wrapper(model, {"a": wrapper})
    assert isinstance(wrappers, OptimWrapperDict) and wrappers["a"] is wrapper


def test_wrapped_model_is_unwrapped_for_names():
    model = nn.DataParallel(Net())
    optimizer = build_optim_wrapper(
        model,
        {"optimizer": {"type": "SGD", "lr": LR}, "paramwise_cfg": {"custom_keys": {"backbone.0": {"lr_mult": 0.5}}}},
    ).optimizer
    lrs = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    assert lrs[id(model.module.backbone[0].weight)] == pytest.approx(LR * 0.5)


@pytest.mark.parametrize(("opt_type", "default_wd"), [("AdamW", 0.01), ("Adagrad", 0.0)])
def test_decay_multipliers_use_the_optimizers_default_weight_decay(opt_type, default_wd):
    """weight_decay left out of the config: the multipliers apply to a non-zero signature
    default, and fail (as in MMEngine) where it is 0."""
    if not default_wd:
        with pytest.raises(ValueError, match="base_wd should not be None.*default weight_decay of 0"):
            build_optim_wrapper(Net(), {"optimizer": {"type": opt_type, "lr": LR},
                                        "paramwise_cfg": {"norm_decay_mult": 0.5}})
        return
    cfg = {"optimizer": {"type": opt_type, "lr": LR},
           "paramwise_cfg": {"norm_decay_mult": 0.5, "custom_keys": {"head": {"decay_mult": 3.0}}}}
    net = Net()
    optimizer = build_optim_wrapper(net, cfg).optimizer
    model_wd = {id(p): g["weight_decay"] for g in optimizer.param_groups for p in g["params"]}
    for name, param in net.named_parameters():
        if not param.requires_grad:
            continue
        norm = name.startswith(("backbone.1.", "ln."))
        expected = default_wd * (3.0 if name.startswith("head") else 0.5 if norm else 1.0)
        assert model_wd[id(param)] == pytest.approx(expected), name


# ---------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("cfg", "error", "message"),
    [
        ({"type": "OptimWrapper"}, ConfigError, "must contain an 'optimizer' entry, e.g. optimizer: {type: SGD"),
        ({"optimizer": {"lr": 0.1}}, ConfigError, "needs a 'type'"),
        ({"optimizer": {"type": "SDG", "lr": 0.1}}, BuildError, "unknown type 'SDG'"),
        ({"optimizer": {"type": "SGD", "lr": 0.1, "momentun": 0.9}}, BuildError, "unexpected argument 'momentun'"),
        ({"optimizer": {"type": "SGD", "lr": 0.1}, "accumulate_counts": 2}, BuildError, "'accumulate_counts'"),
        ({"optimizer": {"type": "SGD", "lr": 0.1}, "paramwise_cfg": {"bias_lr_mul": 2}}, ConfigError, "'bias_lr_mul'"),
        # LBFGS takes no weight_decay at all (SGD and AdamW have defaults: see below)
        ({"optimizer": {"type": "LBFGS", "lr": 0.1}, "paramwise_cfg": {"norm_decay_mult": 0}}, ConfigError,
         "paramwise_cfg.norm_decay_mult needs the optimizer's weight_decay .base_wd should not be None., and 'LBFGS' has no default"),
        ({"optimizer": {"type": "LBFGS", "lr": 0.1}, "paramwise_cfg": {"custom_keys": {"head": {"decay_mult": 0}}}},
         ConfigError, "custom_keys.head.decay_mult needs the optimizer's weight_decay"),
        ({"optimizer": {"type": "SGD", "lr": 0.1}, "paramwise_cfg": {"custom_keys": {"head": {"momentun": 0.1}}}},
         ConfigError, "unknown setting 'momentun'"),
        ({"optimizer": {"type": "SGD", "lr": 0.1}, "paramwise_cfg": {"custom_keys": ["head"]}}, ConfigError,
         "custom_keys must be a dict"),
        ({"optimizer": "SGD"}, ConfigError, "must be a dict or an optimizer"),
        ({"generator": {"optimizer": {"type": "SGD", "lr": 0.1}}}, ConfigError, "no constructor"),
        ({"optimizer": {"type": "SGD", "lr": 0.1}, "constructor": "DefaultConstructor"}, BuildError,
         "unknown type 'DefaultConstructor'"),
    ],
)
def test_errors_say_what_is_wrong(cfg, error, message):
    with pytest.raises(error, match=message.replace("{", r"\{").replace("(", r"\(")) as info:
        build_optim_wrapper(Net(), cfg)
    if "bias_lr_mul" in str(cfg):
        assert "did you mean 'bias_lr_mult'" in info.value.hint
    if "momentun" in str(cfg) and "custom_keys" in str(cfg):
        assert "did you mean 'momentum'" in info.value.hint
    if "generator" in str(cfg):
        assert "MultiOptimWrapperConstructor" in info.value.hint


def test_paramwise_cfg_needs_an_optimizer_config():
    model = Net()
    with pytest.raises(ConfigError, match="not a built optimizer"):
        build_optim_wrapper(model, {"optimizer": torch.optim.SGD(model.parameters(), lr=LR),
                                    "paramwise_cfg": {"bias_lr_mult": 2.0}})


# ---------------------------------------------------------------------------- several optimizers
class GAN(nn.Module):
    def __init__(self):
        super().__init__()
        self.generator = nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(4))
        self.discriminator = nn.Linear(4, 1)


def test_multi_optim_wrapper_constructor():
    model = GAN()
    wrappers = build_optim_wrapper(
        nn.DataParallel(model),
        {
            "constructor": "MultiOptimWrapperConstructor",
            "generator": {"optimizer": {"type": "Adam", "lr": 2e-4, "betas": [0.5, 0.999], "weight_decay": 1e-2},
                          "paramwise_cfg": {"norm_decay_mult": 0.0}},
            "discriminator": {"type": "AmpOptimWrapper", "dtype": "bfloat16",
                              "optimizer": {"type": "SGD", "lr": 0.01}},
        },
    )
    assert isinstance(wrappers, OptimWrapperDict)
    assert list(wrappers) == ["generator", "discriminator"]
    g_params = {id(p) for g in wrappers["generator"].optimizer.param_groups for p in g["params"]}
    assert g_params == {id(p) for p in model.generator.parameters()}
    d_params = [p for g in wrappers["discriminator"].param_groups for p in g["params"]]
    assert [id(p) for p in d_params] == [id(p) for p in model.discriminator.parameters()]
    assert isinstance(wrappers["discriminator"], AmpOptimWrapper)
    norm_wd = {g["weight_decay"] for g in wrappers["generator"].param_groups if g["params"][0].ndim == 1
               and any(g["params"][0] is p for p in model.generator[1].parameters())}
    assert norm_wd == {0.0}
    # the generator has one group per parameter, so it also reports its base_lr
    assert wrappers.get_lr() == {"generator.base_lr": [2e-4], "generator.lr": [2e-4] * 4, "discriminator.lr": [0.01]}


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        ({"generater": {"optimizer": {"type": "SGD", "lr": 0.1}}}, "names no sub-module"),
        ({"generator": {"type": "OptimWrapper"}}, "section 'generator' needs an 'optimizer' entry"),
        ({"generator": "SGD"}, "section 'generator' must be a dict"),
        ({"generator": {"optimizer": {"type": "SGD", "lr": 0.1}}, "paramwise_cfg": {"bias_lr_mult": 2}},
         "paramwise_cfg per section"),
        ({}, "one section per sub-module"),
    ],
)
def test_multi_optim_wrapper_constructor_errors(cfg, message):
    with pytest.raises(ConfigError, match=message) as info:
        build_optim_wrapper(GAN(), {"constructor": "MultiOptimWrapperConstructor", **cfg})
    if "generater" in cfg:
        assert "did you mean 'generator'" in info.value.hint


def test_custom_constructor_by_name():
    @OPTIM_WRAPPER_CONSTRUCTORS.register_module(name="OnlyHeadConstructor", force=True)
    class OnlyHeadConstructor:
        def __init__(self, optim_wrapper_cfg, paramwise_cfg=None):
            self.cfg = optim_wrapper_cfg

        def __call__(self, model):
            return OptimWrapper(torch.optim.SGD(model.head.parameters(), lr=self.cfg["optimizer"]["lr"]))

    model = Net()
    wrapper = build_optim_wrapper(model, {"constructor": "OnlyHeadConstructor", "optimizer": {"type": "SGD", "lr": 0.3}})
    assert wrapper.get_lr() == {"lr": [0.3]}
    assert wrapper.param_groups[0]["params"][0] is model.head.weight


class BackboneLrConstructor(DefaultOptimWrapperConstructor):
    """Declares a key of its own and applies it on top of the default rules."""

    paramwise_keys = (*DefaultOptimWrapperConstructor.paramwise_keys, "backbone_lr_mult")

    def add_params(self, params, module, prefix="", is_dcn_module=None):
        super().add_params(params, module, prefix, is_dcn_module)
        if prefix:
            return
        backbone = {id(p) for p in module.backbone.parameters()}
        mult = self.paramwise_cfg.get("backbone_lr_mult", 1.0)
        for group in params:
            if id(group["params"][0]) in backbone:
                group["lr"] = group.get("lr", self.base_lr) * mult


def test_a_subclass_declares_its_own_paramwise_keys():
    model = Net()
    constructor = BackboneLrConstructor(
        {"optimizer": {"type": "SGD", "lr": LR}}, {"backbone_lr_mult": 0.1, "bias_lr_mult": 2.0}
    )
    settings = settings_by_name(model, constructor(model).optimizer)
    assert settings["backbone.0.weight"][0] == pytest.approx(LR * 0.1)
    assert settings["backbone.0.bias"][0] == pytest.approx(LR * 2.0 * 0.1)  # both rules
    assert settings["neck.bias"][0] == pytest.approx(LR * 2.0)
    # declared keys keep the check strict: a misspelt one is still an error, with a suggestion
    with pytest.raises(KeyError, match="unknown paramwise_cfg key 'backbone_lr_mul'") as info:
        BackboneLrConstructor({"optimizer": {"type": "SGD", "lr": LR}}, {"backbone_lr_mul": 0.1})
    assert "backbone_lr_mult" in info.value.hint


def test_an_mmengine_style_subclass_reads_any_key_it_likes():
    """A subclass that builds the optimizer itself (as MMEngine's examples do) is not checked."""

    @OPTIM_WRAPPER_CONSTRUCTORS.register_module(name="HeadLrConstructor", force=True)
    class HeadLrConstructor(DefaultOptimWrapperConstructor):
        def __call__(self, model):
            mult = self.paramwise_cfg.get("head_lr_mult", 1.0)
            params = [
                {"params": [p], **({"lr": self.base_lr * mult} if name.startswith("head") else {})}
                for name, p in model.named_parameters()
                if p.requires_grad
            ]
            return build_from_cfg({**self.optimizer_cfg, "params": params}, OPTIMIZERS)

    assert HeadLrConstructor.paramwise_keys is None
    model = Net()
    optimizer = build_optim_wrapper(
        model,
        {"constructor": "HeadLrConstructor", "optimizer": {"type": "SGD", "lr": LR},
         "paramwise_cfg": {"head_lr_mult": 5.0}},
    )
    by_param = {id(g["params"][0]): g["lr"] for g in optimizer.param_groups}
    assert by_param[id(model.head.weight)] == pytest.approx(LR * 5)
    assert by_param[id(model.neck.weight)] == pytest.approx(LR)


def test_a_subclass_that_declares_nothing_keeps_the_default_keys():
    class Renamed(DefaultOptimWrapperConstructor):
        pass

    with pytest.raises(ConfigError, match="unknown paramwise_cfg key 'head_lr_mult' for Renamed") as info:
        Renamed({"optimizer": {"type": "SGD", "lr": LR}}, {"head_lr_mult": 2.0})
    assert "paramwise_keys" in info.value.hint


def test_frozen_and_bypassed_parameters_are_reported_once(monkeypatch):
    import torchkiln.logging

    logged = []
    monkeypatch.setattr(torchkiln.logging, "print_log", lambda msg, **kw: logged.append((msg, kw)))
    model = Net()
    model.head.weight.requires_grad_(False)
    build_optim_wrapper(model, {"optimizer": {"type": "SGD", "lr": LR}, "paramwise_cfg": {"bias_lr_mult": 2.0}})
    assert logged == [
        (
            "3 parameter(s) left out of the optimizer (requires_grad=False): head.weight, frozen.weight, frozen.bias",
            {"logger": "current", "level": "WARNING"},
        )
    ]
    logged.clear()
    build_optim_wrapper(
        Shared(), {"optimizer": {"type": "SGD", "lr": LR}, "paramwise_cfg": {"bypass_duplicate": True}}
    )
    assert len(logged) == 1 and "decode.weight" in logged[0][0] and "bypass_duplicate=True" in logged[0][0]


def test_components_table_resolves():
    registries = {"OPTIM_WRAPPERS": OPTIM_WRAPPERS, "OPTIM_WRAPPER_CONSTRUCTORS": OPTIM_WRAPPER_CONSTRUCTORS}
    for registry_name, registry in registries.items():
        for name in builtin_components(f"torchkiln.{registry_name.lower()}"):
            assert registry.get(name).__name__ == name
    assert set(builtin_components("torchkiln.optim_wrappers")) == {
        "OptimWrapper",
        "AmpOptimWrapper",
        "ApexOptimWrapper",
    }


def test_import_is_light():
    """Listing the optim components and importing the package import no torch."""
    import os
    import subprocess
    import sys

    import torchkiln

    root = os.path.dirname(os.path.dirname(torchkiln.__file__))
    code = (
        "import sys, torchkiln.optim; from torchkiln.registry import PARAM_SCHEDULERS as p; "
        "assert 'torch' not in sys.modules, 'torch imported'; "
        "assert 'OptimWrapper' in torchkiln.optim.__all__; print(len(p.names()))"
    )
    env = {**os.environ, "PYTHONPATH": root}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "30"


def test_an_optimizer_whose_first_argument_is_not_named_params():
    """The parameters go to the optimizer's first argument, whatever its name."""

    @OPTIMIZERS.register_module(force=True)
    class ModelParamsSGD(torch.optim.SGD):
        def __init__(self, model_params, lr=0.1, **kwargs):
            super().__init__(model_params, lr=lr, **kwargs)

    model = Net()
    plain = build_optim_wrapper(model, {"optimizer": {"type": "ModelParamsSGD", "lr": LR}})
    assert sum(len(g["params"]) for g in plain.optimizer.param_groups) == len(list(model.parameters()))
    paramwise = build_optim_wrapper(
        model, {"optimizer": {"type": "ModelParamsSGD", "lr": LR}, "paramwise_cfg": {"bias_lr_mult": 2.0}}
    )
    assert isinstance(paramwise.optimizer, ModelParamsSGD)
    assert {g["lr"] for g in paramwise.optimizer.param_groups} == {LR, 2 * LR}
