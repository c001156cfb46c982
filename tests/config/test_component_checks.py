"""Component dicts checked against their registries: unknown types and arguments, nested places."""

from __future__ import annotations

import pytest
from kiln_toys import ModelSteps

from torchkiln.config import Config, validate
from torchkiln.errors import BuildError, PluginError
from torchkiln.registry import (
    DATA_SAMPLERS,
    DATASETS,
    EVALUATOR,
    FUNCTIONS,
    HOOKS,
    LOOPS,
    METRICS,
    MODELS,
    OPTIM_WRAPPER_CONSTRUCTORS,
    OPTIM_WRAPPERS,
    OPTIMIZERS,
    PARAM_SCHEDULERS,
)

YAML = "/proj/model.yaml"


@MODELS.register_module(force=True)
class TkCheckNet(ModelSteps):
    def __init__(self, depth, width=64, init_cfg=None):
        self.depth = depth


@MODELS.register_module(force=True)
class TkCheckAnything(ModelSteps):
    def __init__(self, **kwargs):
        self.kwargs = kwargs


@DATASETS.register_module(force=True)
class TkCheckData:
    def __init__(self, root, pipeline=(), test_mode=False):
        pass


@DATA_SAMPLERS.register_module(force=True)
class TkCheckSampler:
    def __init__(self, dataset, shuffle=True, seed=None):
        pass


@FUNCTIONS.register_module(force=True)
def tk_check_collate(batch, pad_value=0):
    return batch


@LOOPS.register_module(force=True)
class TkCheckLoop:
    def __init__(self, runner, dataloader, max_epochs, repeat=1):
        pass


@OPTIMIZERS.register_module(force=True)
class TkCheckOptim:
    def __init__(self, params, lr, momentum=0.0):
        pass


@OPTIM_WRAPPERS.register_module(force=True)
class TkCheckWrapper:
    def __init__(self, optimizer, accumulative_counts=1, clip_grad=None):
        pass


@OPTIM_WRAPPER_CONSTRUCTORS.register_module(force=True)
class TkCheckConstructor:
    def __init__(self, optim_wrapper_cfg, paramwise_cfg=None):
        pass


@PARAM_SCHEDULERS.register_module(force=True)
class TkCheckLR:
    def __init__(self, optimizer, milestones, gamma=0.1, by_epoch=True):
        pass


@METRICS.register_module(force=True)
class TkCheckMetric:
    def __init__(self, topk=1, prefix=None):
        pass


@EVALUATOR.register_module(force=True)
class TkCheckEvaluator:
    def __init__(self, metrics):
        pass


@HOOKS.register_module(force=True)
class TkCheckHook:
    def __init__(self, interval=1):
        pass


def run(data):
    cfg = Config(data, filename=YAML, provenance={
        "model.type": f"{YAML}:2:9", "model.deph": f"{YAML}:3:3", "model.depth": f"{YAML}:3:3",
    })
    # the train/val/test all-or-none rule is tested elsewhere; leave it out here
    return [e for e in validate(cfg) if "given without" not in e.message]


def only(errors):
    assert len(errors) == 1, [str(e) for e in errors]
    return errors[0]


def test_valid_components_pass():
    data = {
        "model": {"type": "TkCheckNet", "depth": 50},
        "train_dataloader": {
            "batch_size": 2,
            "dataset": {"type": "TkCheckData", "root": "data/", "pipeline": [{"type": "Anything", "x": 1}]},
            "sampler": {"type": "TkCheckSampler", "shuffle": False},
            "collate_fn": {"type": "tk_check_collate", "pad_value": 1},
        },
        "train_cfg": {"type": "TkCheckLoop", "max_epochs": 2},
        "optim_wrapper": {"type": "TkCheckWrapper", "optimizer": {"type": "TkCheckOptim", "lr": 0.1},
                          "paramwise_cfg": {"norm_decay_mult": 0.0}},
        "param_scheduler": [{"type": "TkCheckLR", "milestones": [8, 11]}],
        "val_dataloader": {"dataset": {"type": "TkCheckData", "root": "data/"}},
        "val_cfg": {},
        "val_evaluator": {"type": "TkCheckEvaluator", "metrics": [{"type": "TkCheckMetric", "topk": 5}]},
        "default_hooks": {"checkpoint": {"type": "TkCheckHook", "interval": 2, "priority": "LOW"}, "logger": None},
        "custom_hooks": [{"type": "TkCheckHook", "priority": 40}],
    }
    assert run(data) == []


def test_unknown_type_is_a_build_error_with_the_closest_names():
    err = only(run({"model": {"type": "TkChekNet", "depth": 50}}))
    assert isinstance(err, BuildError)
    assert err.message == "unknown type 'TkChekNet' in registry models"
    assert err.where == f"{YAML}:2:9, key model.type"
    assert err.hint.startswith("did you mean 'TkCheckNet'")


def test_unknown_argument_is_an_error_with_suggestion_and_line():
    errors = run({"model": {"type": "TkCheckNet", "deph": 50}})
    # the misspelt key, and with it the required argument it was meant to be
    assert [(e.message, e.where) for e in errors] == [
        ("models.TkCheckNet got an unexpected argument 'deph'", f"{YAML}:3:3, key model.deph"),
        ("models.TkCheckNet is missing required argument(s): depth", f"{YAML}:2, key model"),
    ]
    assert errors[0].hint.startswith("did you mean 'depth'?")
    errors = run({"model": {"type": "TkCheckNet", "depth": 50, "widht": 3}})
    err = only(errors)
    assert err.message == "models.TkCheckNet got an unexpected argument 'widht'"
    assert err.where == f"{YAML}:2, key model.widht"  # no entry for the leaf: the line of its dict's first
    assert err.hint.startswith("did you mean 'width'?")


def test_missing_required_argument_is_reported():
    err = only(run({"model": {"type": "TkCheckNet"}}))
    assert err.message == "models.TkCheckNet is missing required argument(s): depth"
    assert err.where == f"{YAML}:2, key model"  # a whole section: the line, not a column


def test_a_component_without_type_is_reported():
    err = only(run({"model": {"depth": 50}}))
    assert err.message == "a models component needs a 'type' key"


def test_kwargs_components_accept_anything():
    assert run({"model": {"type": "TkCheckAnything", "whatever": 1, "more": [2]}}) == []


def test_engine_supplied_arguments_count_as_given():
    data = {
        "model": {"type": "TkCheckNet", "depth": 1},
        "train_dataloader": {"dataset": {"type": "TkCheckData", "root": "r"}, "sampler": {"type": "TkCheckSampler"}},
        "train_cfg": {"type": "TkCheckLoop", "max_epochs": 1},
        "optim_wrapper": {"type": "TkCheckWrapper", "optimizer": {"type": "TkCheckOptim", "lr": 0.1}},
        "param_scheduler": {"type": "TkCheckLR", "milestones": [1]},
    }
    assert run(data) == []


def test_nested_components_are_checked_where_the_registry_is_known():
    data = {
        "model": {"type": "TkCheckNet", "depth": 1},
        "train_dataloader": {
            "dataset": {"type": "TkCheckData", "root": "r", "test_mod": True},
            "sampler": {"type": "TkCheckSampler", "shufle": True},
            "collate_fn": {"type": "tk_check_collate", "pad": 0},
        },
        "train_cfg": {"by_epoch": True, "max_epochs": 1},
        "optim_wrapper": {"optimizer": {"type": "TkCheckOptim", "lr": 0.1, "momentun": 0.9},
                          "type": "TkCheckWrapper", "clip_grads": None},
        "param_scheduler": [{"type": "TkCheckLR", "milestones": [1]}, {"type": "TkCheckLR", "milestone": [1]}],
        "val_dataloader": {"dataset": {"type": "TkCheckData", "root": "r"}},
        "val_cfg": {},
        "val_evaluator": [{"type": "TkCheckMetric", "top_k": 1}],
        "default_hooks": {"checkpoint": {"type": "TkCheckHook", "intervl": 1}},
        "custom_hooks": [{"type": "TkCheckHook"}, {"type": "TkCheckHok"}],
    }
    where = sorted(e.where.split("key ")[-1] for e in run(data))
    assert where == sorted([
        "train_dataloader.dataset.test_mod",
        "train_dataloader.sampler.shufle",
        "train_dataloader.collate_fn.pad",
        "optim_wrapper.optimizer.momentun",
        "optim_wrapper.clip_grads",
        "param_scheduler.1.milestone",
        "param_scheduler.1",  # missing milestones
        "val_evaluator.0.top_k",
        "default_hooks.checkpoint.intervl",
        "custom_hooks.1.type",
    ])


def test_custom_constructor_sections_are_checked_leniently():
    data = {
        "model": {"type": "TkCheckNet", "depth": 1},
        "optim_wrapper": {
            "constructor": "TkCheckConstructor",
            "generator": {"type": "TkCheckWrapper", "optimizer": {"type": "TkCheckOptim", "lr": 1, "betas": 1}},
            "discriminator": {"whatever": True},
        },
    }
    errors = run(data)
    assert [e.where for e in errors] == ["key optim_wrapper.generator.optimizer.betas"]
    errors = run({"model": {"type": "TkCheckNet", "depth": 1}, "optim_wrapper": {"constructor": "TkNoSuchCtor"}})
    assert [e.message for e in errors] == ["unknown type 'TkNoSuchCtor' in registry optim_wrapper_constructors"]


def test_optimizer_is_required_without_a_custom_constructor():
    errors = run({"model": {"type": "TkCheckNet", "depth": 1}, "optim_wrapper": {"type": "TkCheckWrapper"}})
    assert errors[0].message == "optim_wrapper needs an 'optimizer'"


def test_param_scheduler_dict_of_lists():
    data = {
        "model": {"type": "TkCheckNet", "depth": 1},
        "param_scheduler": {"generator": [{"type": "TkCheckLR", "milestones": [1], "gama": 1}], "discriminator": []},
    }
    assert [e.where for e in run(data)] == ["key param_scheduler.generator.0.gama"]


def test_custom_imports_run_before_lookups(tmp_path, monkeypatch):
    (tmp_path / "tk_custom_mod.py").write_text(
        "from kiln_toys import ModelSteps\n"
        "from torchkiln.registry import MODELS\n"
        "@MODELS.register_module(force=True)\n"
        "class TkImportedNet(ModelSteps):\n"
        "    def __init__(self, size):\n"
        "        self.size = size\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    data = {"custom_imports": {"imports": ["tk_custom_mod"]}, "model": {"type": "TkImportedNet", "size": 1}}
    assert run(data) == []
    errors = run({"custom_imports": {"imports": ["tk_no_such_module"]}, "model": {"type": "TkCheckNet", "depth": 1}})
    assert errors[0].message.startswith("custom import 'tk_no_such_module' failed: ModuleNotFoundError")
    with pytest.warns(UserWarning, match="custom import 'tk_no_such_module' failed"):
        assert run({"custom_imports": {"imports": "tk_no_such_module", "allow_failed_imports": True},
                    "model": {"type": "TkCheckNet", "depth": 1}}) == []


def test_a_broken_plugin_is_a_plugin_error(monkeypatch):
    from torchkiln.registry import _index

    monkeypatch.setattr(_index, "providers", lambda name, group: (
        {"TkBroken": {"tk_broken_dist": "tk_no_such_module:Cls"}} if name == "models" else {}))
    err = only(run({"model": {"type": "TkBroken"}}))
    assert isinstance(err, PluginError) and err.exit_code == 3
    assert "tk_broken_dist" in err.message


def test_functions_may_be_given_by_name():
    base = {"model": {"type": "TkCheckNet", "depth": 1}}
    ok = {**base, "train_dataloader": {"dataset": {"type": "TkCheckData", "root": "r"}, "collate_fn": "tk_check_collate"}}
    assert run(ok) == []
    bad = {**base, "train_dataloader": {"dataset": {"type": "TkCheckData", "root": "r"}, "collate_fn": "tk_chek_collate"}}
    err = only(run(bad))
    assert err.message == "unknown type 'tk_chek_collate' in registry functions"
    assert err.hint.startswith("did you mean 'tk_check_collate'")


def test_convert_to_iter_based_is_an_engine_key_of_schedulers():
    data = {
        "model": {"type": "TkCheckNet", "depth": 1},
        "param_scheduler": [{"type": "LinearLR", "start_factor": 0.1, "by_epoch": True, "end": 2,
                             "convert_to_iter_based": True},
                            {"type": "TkCheckLR", "milestones": [1], "convert_to_iter_based": True}],
    }
    assert run(data) == []
    # still one of the engine's keys only: a misspelling is reported
    data["param_scheduler"][1]["convert_to_iter_base"] = True
    assert [e.where for e in run(data)] == ["key param_scheduler.1.convert_to_iter_base"]


def test_default_hooks_entries_merge_into_the_defaults_before_checking():
    base = {"model": {"type": "TkCheckNet", "depth": 1}}
    # only arguments: the default's type applies (the form merge_default_hooks documents)
    ok = {**base, "default_hooks": {"logger": {"interval": 5}, "checkpoint": {"interval": 2, "priority": "LOW"},
                                    "timer": None}}
    assert run(ok) == []
    # the merged type's signature is what the arguments are checked against
    bad = {**base, "default_hooks": {"logger": {"intervl": 5}}}
    err = only(run(bad))
    assert err.where == "key default_hooks.logger.intervl"
    assert err.hint.startswith("did you mean 'interval'")
    # a key that is not a default still needs a type, reported in place
    err = only(run({**base, "default_hooks": {"mine": {"interval": 1}}}))
    assert err.message == "default_hooks.mine is not a default hook, so it needs a 'type'"
    assert err.where == "key default_hooks.mine"
    assert run({**base, "default_hooks": {"mine": {"type": "TkCheckHook", "interval": 1}}}) == []
